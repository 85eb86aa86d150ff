//! The hostile battery of issue 27, each failure it found as a regression test: extreme samples
//! (no panic, one warning, the other files go on), signals while the source is silent or
//! stalled (a prompt exit, with `end` on stdout and to network clients), and the network side's
//! bounds (header timeout, header size, the connection cap, WebSocket message size, duplicate
//! or absolute-form addresses). Timings are measured in `benches/limits.py`; the tests only bound
//! them generously.

use std::io::{BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::common::{
    fixture, json_lines, lines_of, serd, serd_stdin, signal, spawn_piped, text, tone, wait_at_most,
    Wav,
};

/// A generous bound on a stop that takes under a second.
const STOPS_WITHIN: Duration = Duration::from_secs(10);

/// A float WAV whose samples are a tone, with two samples of 2e38 (finite, far beyond any audio).
fn spike(dir: &Path, rate: u32) -> std::path::PathBuf {
    let mut samples = tone(rate, 1.5);
    samples[rate as usize / 2] = 2e38;
    samples[rate as usize / 2 + 1] = 2e38;
    let float = Wav {
        bits: 32,
        float: true,
        ..Wav::pcm16(rate, 1)
    };
    let path = dir.join("spike.wav");
    std::fs::write(&path, float.encode(&samples)).unwrap();
    path
}

/// Reproduction: `serd predict spike.wav` exited 101 (rubato's panic) and the other files'
/// output was lost. Now the samples are clipped to ±1000, with one warning naming the file, and
/// every file gets its prediction; `extract` reads it the same way.
#[test]
fn huge_samples_are_clipped_with_one_warning_and_the_other_files_go_on() {
    let dir = tempfile::tempdir().unwrap();
    let spike = spike(dir.path(), 48_000);
    let spike = spike.to_str().unwrap();
    let good = fixture("speech_16k.wav");
    let out = serd(&["predict", "--backend", "cpu", spike, good.to_str().unwrap()]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let lines = json_lines(&out.stdout);
    assert_eq!(lines.len(), 2, "{stderr}");
    assert_eq!(lines[0]["file"], spike);
    let warnings: Vec<&str> = stderr.lines().filter(|l| l.contains("spike.wav")).collect();
    assert_eq!(warnings.len(), 1, "{stderr}");
    assert!(warnings[0].contains("beyond ±1000"), "{stderr}");
    assert!(!stderr.contains("internal error"), "{stderr}");

    let out = serd(&["extract", spike]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
}

/// Reproduction: `listen --input -` with random `f32le` bytes exited 1. Random floats hold NaNs
/// and values up to 3e38: read as silence and clipped, with a warning of each kind, and the
/// stream runs to its `end`.
#[test]
fn random_float_bytes_on_stdin_are_listened_to_the_end() {
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let bytes: Vec<u8> = (0..48_000 * 4 * 3)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 24) as u8
        })
        .collect();
    let out = serd_stdin(
        &[
            "listen",
            "--input",
            "-",
            "--raw",
            "f32le",
            "--rate",
            "48000",
            "--backend",
            "cpu",
        ],
        bytes,
    );
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let events = json_lines(&out.stdout);
    assert_eq!(events.last().unwrap()["type"], "end", "{stderr}");
    assert!(
        stderr.contains("stdin") && stderr.contains("beyond ±1000"),
        "{stderr}"
    );
    assert!(stderr.contains("not numbers"), "{stderr}");
}

/// Reproduction: `eval --condition "gain:40+…(19 times)+rate:48000"` exited 101, and 20 chained
/// `gain:40` reported figures of infinite samples. Such a condition is now an error for each file
/// (named in the warning), the clean figures are reported, and the process ends normally.
#[test]
fn a_condition_that_overflows_is_reported_not_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = dir.path().join("data.csv");
    let mut rows = String::from("path,label,speaker\n");
    for (i, name) in ["speech_16k.wav", "speech_48k.wav"].iter().enumerate() {
        rows += &format!("{},neutral,s{i}\n", fixture(name).display());
    }
    std::fs::write(&manifest, rows).unwrap();
    let spec = format!("{}rate:48000", "gain:40+".repeat(19));
    let out = serd(&[
        "eval",
        "--backend",
        "cpu",
        "--data",
        manifest.to_str().unwrap(),
        "--cache",
        dir.path().join("cache").to_str().unwrap(),
        "--condition",
        &spec,
    ]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(!stderr.contains("internal error"), "{stderr}");
    assert!(stderr.contains("beyond the ±1000"), "{stderr}");
    let report = &json_lines(&out.stdout)[0];
    assert_eq!(report["n"], 2);
    assert_eq!(report["conditions"][0]["n"], 0, "{report}");
}

