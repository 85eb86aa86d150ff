//! `serd listen --serve`: Server-Sent Events and WebSocket against stdout, `/health`, the
//! loopback guards, and the live page in a real browser (headless Chromium over the DevTools
//! protocol).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::common::{fixture, prerequisite_missing};

/// `speech_16k.wav` three times over, then 4 s of digital silence: about 22 s, so that a
/// real-time replay leaves the clients time to join, ending in silence windows.
fn long_speech(dir: &Path) -> PathBuf {
    let bytes = std::fs::read(fixture("speech_16k.wav")).unwrap();
    let (header, data) = bytes.split_at(44);
    let mut pcm = data.to_vec();
    let once = pcm.clone();
    pcm.extend_from_slice(&once);
    pcm.extend_from_slice(&once);
    pcm.resize(pcm.len() + 4 * 16_000 * 2, 0);
    let mut out = header.to_vec();
    out[4..8].copy_from_slice(&(36 + pcm.len() as u32).to_le_bytes());
    out[40..44].copy_from_slice(&(pcm.len() as u32).to_le_bytes());
    out.extend_from_slice(&pcm);
    let path = dir.join("long.wav");
    std::fs::write(&path, out).unwrap();
    path
}

/// A running `serd listen --serve`, its stdout lines arriving on a channel.
struct Listen {
    child: Child,
    lines: mpsc::Receiver<String>,
    first: String,
    start: Value,
    addr: SocketAddr,
}

impl Listen {
    fn spawn(input: &Path) -> Listen {
        let mut child = Command::new(env!("CARGO_BIN_EXE_serd"))
            .args(["listen", "--realtime", "--backend", "cpu", "--serve", ":0"])
            .arg("--input")
            .arg(input)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("run serd");
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let first = lines
            .recv_timeout(Duration::from_secs(120))
            .expect("the start event");
        let start: Value = serde_json::from_str(&first).unwrap();
        assert_eq!(start["type"], "start");
        let url = start["serve"].as_str().expect("start names the address");
        let addr = url
            .strip_prefix("http://")
            .and_then(|u| u.strip_suffix('/'))
            .unwrap()
            .parse()
            .unwrap();
        Listen {
            child,
            lines,
            first,
            start,
            addr,
        }
    }

