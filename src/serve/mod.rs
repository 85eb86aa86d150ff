//! `serd listen --serve`: the event stream over HTTP, beside stdout.
//!
//! ```text
//! GET /        the live page (self-contained HTML: nothing is fetched from elsewhere)
//! GET /events  Server-Sent Events: every stdout line as a `message` (with `id:` = its index,
//!              0 for `start`), and the input level as `level` events, `{"t":S,"dbfs":L}`
//! GET /ws      WebSocket: every stdout line as one text message, nothing else
//! GET /health  JSON: running, source, windows so far, drops (chain and clients), clients
//! ```
//!
//! A client that joins late first gets the `start` event and the last events the hub keeps
//! ([`hub::BACKLOG`]); an `EventSource` that reconnects gets only what it missed (`Last-Event-ID`).
//! Each client has a bounded queue ([`hub::QUEUE`]): a client that does not keep up loses items,
//! counted for it in `/health`, and never slows the chain, stdout or the other clients. What
//! the kernel holds for a client is bounded too (`SEND_BUFFER`).
//!
//! The network side is bounded by construction, whatever clients do: serd's own accept loop
//! ([`serve`]) keeps at most [`conns::MAX_CONNECTIONS`] connections (the one idle longest makes
//! room for a newcomer; 503 only when all are busy), hyper closes a connection whose request
//! header is not whole within [`HEADER_TIMEOUT`] or grows past [`MAX_HEADER`], and WebSocket
//! clients may send frames of [`MAX_WS_MESSAGE`] at most (serd reads nothing from them).
//! `axum::serve` offers none of these, so axum's router is driven by hyper directly.
//!
//! The server runs on a thread of its own (`serd-serve`) with a single-threaded tokio runtime;
//! the chain reaches it only through the [`Hub`], as its [`crate::pipeline::Tap`]. There is no
//! authentication: serd answers only requests addressed to an IP address or `localhost` (a web
//! page cannot rebind its own name to this machine), and `/ws` refuses browsers on other
//! origins, so that a web page the user visits cannot listen in.

pub mod conns;
pub mod hub;

use std::convert::Infallible;
use std::net::{SocketAddr, TcpListener, ToSocketAddrs};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::middleware::{self, Next};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use hyper::body::Incoming;
use tower_service::Service as _;

use conns::Connections;
pub use hub::Hub;
use hub::{Item, Kind, Subscription};

/// The address `--serve` uses when given none.
pub const DEFAULT_ADDRESS: &str = "127.0.0.1:8377";
/// How long serd waits at exit for clients to receive the `end` event.
const LINGER: Duration = Duration::from_secs(1);
/// Each connection's kernel send buffer (Linux doubles it). Left to autotuning, the kernel holds
/// megabytes for a client that stopped reading (an hour of events) before its queue notices;
/// capped, a stuck client's losses start within minutes and are counted. Ample for the stream's
/// ~1 kB/s.
const SEND_BUFFER: usize = 32 * 1024;
/// How long a client has to send a whole request header, from the moment the connection can
/// take one (it opened, or its previous answer was sent): also how long a connection may sit idle
/// between requests. Ample for any client on a network serd should serve; an idle browser
/// connection that is closed is reopened by the browser when it needs one.
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// The largest request header taken (larger ones get 431): serd reads only the request line,
/// `Host`, `Origin`, `Last-Event-ID` and the WebSocket handshake, and a browser's header for a
/// page on an address is well under 4 KiB. hyper's smallest setting is 8 KiB.
pub const MAX_HEADER: usize = 16 * 1024;
/// The largest WebSocket frame and message taken from a client: serd reads nothing from them
/// but their close frame (at most 125 bytes by the protocol); a client that sends more is
/// disconnected.
pub const MAX_WS_MESSAGE: usize = 1024;

const PAGE: &str = include_str!("page.html");

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("not an address: expected HOST:PORT, :PORT or PORT")]
    Address,
    #[error("--serve {address}: {source}")]
    Bind {
        address: String,
        source: std::io::Error,
    },
}

/// A running server.
pub struct Server {
    hub: Arc<Hub>,
    local: SocketAddr,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    done: crossbeam_channel::Receiver<()>,
    thread: Option<JoinHandle<()>>,
}