/// `serd listen` with stdin as a pipe kept open by the test.
fn listen_on_stdin(args: &[&str]) -> (Child, ChildStdin) {
    let all: Vec<&str> = ["listen", "--input", "-", "--backend", "cpu"]
        .into_iter()
        .chain(args.iter().copied())
        .collect();
    let mut child = spawn_piped(&all);
    let stdin = child.stdin.take().unwrap();
    (child, stdin)
}

/// Time for serd to set up its signal handlers (the first thing `listen` does).
fn settle() {
    std::thread::sleep(Duration::from_millis(1500));
}

/// Reproduction: `sleep 600 | serd listen --input -` ignored SIGTERM, SIGINT and SIGHUP until
/// bytes came (the header was being waited for); a FIFO nobody writes, the same. Now a signal
/// ends it promptly with 0; no `start` was written (the source's format is not known yet), so no
/// `end` either: stdout is empty.
#[test]
fn a_signal_ends_listen_while_the_source_has_sent_nothing() {
    for name in ["-TERM", "-INT", "-HUP"] {
        let (mut child, stdin) = listen_on_stdin(&[]);
        settle();
        signal(&child, name);
        let status = wait_at_most(&mut child, STOPS_WITHIN);
        assert_eq!(status.code(), Some(0), "{name}");
        drop(stdin);
        let out = child.wait_with_output().unwrap();
        assert!(out.stdout.is_empty(), "{name}: {}", text(&out.stdout));
    }

    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("fifo");
    let made = Command::new("mkfifo").arg(&fifo).status().unwrap();
    assert!(made.success());
    let mut child = Command::new(env!("CARGO_BIN_EXE_serd"))
        .args(["listen", "--backend", "cpu", "--input"])
        .arg(&fifo)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    settle();
    signal(&child, "-TERM");
    assert_eq!(wait_at_most(&mut child, STOPS_WITHIN).code(), Some(0));
}