    /// The rest of stdout, up to and including the end event, after which serd closes stdout
    /// but goes on serving.
    fn ended(&mut self) -> Vec<String> {
        let mut lines = vec![std::mem::take(&mut self.first)];
        while let Ok(line) = self.lines.recv_timeout(Duration::from_secs(60)) {
            lines.push(line);
        }
        assert!(
            lines.last().unwrap().contains(r#""type":"end""#),
            "{lines:?}"
        );
        assert!(
            self.child.try_wait().unwrap().is_none(),
            "serd stopped serving when its input ended"
        );
        lines
    }

    /// Stops serd with SIGINT, which must then exit with 0.
    fn interrupt(mut self) {
        crate::common::signal(&self.child, "-INT");
        let status = crate::common::wait_at_most(&mut self.child, Duration::from_secs(10));
        assert!(status.success(), "{status:?}");
    }

    /// [`Listen::ended`], then [`Listen::interrupt`].
    fn finish(mut self) -> Vec<String> {
        let lines = self.ended();
        self.interrupt();
        lines
    }
}

/// A failed test does not leave serd running.
impl Drop for Listen {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// One HTTP/1.0 request (the body ends when the server closes): status line, headers, body.
fn request(addr: SocketAddr, path: &str, headers: &[(&str, &str)]) -> (String, String) {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    let mut head = format!("GET {path} HTTP/1.0\r\n");
    if !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("host")) {
        head += &format!("Host: {addr}\r\n");
    }
    for (k, v) in headers {
        head += &format!("{k}: {v}\r\n");
    }
    head += "\r\n";
    stream.write_all(head.as_bytes()).unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
    (head.to_string(), body.to_string())
}

/// Reads `/events` until the end event: the `data` of each message (not of `level` events),
/// and the number of level events.
fn read_sse(addr: SocketAddr) -> (Vec<String>, usize) {
    let (head, body) = request(addr, "/events", &[]);
    assert!(head.starts_with("HTTP/1.0 200"), "{head}");
    assert!(head.contains("text/event-stream"), "{head}");
    let mut messages = Vec::new();
    let mut levels = 0;
    for record in body.split("\n\n") {
        let mut event = None;
        let mut data = None;
        for field in record.lines() {
            if let Some(v) = field.strip_prefix("event: ") {
                event = Some(v.to_string());
            } else if let Some(v) = field.strip_prefix("data: ") {
                data = Some(v.to_string());
            }
        }
        match (event.as_deref(), data) {
            (Some("level"), Some(d)) => {
                let v: Value = serde_json::from_str(&d).unwrap();
                assert!(v["dbfs"].as_f64().unwrap() <= 0.0, "{d}");
                levels += 1;
            }
            (None, Some(d)) => messages.push(d),
            _ => {}
        }
    }
    (messages, levels)
}

fn read_websocket(addr: SocketAddr) -> Vec<String> {
    let stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    let (mut socket, _) = tungstenite::client(format!("ws://{addr}/ws"), stream).expect("upgrade");
    let mut messages = Vec::new();
    loop {
        match socket.read() {
            Ok(tungstenite::Message::Text(t)) => messages.push(t.to_string()),
            Ok(tungstenite::Message::Close(_)) => break,
            Ok(_) => {}
            Err(tungstenite::Error::ConnectionClosed) => break,
            Err(e) => panic!("websocket: {e}"),
        }
    }
    messages
}

#[test]
fn events_and_websocket_carry_stdout_and_health_reports_the_clients() {
    let dir = tempfile::tempdir().unwrap();
    let listen = Listen::spawn(&long_speech(dir.path()));
    let addr = listen.addr;
    let sse = std::thread::spawn(move || read_sse(addr));
    let ws = std::thread::spawn(move || read_websocket(addr));

    // Both clients show in /health while the stream runs.
    let deadline = Instant::now() + Duration::from_secs(30);
    let health = loop {
        let (head, body) = request(addr, "/health", &[]);
        assert!(head.contains("application/json"), "{head}");
        let health: Value = serde_json::from_str(&body).unwrap();
        if health["clients"].as_array().unwrap().len() == 2 || Instant::now() > deadline {
            break health;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(health["running"], true);
    assert_eq!(health["source"], listen.start["source"]);
    let mut kinds: Vec<&str> = health["clients"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["kind"].as_str().unwrap())
        .collect();
    kinds.sort();
    assert_eq!(kinds, ["sse", "websocket"], "{health}");
    // The chain's drops depend on the machine's load (a real-time replay drops like a device);
    // the clients read as fast as they can.
    assert!(health["dropped"]["windows"].is_u64(), "{health}");
    assert!(health["dropped"]["audio_s"].is_f64(), "{health}");
    assert_eq!(health["dropped"]["client_items"], 0, "{health}");

    // A page elsewhere cannot reach a loopback server, by name or by WebSocket.
    let (head, _) = request(addr, "/health", &[("Host", "attacker.example")]);
    assert!(head.starts_with("HTTP/1.0 403"), "{head}");
    {
        use tungstenite::client::IntoClientRequest;
        let mut ws_request = format!("ws://{addr}/ws").into_client_request().unwrap();
        ws_request
            .headers_mut()
            .insert("Origin", "http://attacker.example".parse().unwrap());
        match tungstenite::client(ws_request, TcpStream::connect(addr).unwrap()) {
            Err(tungstenite::HandshakeError::Failure(tungstenite::Error::Http(r))) => {
                assert_eq!(r.status(), 403);
            }
            other => panic!(
                "a cross-origin WebSocket was not refused: {:?}",
                other.is_ok()
            ),
        }
    }
    let (head, page) = request(addr, "/", &[]);
    assert!(head.contains("text/html"), "{head}");
    assert!(page.contains("EventSource(\"events\")"));
    assert!(
        !page.contains("http://") && !page.contains("https://"),
        "the page fetches nothing from elsewhere"
    );

    let stdout = listen.finish();
    let (sse, levels) = sse.join().unwrap();
    assert_eq!(sse, stdout, "Server-Sent Events carry stdout's lines");
    assert!(levels >= 100, "about ten levels a second; got {levels}");
    assert_eq!(
        ws.join().unwrap(),
        stdout,
        "the WebSocket carries stdout's lines"
    );
    assert!(stdout.len() > 10, "{stdout:?}");
}

/// The DevTools protocol over the browser's WebSocket, one page session.
struct Browser {
    child: Child,
    socket: tungstenite::WebSocket<TcpStream>,
    session: String,
    next: u64,
    _profile: tempfile::TempDir,
}

impl Browser {
    fn launch(chromium: &str) -> Browser {
        let profile = tempfile::tempdir().unwrap();
        let mut child = Command::new(chromium)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--no-first-run",
                "--no-default-browser-check",
                "--window-size=1200,760",
                "--remote-debugging-port=0",
                "about:blank",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run chromium");
        let stderr = BufReader::new(child.stderr.take().unwrap());
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in stderr.lines().map_while(Result::ok) {
                if let Some(url) = line.strip_prefix("DevTools listening on ") {
                    let _ = tx.send(url.to_string());
                }
            }
        });
        let url = rx
            .recv_timeout(Duration::from_secs(60))
            .expect("chromium's DevTools address");
        let host = url
            .strip_prefix("ws://")
            .and_then(|u| u.split('/').next())
            .unwrap();
        let stream = TcpStream::connect(host).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(60)))
            .unwrap();
        let (socket, _) = tungstenite::client(url.as_str(), stream).expect("DevTools");
        let mut browser = Browser {
            child,
            socket,
            session: String::new(),
            next: 0,
            _profile: profile,
        };
        let target = browser.call("Target.createTarget", json!({"url": "about:blank"}));
        let attached = browser.call(
            "Target.attachToTarget",
            json!({"targetId": target["targetId"], "flatten": true}),
        );
        browser.session = attached["sessionId"].as_str().unwrap().to_string();
        browser
    }

    fn call(&mut self, method: &str, params: Value) -> Value {
        self.next += 1;
        let mut message = json!({"id": self.next, "method": method, "params": params});
        if !self.session.is_empty() {
            message["sessionId"] = json!(self.session);
        }
        self.socket
            .send(tungstenite::Message::text(message.to_string()))
            .unwrap();
        loop {
            let tungstenite::Message::Text(text) = self.socket.read().unwrap() else {
                continue;
            };
            let reply: Value = serde_json::from_str(&text).unwrap();
            if reply["id"] == self.next {
                assert!(reply.get("error").is_none(), "{method}: {reply}");
                return reply["result"].clone();
            }
        }
    }

    fn eval(&mut self, expression: &str) -> Value {
        let r = self.call(
            "Runtime.evaluate",
            json!({"expression": expression, "returnByValue": true}),
        );
        r["result"]["value"].clone()
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn chromium() -> Option<&'static str> {
    ["chromium", "chromium-browser"].into_iter().find(|c| {
        Command::new(c)
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    })
}