/// `HOST:PORT`, `:PORT` or `PORT` (loopback), resolved.
pub fn parse_address(text: &str) -> Result<SocketAddr, ServeError> {
    let bad = || ServeError::Address;
    let full = if let Some(port) = text.strip_prefix(':') {
        format!("127.0.0.1:{port}")
    } else if text.parse::<u16>().is_ok() {
        format!("127.0.0.1:{text}")
    } else {
        text.to_string()
    };
    full.to_socket_addrs()
        .map_err(|_| bad())?
        .next()
        .ok_or_else(bad)
}

impl Server {
    /// Binds `address` (port 0 picks a free one) and starts serving.
    pub fn start(address: SocketAddr) -> Result<Server, ServeError> {
        let bind_error = |source| ServeError::Bind {
            address: address.to_string(),
            source,
        };
        let listener = TcpListener::bind(address).map_err(bind_error)?;
        listener.set_nonblocking(true).map_err(bind_error)?;
        let local = listener.local_addr().map_err(bind_error)?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .enable_time()
            .build()
            .map_err(bind_error)?;
        let hub = Arc::new(Hub::new(format!("http://{local}/")));
        let feeds = hub.websocket_feeds();
        let app = router(hub.clone());
        let connections = Connections::new(conns::MAX_CONNECTIONS);
        let (shutdown, stop) = tokio::sync::oneshot::channel::<()>();
        let (done_tx, done) = crossbeam_channel::bounded(1);
        let thread = std::thread::Builder::new()
            .name("serd-serve".into())
            .spawn(move || {
                let result = runtime.block_on(async move {
                    let listener = tokio::net::TcpListener::from_std(listener)?;
                    let connections_left = connections.clone();
                    serve(listener, app, connections, stop).await;
                    // Connections finish what they are sending (each feed ends after the
                    // `end` event); upgraded ones (WebSockets) are the feeds'. Both get the
                    // rest of the linger time, then are dropped.
                    let _ = tokio::time::timeout(LINGER, async {
                        while connections_left.open() > 0
                            || feeds.load(std::sync::atomic::Ordering::Acquire) > 0
                        {
                            tokio::time::sleep(Duration::from_millis(10)).await;
                        }
                    })
                    .await;
                    Ok::<(), std::io::Error>(())
                });
                if let Err(e) = result {
                    log::error!("--serve: the server stopped: {e}");
                }
                let _ = done_tx.send(());
            })
            .expect("spawning a thread");
        if !local.ip().is_loopback() {
            log::warn!(
                "--serve {local}: reachable from other machines, with no authentication: anyone \
                 who can connect sees what serd hears"
            );
        }
        Ok(Server {
            hub,
            local,
            shutdown: Some(shutdown),
            done,
            thread: Some(thread),
        })
    }

