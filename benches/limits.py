#!/usr/bin/env python3
"""Benchmark: the bounds of issue 27, measured on the release binary (standard library only).

    cargo build --release && python3 benches/limits.py [--serd target/release/serd]

serd runs `listen --input - --raw s16le --rate 16000 --serve :0` on a stdin pipe kept open and
silent (the chain idles; the network side is what is measured), and its resident memory
(VmRSS) is sampled every 20 ms:

1. Slow headers: 2000 connections each sending the start of a request and 400 KB of one
   header line that never ends (the reproduction), held open. Peak RSS, and RSS 30 s after they
   close.
2. WebSocket floods: 64 clients, each completing the handshake and then sending a frame that
   announces 16 MiB and as much of it as serd takes. Peak RSS, and RSS 30 s after they close.
3. Idle connections: 10 000 connections opened and left silent; then `/health` and the page are
   asked for, and their status and time to answer reported.
4. Signals: SIGINT to a WAV stream stalled after its first 3 s (`head -c 96044
   speech_16k.wav; sleep`) with an SSE client: the time to `end` on stdout, to `end` at the
   client, and to the exit; SIGTERM to a stdin that never sends a byte, and to raw input that
   never comes: the time to exit (and to `end` for the raw input).

Goals (issue 27): peak RSS <= 200 MB under 1 and 2, back within 20 MB of the idle figure 30 s
after; the page and /health answer under 3 (or a clear refusal); 4 within 2 s.
"""
import argparse
import base64
import json
import os
import resource
import signal
import socket
import subprocess
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def rss_mb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


class Sampler:
    """Peak RSS of a process over a phase, sampled every 20 ms."""

    def __init__(self, pid):
        self.pid, self.peak, self.stop = pid, 0.0, threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        while not self.stop.is_set():
            try:
                self.peak = max(self.peak, rss_mb(self.pid))
            except OSError:
                return
            time.sleep(0.02)

    def done(self):
        self.stop.set()
        self.thread.join()
        return self.peak