#[test]
fn the_live_page_draws_the_events_in_chromium() {
    let Some(chromium) = chromium() else {
        prerequisite_missing("no chromium (tools/setup --test installs it)");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let mut browser = Browser::launch(chromium);
    let listen = Listen::spawn(&long_speech(dir.path()));
    let url = listen.start["serve"].as_str().unwrap().to_string();
    browser.call("Page.navigate", json!({"url": url}));

    // Windows are drawn as they come, while the stream runs.
    let deadline = Instant::now() + Duration::from_secs(60);
    while browser.eval("serd.drawn").as_u64().unwrap_or(0) < 3 {
        assert!(Instant::now() < deadline, "no window drawn");
        std::thread::sleep(Duration::from_millis(100));
    }
    let level = browser.eval("document.getElementById('level').textContent");
    assert!(level.as_str().unwrap().contains("dBFS"), "{level}");

    let stdout = listen.finish();
    let events: Vec<Value> = stdout
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let windows: Vec<&Value> = events
        .iter()
        .filter(|e| e["type"] == "emotion" || e["type"] == "silence")
        .collect();
    let deadline = Instant::now() + Duration::from_secs(10);
    while browser.eval("serd.end !== null && serd.drawn").as_u64() != Some(windows.len() as u64) {
        assert!(
            Instant::now() < deadline,
            "the page did not draw every window"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // Every utterance is on the strip, labelled, in order; the last one is spelled out.
    let utterances: Vec<&Value> = events.iter().filter(|e| e["type"] == "utterance").collect();
    assert!(!utterances.is_empty(), "{stdout:?}");
    assert_eq!(
        browser.eval("serd.utterances").as_u64(),
        Some(utterances.len() as u64)
    );
    let strip = browser.eval(
        "[...document.querySelectorAll('#strip .utt')].map(e => [e.textContent,          e.getBoundingClientRect().width])",
    );
    let strip = strip.as_array().unwrap();
    assert_eq!(strip.len(), utterances.len(), "{strip:?}");
    for (shown, u) in strip.iter().zip(&utterances) {
        let percent = (u["confidence"].as_f64().unwrap() * 100.0).round();
        let text = format!("{} {percent} %", u["label"].as_str().unwrap());
        assert_eq!(shown[0], json!(text), "{u}");
        // Drawn to scale: an utterance of several seconds on a minute's axis is tens of pixels.
        let seconds = u["t_end"].as_f64().unwrap() - u["t_start"].as_f64().unwrap();
        assert!(
            shown[1].as_f64().unwrap() > seconds * 5.0,
            "{shown:?} for {u}"
        );
    }
    let last_utterance = browser.eval("document.getElementById('utterance').textContent");
    let last = utterances.last().unwrap();
    assert!(
        last_utterance
            .as_str()
            .unwrap()
            .starts_with(last["label"].as_str().unwrap()),
        "{last_utterance}"
    );
    // Every figure has its label or unit: no bare number in the facts beside the label.
    let facts =
        browser.eval("[...document.querySelectorAll('#detail div')].map(d => d.textContent)");
    for fact in facts.as_array().unwrap() {
        let fact = fact.as_str().unwrap();
        assert!(
            ["confidence", "window", "voiced", "latency"]
                .iter()
                .any(|l| fact.starts_with(l)),
            "{fact}"
        );
    }
    // What the page shows is the last window, as stdout has it: silence, shown as such.
    let last = windows.last().unwrap();
    assert_eq!(last["type"], "silence", "{stdout:?}");
    let shown = browser.eval("document.getElementById('label').textContent");
    let expected = if last["type"] == "emotion" {
        last["label"].clone()
    } else {
        json!("silence")
    };
    assert_eq!(shown, expected);
    let facts = browser.eval("document.getElementById('facts').textContent");
    assert!(
        facts
            .as_str()
            .unwrap()
            .contains(events[0]["source"].as_str().unwrap()),
        "{facts}"
    );
    let status = browser.eval("document.getElementById('status').textContent");
    assert_eq!(status, "ended");
    // The timeline has been drawn: the canvas is not blank.
    let inked = browser.eval(
        "(() => { const c = document.getElementById('chart'); \
         const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data; \
         let n = 0; for (let i = 3; i < d.length; i += 4) if (d[i] > 0) n++; return n; })()",
    );
    assert!(inked.as_u64().unwrap() > 2_000, "{inked}");

    let shot = browser.call("Page.captureScreenshot", json!({"format": "png"}));
    let png = {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD
            .decode(shot["data"].as_str().unwrap())
            .unwrap()
    };
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    let artefact = Path::new(env!("CARGO_TARGET_TMPDIR")).join("live-page.png");
    std::fs::write(&artefact, &png).unwrap();
    eprintln!("screenshot: {}", artefact.display());
}

/// With `--serve`, a file that ended leaves the server up: stdout gets its `end` event and is
/// closed, `/health` and the page still answer, and a late `/events` client gets the whole
/// replay; serd exits with 0 on SIGINT.
#[test]
fn the_server_outlives_a_file_input_until_sigint() {
    let mut listen = Listen::spawn(&fixture("speech_16k.wav"));
    let addr = listen.addr;
    let stdout = listen.ended();
    // Past the time serd used to linger for clients before exiting.
    std::thread::sleep(Duration::from_millis(1500));
    for _ in 0..2 {
        let (head, body) = request(addr, "/health", &[]);
        assert!(head.starts_with("HTTP/1.0 200"), "{head}");
        let health: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(health["running"], false, "{health}");
        let windows = stdout
            .iter()
            .filter(|l| l.contains(r#""type":"emotion""#) || l.contains(r#""type":"silence""#))
            .count();
        assert_eq!(health["windows"], windows as u64, "{health}");
        let utterances = stdout
            .iter()
            .filter(|l| l.contains(r#""type":"utterance""#))
            .count();
        assert!(utterances >= 1, "{stdout:?}");
        assert_eq!(health["utterances"], utterances as u64, "{health}");
        let (head, page) = request(addr, "/", &[]);
        assert!(head.starts_with("HTTP/1.0 200"), "{head}");
        assert!(page.contains("id=\"strip\""));
        std::thread::sleep(Duration::from_millis(500));
    }
    let (sse, _) = read_sse(addr);
    assert_eq!(sse, stdout, "a late client gets the replay, end included");
    assert!(listen.child.try_wait().unwrap().is_none());
    listen.interrupt();
    assert!(
        TcpStream::connect(addr).is_err(),
        "the server stopped with serd"
    );
}

#[test]
fn serve_errors_are_one_line_and_usage_errors_exit_with_2() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let input = fixture("speech_16k.wav");
    let out = crate::common::serd(&[
        "listen",
        "--backend",
        "cpu",
        "--serve",
        &port,
        "--input",
        input.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = crate::common::text(&out.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains(&format!("--serve 127.0.0.1:{port}: ")),
        "{stderr}"
    );
    assert!(out.stdout.is_empty());

    let out = crate::common::serd(&["listen", "--serve", "nowhere", "--input", "x.wav"]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = crate::common::text(&out.stderr);
    assert!(
        stderr.contains("not an address: expected HOST:PORT, :PORT or PORT"),
        "{stderr}"
    );
}