    /// The hub, to hand to the chain as its tap.
    pub fn hub(&self) -> Arc<Hub> {
        self.hub.clone()
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// Ends every feed after what is queued, and stops; clients get up to `LINGER` to take
    /// what is left (a stuck one is abandoned).
    pub fn stop(mut self) {
        self.hub.close();
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if self.done.recv_timeout(LINGER).is_ok() {
            if let Some(thread) = self.thread.take() {
                let _ = thread.join();
            }
        }
    }
}

/// The accept loop: every connection gets a slot in `connections` (or a 503 when all are busy)
/// and is served by hyper with the header timeout and buffer limit, until `stop`.
async fn serve(
    listener: tokio::net::TcpListener,
    app: Router,
    connections: Arc<Connections>,
    stop: tokio::sync::oneshot::Receiver<()>,
) {
    let (closing_tx, closing) = tokio::sync::watch::channel(false);
    let mut stop = std::pin::pin!(stop);
    loop {
        let (tcp, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors, or a connection reset before it was accepted:
                    // wait a moment rather than spin (the connection waits in the backlog).
                    log::debug!("--serve: accepting a connection: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = &mut stop => break,
        };
        let Some((slot, closed)) = connections.admit() else {
            // Every slot is busy answering or streaming: a clear refusal, without waiting.
            let _ = tcp.try_write(refused().as_bytes());
            continue;
        };
        // Small writes go out at once (an event is one write).
        let _ = tcp.set_nodelay(true);
        #[cfg(unix)]
        let _ = rustix::net::sockopt::set_socket_send_buffer_size(&tcp, SEND_BUFFER);
        tokio::spawn(connection(
            tcp,
            peer,
            app.clone(),
            (slot, closed),
            closing.clone(),
        ));
    }
    let _ = closing_tx.send(true);
    drop(listener);
}

/// The answer to a connection for which no slot could be made.
fn refused() -> String {
    let body = format!(
        "serd keeps {} connections at most, and all are busy; try again later\n",
        conns::MAX_CONNECTIONS
    );
    format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: text/plain\r\nconnection: close\r\n\
         content-length: {}\r\n\r\n{body}",
        body.len()
    )
}

/// Serves one connection until it closes, its slot is taken for a newcomer, or the server stops
/// (then it finishes what it is sending).
async fn connection(
    tcp: tokio::net::TcpStream,
    peer: SocketAddr,
    app: Router,
    (slot, mut closed): (conns::Slot, tokio::sync::oneshot::Receiver<()>),
    mut closing: tokio::sync::watch::Receiver<bool>,
) {
    let activity = slot.activity.clone();
    let service = hyper::service::service_fn(move |mut request: Request<Incoming>| {
        request.extensions_mut().insert(ConnectInfo(peer));
        let activity = activity.clone();
        let mut app = app.clone();
        async move {
            activity.begin();
            let response = app.call(request).await?;
            // A stream keeps the connection busy until it closes.
            let streaming = response.status() == StatusCode::SWITCHING_PROTOCOLS
                || response
                    .headers()
                    .get(header::CONTENT_TYPE)
                    .is_some_and(|t| t.as_bytes().starts_with(b"text/event-stream"));
            if !streaming {
                activity.end();
            }
            Ok::<_, Infallible>(response)
        }
    });
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(HEADER_TIMEOUT)
        .max_buf_size(MAX_HEADER)
        // A client that shut its sending side after the request (`nc -N`, some scripts)
        // still gets the whole answer, the event stream included.
        .half_close(true);
    let conn = http
        .serve_connection(hyper_util::rt::TokioIo::new(tcp), service)
        .with_upgrades();
    let mut conn = std::pin::pin!(conn);
    let mut closing_seen = false;
    loop {
        tokio::select! {
            result = conn.as_mut() => {
                if let Err(e) = result {
                    log::debug!("--serve: connection from {peer}: {e}");
                }
                break;
            }
            _ = &mut closed => {
                log::debug!("--serve: closing the idle connection from {peer} to make room");
                break;
            }
            _ = closing.changed(), if !closing_seen => {
                closing_seen = true;
                conn.as_mut().graceful_shutdown();
            }
        }
    }
    drop(slot);
}

fn router(hub: Arc<Hub>) -> Router {
    Router::new()
        .route("/", get(page))
        .route("/events", get(events))
        .route("/ws", get(websocket))
        .route("/health", get(health))
        .with_state(hub)
        .layer(middleware::from_fn(addressed_by_ip))
}

/// Refuses requests addressed to a host name other than `localhost`: a web page whose own name
/// resolves to this machine (DNS rebinding) must not reach serd, and a rebinding attack needs a
/// name. Addresses (`127.0.0.1:8377`, `[::1]:8377`, `192.168.1.5:8377`) and `localhost` pass.
/// The address is the request target's when it names one (absolute form, `GET http://host/`,
/// which HTTP says wins over `Host`), else `Host`'s. A request with more than one `Host` or
/// `Origin` is refused (400) rather than judged by one of them: proxies and servers differ on
/// which they read.
async fn addressed_by_ip(request: Request, next: Next) -> Response {
    let headers = request.headers();
    if headers.get_all(header::HOST).iter().count() > 1
        || headers.get_all(header::ORIGIN).iter().count() > 1
    {
        return (
            StatusCode::BAD_REQUEST,
            "more than one Host or Origin header\n",
        )
            .into_response();
    }
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("");
    if host_is_allowed(addressed_to(request.uri(), host)) {
        next.run(request).await
    } else {
        (
            StatusCode::FORBIDDEN,
            "serd answers requests addressed to an IP address or localhost only\n",
        )
            .into_response()
    }
}

/// The address a request is for: its target's authority in absolute form, else `Host`.
fn addressed_to<'a>(uri: &'a axum::http::Uri, host: &'a str) -> &'a str {
    uri.authority().map_or(host, |a| a.as_str())
}

/// `Host` is an IP address or `localhost`, with or without a port.
fn host_is_allowed(host: &str) -> bool {
    if host.parse::<SocketAddr>().is_ok() || host.parse::<std::net::IpAddr>().is_ok() {
        return true;
    }
    if let Some(v6) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        return v6.parse::<std::net::Ipv6Addr>().is_ok();
    }
    let name = match host.rsplit_once(':') {
        Some((name, port)) if port.parse::<u16>().is_ok() => name,
        _ => host,
    };
    name.eq_ignore_ascii_case("localhost")
}

