#!/usr/bin/env python3
"""Benchmark: `serd listen --serve` with network clients, side by side with plain `listen`.

    pip install numpy soundfile websocket-client && cargo build --release
    python3 benches/serve.py [--corpus ../shared/corpora/ravdess] [--minutes 3] [--page-runs 5]
                             [--skip-clients]

1. Clients: a `--minutes` real-time replay at 48 kHz on the CPU backend (the input of
   benches/listen.py), run twice in one go: plain `listen`, then `listen --serve` with five
   Server-Sent Events clients, four reading as fast as they can and one that never reads (its
   socket's receive buffer shrunk to 4 KiB, so that the stall reaches serd soon). The same
   figures as benches/listen.py (latency beyond the algorithmic delay, CPU share, peak RSS), the
   windows dropped on stdout, what each client received, and the stuck client's drops as
   /health counts them (polled every second; the last answer before the end event).
   Goals (issue 13): p99 beyond delay <= 15 ms, <= 10 % of a core, RSS <= 150 MB, 0 dropped on
   stdout, the stuck client's drops counted.
2. Page: headless Chromium (DevTools protocol) opens the live page as the stream starts; the
   time from a window's line on stdout to the page having drawn it (the page stamps Date.now()
   after drawing; both clocks are this machine's wall clock), for the first window and for all,
   over `--page-runs` replays of a 30 s file. Goal: the first window drawn <= 1 s after it was
   written. Also the page's size.
"""
import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import listen  # noqa: E402  (benches/listen.py: input making, the real-time run and its figures)


def sse_client(host, port, stuck, counts, key, stop):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if stuck:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.connect((host, port))
    s.sendall(f"GET /events HTTP/1.1\r\nHost: {host}:{port}\r\n\r\n".encode())
    if stuck:
        counts["stuck_peer"] = "%s:%d" % s.getsockname()
        stop.wait()
        s.close()
        return
    buf = b""
    counts[key] = {"messages": 0, "levels": 0, "bytes": 0}
    while True:
        data = s.recv(65536)
        if not data:
            break
        counts[key]["bytes"] += len(data)
        buf += data
        *records, buf = buf.split(b"\n\n")
        for r in records:
            if b"event: level" in r:
                counts[key]["levels"] += 1
            elif b"data: " in r:
                counts[key]["messages"] += 1
    s.close()


def with_clients(path, n_clients):
    counts, health, threads = {}, {}, []
    stop = threading.Event()

    def on_start(e):
        host, port = e["serve"].split("//")[1].rstrip("/").rsplit(":", 1)
        for i in range(n_clients):
            t = threading.Thread(target=sse_client,
                                 args=(host, int(port), i == 0, counts, f"client{i}", stop))
            t.start()
            threads.append(t)

        def poll():
            while not stop.is_set():
                try:
                    with urllib.request.urlopen(f"http://{host}:{port}/health", timeout=2) as r:
                        h = json.load(r)
                    if h["running"]:
                        health.update(h)
                except OSError:
                    pass
                stop.wait(1.0)

        t = threading.Thread(target=poll)
        t.start()
        threads.append(t)

    r = listen.realtime(path, "cpu", extra=["--serve", ":0"], on_start=on_start)
    stop.set()
    for t in threads:
        t.join()
    stuck = counts.pop("stuck_peer", None)
    r["clients_read"] = counts
    r["health_clients"] = [
        {k: c[k] for k in ("peer", "sent", "dropped")} for c in health.get("clients", [])
    ]
    r["stuck_client_dropped"] = next(
        (c["dropped"] for c in health.get("clients", []) if c["peer"] == stuck), None)
    r["health_client_items_dropped"] = health.get("dropped", {}).get("client_items")
    return r


def page_runs(path, runs):
    import websocket  # pip install websocket-client

    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if not chromium:
        sys.exit("no chromium: apt install chromium")
    first, every, loads = [], [], []
    for _ in range(runs):
        profile = tempfile.mkdtemp()
        browser = subprocess.Popen(
            [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
             "--remote-debugging-port=0", f"--user-data-dir={profile}", "about:blank"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        for line in browser.stderr:
            if line.startswith("DevTools listening on "):
                ws_url = line.split(" on ", 1)[1].strip()
                break
        ws = websocket.create_connection(ws_url, timeout=60)
        ids = iter(range(1, 1 << 30))

        def call(method, params=None, session=None):
            i = next(ids)
            msg = {"id": i, "method": method, "params": params or {}}
            if session:
                msg["sessionId"] = session
            ws.send(json.dumps(msg))
            while True:
                reply = json.loads(ws.recv())
                if reply.get("id") == i:
                    return reply.get("result", {})

        target = call("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        written = {}

        def on_start(e):
            t0 = time.time()
            call("Page.navigate", {"url": e["serve"]}, session)
            loads.append(time.time() - t0)

        def on_line(e, wall):
            if e["type"] in ("emotion", "silence"):
                written[e["t_end"]] = wall * 1000

        listen.realtime(path, "cpu", extra=["--serve", ":0"], on_start=on_start, on_line=on_line)
        drawn = call("Runtime.evaluate", {"expression": "JSON.stringify(serd.drawnAt)",
                                          "returnByValue": True}, session)["result"]["value"]
        drawn = json.loads(drawn)
        lags = [at - written[t] for t, at in drawn if t in written]
        first.append(lags[0])
        every.extend(lags)
        ws.close()
        browser.kill()
        browser.wait()
        shutil.rmtree(profile, ignore_errors=True)
    return {
        "runs": runs,
        "first_window_drawn_after_ms": {"median": statistics.median(first), "max": max(first)},
        "all_windows_drawn_after_ms": {p: listen.pct(every, p) for p in (50, 95, 99)},
        "windows": len(every),
        "navigate_ms_median": statistics.median(loads) * 1000,
    }


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--corpus", default=os.path.join(listen.ROOT, "..", "shared", "corpora", "ravdess"))
    ap.add_argument("--minutes", type=float, default=3)
    ap.add_argument("--clients", type=int, default=5)
    ap.add_argument("--page-runs", type=int, default=5)
    ap.add_argument("--skip-clients", action="store_true", help="only the page's figures")
    args = ap.parse_args()
    with open(os.path.join(listen.ROOT, "src", "serve", "page.html"), "rb") as f:
        print("page", json.dumps({"bytes": len(f.read())}), flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        if not args.skip_clients:
            path = listen.make_input(args.corpus, args.minutes * 60, os.path.join(tmp, "rt48.wav"), 48000)
            plain = listen.realtime(path, "cpu")
            print("plain", json.dumps(plain), flush=True)
            served = with_clients(path, args.clients)
            print(f"serve+{args.clients}sse", json.dumps(served), flush=True)
        if args.page_runs:
            short = listen.make_input(args.corpus, 30, os.path.join(tmp, "page.wav"), 48000)
            print("page", json.dumps(page_runs(short, args.page_runs)), flush=True)


if __name__ == "__main__":
    main()