/// Reproduction: raw input that never arrives got only `start` on stdout after a signal, and a
/// stream that stalled after its first second lost its `end` ("the chain did not drain"). Now
/// both end with `end`, on stdout and to an SSE and a WebSocket client.
#[test]
fn a_signal_ends_a_stalled_stream_with_an_end_event_everywhere() {
    // Raw input, none of it sent.
    let (mut child, _stdin) = listen_on_stdin(&["--raw", "s16le", "--rate", "16000"]);
    let lines = lines_of(&mut child);
    let start = lines.recv_timeout(Duration::from_secs(120)).unwrap();
    assert!(start.contains(r#""type":"start""#), "{start}");
    signal(&child, "-TERM");
    assert_eq!(wait_at_most(&mut child, STOPS_WITHIN).code(), Some(0));
    let rest: Vec<String> = lines.iter().collect();
    assert!(rest.last().unwrap().contains(r#""type":"end""#), "{rest:?}");

    // A WAV stream that stalls after its first three seconds, with clients on the network.
    let (mut child, mut stdin) = listen_on_stdin(&["--serve", ":0"]);
    let wav = std::fs::read(fixture("speech_16k.wav")).unwrap();
    stdin.write_all(&wav[..96_044]).unwrap();
    stdin.flush().unwrap();
    let lines = lines_of(&mut child);
    let start: Value =
        serde_json::from_str(&lines.recv_timeout(Duration::from_secs(120)).unwrap()).unwrap();
    let addr = address(&start);
    let sse = sse_client(addr);
    let ws = websocket_client(addr);
    // Both clients are connected once /health lists them.
    let deadline = Instant::now() + Duration::from_secs(30);
    while health(addr)["clients"].as_array().unwrap().len() < 2 {
        assert!(Instant::now() < deadline, "the clients did not join");
        std::thread::sleep(Duration::from_millis(50));
    }
    signal(&child, "-INT");
    assert_eq!(wait_at_most(&mut child, STOPS_WITHIN).code(), Some(0));
    let rest: Vec<String> = lines.iter().collect();
    let last = rest.last().map_or("", String::as_str);
    assert!(last.contains(r#""type":"end""#), "{rest:?}");
    let sse = sse.recv_timeout(STOPS_WITHIN).unwrap();
    assert!(sse.contains(r#""type":"end""#), "SSE: {sse}");
    let ws = ws.recv_timeout(STOPS_WITHIN).unwrap();
    assert!(
        ws.last().is_some_and(|m| m.contains(r#""type":"end""#)),
        "WebSocket: {ws:?}"
    );
    let stderr = text(&child.wait_with_output().unwrap().stderr);
    assert!(!stderr.contains("did not drain"), "{stderr}");
}

fn address(start: &Value) -> SocketAddr {
    start["serve"]
        .as_str()
        .and_then(|u| u.strip_prefix("http://"))
        .and_then(|u| u.strip_suffix('/'))
        .expect("start names the address")
        .parse()
        .unwrap()
}

/// Everything an SSE client receives until the server closes (sent on the channel then).
fn sse_client(addr: SocketAddr) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    let mut stream = TcpStream::connect(addr).unwrap();
    write!(stream, "GET /events HTTP/1.1\r\nHost: {addr}\r\n\r\n").unwrap();
    std::thread::spawn(move || {
        let mut body = String::new();
        let _ = stream.read_to_string(&mut body);
        let _ = tx.send(body);
    });
    rx
}

/// The text messages a WebSocket client receives until the server closes.
fn websocket_client(addr: SocketAddr) -> mpsc::Receiver<Vec<String>> {
    let (tx, rx) = mpsc::channel();
    let (mut socket, _) =
        tungstenite::client::client(format!("ws://{addr}/ws"), TcpStream::connect(addr).unwrap())
            .unwrap();
    std::thread::spawn(move || {
        let mut got = Vec::new();
        while let Ok(message) = socket.read() {
            if let tungstenite::Message::Text(t) = message {
                got.push(t.to_string());
            }
        }
        let _ = tx.send(got);
    });
    rx
}

/// One request and the whole answer (`Connection: close`).
fn exchange(addr: SocketAddr, request: &str) -> String {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    stream.write_all(request.as_bytes()).unwrap();
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    text(&answer)
}

fn health(addr: SocketAddr) -> Value {
    let answer = exchange(
        addr,
        &format!("GET /health HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"),
    );
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    serde_json::from_str(answer.split("\r\n\r\n").nth(1).unwrap()).unwrap()
}

/// `serd listen --serve :0` on a raw stdin stream the test feeds (or not).
struct Served {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: mpsc::Receiver<String>,
    addr: SocketAddr,
}

impl Served {
    fn start() -> Served {
        let (mut child, stdin) =
            listen_on_stdin(&["--raw", "s16le", "--rate", "16000", "--serve", ":0"]);
        let lines = lines_of(&mut child);
        let start: Value =
            serde_json::from_str(&lines.recv_timeout(Duration::from_secs(120)).unwrap()).unwrap();
        let addr = address(&start);
        Served {
            child,
            stdin: Some(stdin),
            lines,
            addr,
        }
    }

    /// Ends the stream (stdin closes): serd writes `end` and exits with 0.
    fn finish(mut self) -> Vec<String> {
        drop(self.stdin.take());
        assert_eq!(wait_at_most(&mut self.child, STOPS_WITHIN).code(), Some(0));
        self.lines.iter().collect()
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Reproduction: no header timeout, no connection cap, no header size limit: slow-header and
/// silent connections piled up memory and locked out `/health`. Now a header that does not come
/// whole within the timeout closes the connection, an oversized one gets 431, and with more idle
/// connections open than serd keeps, the oldest idle ones make room: `/health` and the page still
/// answer.
#[test]
fn slow_silent_and_oversized_requests_are_bounded() {
    let served = Served::start();
    let addr = served.addr;

    // Half a header, then nothing: closed by serd within the timeout (10 s; bound 40 s).
    let mut slow = TcpStream::connect(addr).unwrap();
    slow.set_read_timeout(Some(Duration::from_secs(40)))
        .unwrap();
    write!(slow, "GET / HTTP/1.1\r\nHost: {addr}\r\nX-Slow: ").unwrap();
    let began = Instant::now();
    let mut sink = Vec::new();
    let closed = slow.read_to_end(&mut sink);
    assert!(
        closed.is_ok() && began.elapsed() < Duration::from_secs(40),
        "{closed:?} after {:?}",
        began.elapsed()
    );

    // A header beyond the limit.
    let big = format!(
        "GET / HTTP/1.1\r\nHost: {addr}\r\nX-Big: {}\r\n\r\n",
        "a".repeat(64 * 1024)
    );
    let answer = exchange(addr, &big);
    assert!(answer.starts_with("HTTP/1.1 431"), "{answer}");

    // More silent connections than serd keeps (256): the page and /health answer.
    let idle: Vec<TcpStream> = (0..400)
        .map(|_| TcpStream::connect(addr).unwrap())
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    let page = exchange(
        addr,
        &format!("GET / HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"),
    );
    assert!(page.starts_with("HTTP/1.1 200"), "{page}");
    let _ = health(addr);
    // The oldest idle connections were closed to make room.
    let mut first = &idle[0];
    first
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    assert_eq!(first.read(&mut [0u8; 16]).unwrap(), 0);
    drop(idle);

    let lines = served.finish();
    assert!(lines.last().unwrap().contains(r#""type":"end""#));
}

/// Reproduction: WebSocket messages up to 64 MiB were buffered although serd reads nothing from
/// its clients. Now a client sending a frame larger than serd takes (1 KiB) is disconnected at
/// its header; duplicate `Host`/`Origin` headers are refused, and an absolute-form request is
/// judged by the host it names; a half-closed SSE client gets the stream to its `end`.
#[test]
fn websocket_floods_duplicate_hosts_and_half_closed_clients() {
    let served = Served::start();
    let addr = served.addr;

    let (mut socket, _) =
        tungstenite::client::client(format!("ws://{addr}/ws"), TcpStream::connect(addr).unwrap())
            .unwrap();
    // A masked binary frame announcing 16 MiB, and the first 64 KiB of it.
    let stream = socket.get_mut();
    let mut frame = vec![0x82u8, 0x80 | 127];
    frame.extend_from_slice(&(16u64 << 20).to_be_bytes());
    frame.extend_from_slice(&[1, 2, 3, 4]);
    frame.extend(std::iter::repeat_n(0u8, 64 * 1024));
    let _ = stream.write_all(&frame);
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut closed = false;
    for _ in 0..1000 {
        match socket.read() {
            Ok(tungstenite::Message::Close(_)) | Err(_) => {
                closed = true;
                break;
            }
            Ok(_) => {}
        }
    }
    assert!(closed, "the flooding client was not disconnected");

    let twice = exchange(
        addr,
        &format!("GET /health HTTP/1.1\r\nHost: {addr}\r\nHost: evil.example\r\nConnection: close\r\n\r\n"),
    );
    assert!(twice.starts_with("HTTP/1.1 400"), "{twice}");
    let origins = exchange(
        addr,
        &format!(
            "GET /health HTTP/1.1\r\nHost: {addr}\r\nOrigin: http://{addr}\r\nOrigin: http://evil.example\r\nConnection: close\r\n\r\n"
        ),
    );
    assert!(origins.starts_with("HTTP/1.1 400"), "{origins}");
    let absolute = exchange(
        addr,
        &format!(
            "GET http://evil.example/health HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
        ),
    );
    assert!(absolute.starts_with("HTTP/1.1 403"), "{absolute}");
    let absolute_ok = exchange(
        addr,
        &format!("GET http://{addr}/health HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"),
    );
    assert!(absolute_ok.starts_with("HTTP/1.1 200"), "{absolute_ok}");

    // A client that shuts its sending side after the request still gets the stream.
    let mut half = TcpStream::connect(addr).unwrap();
    write!(half, "GET /events HTTP/1.1\r\nHost: {addr}\r\n\r\n").unwrap();
    half.shutdown(Shutdown::Write).unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while health(addr)["clients"].as_array().unwrap().is_empty() {
        assert!(
            Instant::now() < deadline,
            "the half-closed client was dropped"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let reader = std::thread::spawn(move || {
        let mut body = String::new();
        let _ = BufReader::new(half).read_to_string(&mut body);
        body
    });
    let lines = served.finish();
    assert!(lines.last().unwrap().contains(r#""type":"end""#));
    let body = reader.join().unwrap();
    assert!(body.contains(r#""type":"start""#), "{body}");
    assert!(body.contains(r#""type":"end""#), "{body}");
}