async fn page() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        PAGE,
    )
}

async fn health(State(hub): State<Arc<Hub>>) -> impl IntoResponse {
    let body = serde_json::to_string(&hub.health()).expect("health serialises");
    (
        [
            (header::CONTENT_TYPE, "application/json"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        body,
    )
}

async fn events(
    State(hub): State<Arc<Hub>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
) -> Response {
    let after = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| hub.seen(v));
    let Ok(subscription) = hub.subscribe(Kind::Sse, peer.to_string(), after) else {
        return too_many();
    };
    let stream = futures_util::stream::unfold(subscription, move |mut sub| {
        let hub = hub.clone();
        async move {
            let event = match sub.next().await? {
                Item::Event { seq, line } => SseEvent::default().id(hub.event_id(seq)).data(&*line),
                Item::Level(level) => SseEvent::default().event("level").data(&*level),
            };
            Some((Ok::<_, Infallible>(event), sub))
        }
    });
    Sse::new(stream)
        .keep_alive(KeepAlive::default())
        .into_response()
}

fn too_many() -> Response {
    (
        StatusCode::SERVICE_UNAVAILABLE,
        format!("serd serves {} clients at most\n", hub::MAX_CLIENTS),
    )
        .into_response()
}

async fn websocket(
    State(hub): State<Arc<Hub>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    uri: axum::http::Uri,
    headers: HeaderMap,
    upgrade: WebSocketUpgrade,
) -> Response {
    // Browsers send Origin and apply no same-origin rule to WebSockets: only the live page's
    // own origin may connect. Programs send no Origin.
    if let Some(origin) = headers.get(header::ORIGIN) {
        let host = headers.get(header::HOST).and_then(|h| h.to_str().ok());
        let host = Some(addressed_to(&uri, host.unwrap_or("")));
        let same = origin
            .to_str()
            .ok()
            .and_then(|o| o.strip_prefix("http://"))
            .is_some_and(|o| Some(o) == host);
        if !same {
            return (StatusCode::FORBIDDEN, "cross-origin WebSocket refused\n").into_response();
        }
    }
    let Ok(subscription) = hub.subscribe(Kind::WebSocket, peer.to_string(), None) else {
        return too_many();
    };
    upgrade
        .max_frame_size(MAX_WS_MESSAGE)
        .max_message_size(MAX_WS_MESSAGE)
        .read_buffer_size(4096)
        .write_buffer_size(0)
        .on_upgrade(move |socket| feed(socket, subscription))
}

async fn feed(mut socket: WebSocket, mut sub: Subscription) {
    log::debug!("--serve: WebSocket client {} joined", sub.id());
    let _running = sub.feed_guard();
    loop {
        tokio::select! {
            item = sub.next() => match item {
                Some(Item::Event { line, .. }) => {
                    if socket.send(Message::text(line.to_string())).await.is_err() {
                        return;
                    }
                }
                Some(Item::Level(_)) => {}
                None => {
                    let _ = socket.send(Message::Close(None)).await;
                    return;
                }
            },
            incoming = socket.recv() => match incoming {
                Some(Ok(Message::Close(_)) | Err(_)) | None => return,
                Some(Ok(_)) => {}
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_default_to_loopback() {
        let a = |t| parse_address(t).unwrap().to_string();
        assert_eq!(a("8377"), "127.0.0.1:8377");
        assert_eq!(a(":0"), "127.0.0.1:0");
        assert_eq!(a("0.0.0.0:9000"), "0.0.0.0:9000");
        assert_eq!(a(DEFAULT_ADDRESS), "127.0.0.1:8377");
        assert!(matches!(parse_address("nowhere"), Err(ServeError::Address)));
        assert!(matches!(
            parse_address("1.2.3.4:99999"),
            Err(ServeError::Address)
        ));
    }

    #[test]
    fn only_addresses_and_localhost_are_served() {
        for host in [
            "127.0.0.1:8377",
            "127.0.0.2:8377",
            "[::1]:8377",
            "[::1]",
            "192.168.1.5:8377",
            "localhost",
            "LocalHost:8377",
        ] {
            assert!(host_is_allowed(host), "{host}");
        }
        for host in [
            "",
            "attacker.example",
            "attacker.example:8377",
            "localhost.evil:80",
            "[::1",
            "localhost:x",
        ] {
            assert!(!host_is_allowed(host), "{host}");
        }
    }
}