def start_serd(serd, args, feed=b""):
    p = subprocess.Popen([serd, "listen", "--backend", "cpu", "--input", "-", *args],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    if feed:
        p.stdin.write(feed)
        p.stdin.flush()
    start = json.loads(p.stdout.readline())
    host, port = start["serve"][len("http://"):-1].rsplit(":", 1)
    return p, (host, int(port))


def recv_until(sock, marker=None, size=65536):
    """What `sock` sends until `marker` is in it (or, without a marker, until it closes); less
    when it closes first."""
    data = b""
    while marker is None or marker not in data:
        chunk = sock.recv(size)
        if not chunk:
            break
        data += chunk
    return data


def request(addr, path, timeout=10):
    t0 = time.monotonic()
    try:
        s = socket.create_connection(addr, timeout=timeout)
        s.sendall(f"GET {path} HTTP/1.1\r\nHost: {addr[0]}:{addr[1]}\r\nConnection: close\r\n\r\n"
                  .encode())
        data = recv_until(s)
        s.close()
        status = data.split(b"\r\n", 1)[0].decode(errors="replace")
    except OSError as e:
        status = f"failed: {e}"
    return status, (time.monotonic() - t0) * 1e3


def slow_headers(addr, n=2000, size=400_000):
    conns = []
    head = f"GET / HTTP/1.1\r\nHost: {addr[0]}:{addr[1]}\r\nX-Slow: ".encode()
    filler = b"a" * size
    for _ in range(n):
        s = socket.create_connection(addr)
        s.setblocking(False)
        sent = 0
        data = head + filler
        # As much as the kernel takes now; serd answers 431 and closes once it has 16 KiB.
        try:
            while sent < len(data):
                sent += s.send(data[sent:sent + 65536])
        except OSError:
            pass
        conns.append(s)
    return conns


def websocket_floods(addr, n=64, announced=16 << 20):
    conns = []
    for i in range(n):
        s = socket.create_connection(addr)
        key = base64.b64encode(os.urandom(16)).decode()
        s.sendall((f"GET /ws HTTP/1.1\r\nHost: {addr[0]}:{addr[1]}\r\nUpgrade: websocket\r\n"
                   f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                   "Sec-WebSocket-Version: 13\r\n\r\n").encode())
        answer = recv_until(s, b"\r\n\r\n", 4096)
        if not answer.startswith(b"HTTP/1.1 101"):
            status = answer.split(b"\r\n", 1)[0].decode(errors="replace")
            print(f"  client {i}: {status}")
        frame = bytes([0x82, 0x80 | 127]) + announced.to_bytes(8, "big") + b"\x01\x02\x03\x04"
        s.setblocking(False)
        data = frame + b"\0" * (1 << 20)
        sent = 0
        try:
            for _ in range(16):
                sent = 0
                while sent < len(data):
                    sent += s.send(data[sent:])
                data = b"\0" * (1 << 20)
        except OSError:
            pass
        conns.append(s)
    return conns


def close_all(conns):
    for s in conns:
        try:
            s.close()
        except OSError:
            pass


def memory_phase(name, p, addr, idle, make, settle_s=30):
    sampler = Sampler(p.pid)
    t0 = time.monotonic()
    conns = make(addr)
    opened_s = time.monotonic() - t0
    time.sleep(2)
    health = request(addr, "/health")
    close_all(conns)
    peak = sampler.done()
    time.sleep(settle_s)
    after = rss_mb(p.pid)
    print(f"{name}: {len(conns)} connections in {opened_s:.1f} s; peak RSS {peak:.1f} MB "
          f"(idle {idle:.1f}); {settle_s} s after closing {after:.1f} MB "
          f"({after - idle:+.1f}); /health during: {health[0]} in {health[1]:.1f} ms")
    return peak, after


def idle_connections(p, addr, n=10_000):
    conns = []
    failed = 0
    t0 = time.monotonic()
    for _ in range(n):
        try:
            conns.append(socket.create_connection(addr, timeout=5))
        except OSError:
            failed += 1
    opened_s = time.monotonic() - t0
    time.sleep(1)
    health = request(addr, "/health")
    page = request(addr, "/")
    print(f"idle: {len(conns)} connections opened ({failed} failed) in {opened_s:.1f} s; "
          f"RSS {rss_mb(p.pid):.1f} MB; /health: {health[0]} in {health[1]:.1f} ms; "
          f"page: {page[0]} in {page[1]:.1f} ms")
    close_all(conns)


def wait_line(p, kind, timeout):
    """Reads stdout lines until one of `kind`; the time it came, or None."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = p.stdout.readline()
        if not line:
            return None
        if json.loads(line).get("type") == kind:
            return time.monotonic()
    return None


def signals(serd):
    wav = open(os.path.join(ROOT, "tests/fixtures/speech_16k.wav"), "rb").read()[:96_044]
    # A stalled WAV stream with an SSE client.
    p, addr = start_serd(serd, ["--serve", ":0"], feed=wav)
    sse = socket.create_connection(addr)
    sse.sendall(f"GET /events HTTP/1.1\r\nHost: {addr[0]}:{addr[1]}\r\n\r\n".encode())
    got = {}

    def read_sse():
        data = recv_until(sse, b'"type":"end"')
        got["end"] = time.monotonic() if b'"type":"end"' in data else None

    reader = threading.Thread(target=read_sse, daemon=True)
    reader.start()
    time.sleep(3)
    t0 = time.monotonic()
    p.send_signal(signal.SIGINT)
    end = wait_line(p, "end", 10)
    p.wait(10)
    exited = time.monotonic()
    reader.join(5)
    fmt = lambda t: f"{(t - t0) * 1e3:.0f} ms" if t else "never"  # noqa: E731
    print(f"signals: stalled WAV stream, SIGINT: end on stdout {fmt(end)}, at the SSE client "
          f"{fmt(got.get('end'))}, exit {fmt(exited)} (status {p.returncode})")

    # Nothing ever sent (no header): SIGTERM.
    p = subprocess.Popen([serd, "listen", "--backend", "cpu", "--input", "-"], stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    time.sleep(3)
    t0 = time.monotonic()
    p.send_signal(signal.SIGTERM)
    p.wait(10)
    print(f"signals: silent stdin, SIGTERM: exit {fmt(time.monotonic())} "
          f"(status {p.returncode}, stdout {len(p.stdout.read())} bytes)")

    # Raw input that never comes: SIGTERM.
    p = subprocess.Popen([serd, "listen", "--backend", "cpu", "--input", "-", "--raw", "s16le",
                          "--rate", "16000"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.DEVNULL)
    p.stdout.readline()
    time.sleep(1)
    t0 = time.monotonic()
    p.send_signal(signal.SIGTERM)
    end = wait_line(p, "end", 10)
    p.wait(10)
    print(f"signals: raw input never sent, SIGTERM: end {fmt(end)}, exit {fmt(time.monotonic())} "
          f"(status {p.returncode})")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--serd", default=os.path.join(ROOT, "target/release/serd"))
    parser.add_argument("--settle", type=int, default=30, help="seconds after closing")
    parser.add_argument("--skip-signals", action="store_true")
    args = parser.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 20_000), hard))

    p, addr = start_serd(args.serd, ["--raw", "s16le", "--rate", "16000", "--serve", ":0"])
    time.sleep(2)
    idle = rss_mb(p.pid)
    print(f"idle RSS {idle:.1f} MB (serd listen --serve on a silent stdin)")
    memory_phase("slow headers", p, addr, idle, slow_headers, args.settle)
    memory_phase("websocket floods", p, addr, idle, websocket_floods, args.settle)
    idle_connections(p, addr)
    time.sleep(12)  # the header timeout closes what is left
    print(f"RSS after all: {rss_mb(p.pid):.1f} MB")
    p.stdin.close()
    p.wait(10)
    if not args.skip_signals:
        signals(args.serd)


if __name__ == "__main__":
    main()
