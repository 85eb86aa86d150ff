#!/usr/bin/env python3
"""Checks the live page of `serd listen --serve` in Firefox (headless, WebDriver BiDi).

    apt-get install firefox-esr && pip install websocket-client && cargo build --release
    python3 tools/check_page_firefox.py [AUDIO] [--screenshot PNG]

Replays AUDIO (default: tests/fixtures/speech_48k.wav) in real time with `--serve :0`, opens the
page in Firefox as the stream starts, and once the stream has ended checks that the page drew
every window stdout has, shows the last one, and says "ended". The CI test of the page runs in
Chromium (tests/it/serve.rs); this is the same check for Firefox, run by hand.
"""
import argparse
import base64
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile

import websocket  # pip install websocket-client

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
SERD = os.path.join(os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target")), "release", "serd")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("audio", nargs="?", default=os.path.join(ROOT, "tests", "fixtures", "speech_48k.wav"))
    ap.add_argument("--screenshot")
    args = ap.parse_args()
    firefox = shutil.which("firefox-esr") or shutil.which("firefox")
    if not firefox:
        sys.exit("no firefox: apt-get install firefox-esr")
    profile = tempfile.mkdtemp()
    browser = subprocess.Popen(
        [firefox, "--headless", "--profile", profile, "--no-remote", "--remote-debugging-port=0",
         "--window-size=1200,520"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        for line in browser.stderr:
            m = re.search(r"WebDriver BiDi listening on (ws://\S+)", line)
            if m:
                break
        else:
            sys.exit("firefox did not start its WebDriver BiDi server")
        ws = websocket.create_connection(m.group(1).rstrip("/") + "/session", timeout=60,
                                         suppress_origin=True)
        ids = iter(range(1, 1 << 30))

        def call(method, params):
            i = next(ids)
            ws.send(json.dumps({"id": i, "method": method, "params": params}))
            while True:
                reply = json.loads(ws.recv())
                if reply.get("id") == i:
                    if reply.get("type") == "error":
                        sys.exit(f"{method}: {reply}")
                    return reply["result"]

        call("session.new", {"capabilities": {}})
        context = call("browsingContext.getTree", {})["contexts"][0]["context"]

        def page(expression):
            r = call("script.evaluate", {"expression": expression, "target": {"context": context},
                                         "awaitPromise": False})
            return r["result"].get("value")

        serd = subprocess.Popen([SERD, "listen", "--realtime", "--backend", "cpu", "--serve", ":0",
                                 "--input", args.audio], stdout=subprocess.PIPE, text=True)
        start = json.loads(serd.stdout.readline())
        call("browsingContext.navigate", {"context": context, "url": start["serve"], "wait": "complete"})
        events = [json.loads(line) for line in serd.stdout]
        # stdout ends after the end event; the server stays up until a signal.
        serd.send_signal(signal.SIGINT)
        if serd.wait() != 0:
            sys.exit(f"serd exited with {serd.returncode}")
        windows = [e for e in events if e["type"] in ("emotion", "silence")]
        last = windows[-1].get("label", "silence")
        seen = {
            "drawn": page("serd.drawn"),
            "status": page("document.getElementById('status').textContent"),
            "label": page("document.getElementById('label').textContent"),
        }
        print(json.dumps({"firefox": subprocess.run([firefox, "--version"], capture_output=True,
                                                     text=True).stdout.strip(),
                          "windows": len(windows), "last": last, **seen}))
        if args.screenshot:
            shot = call("browsingContext.captureScreenshot", {"context": context})
            with open(args.screenshot, "wb") as f:
                f.write(base64.b64decode(shot["data"]))
        ok = seen == {"drawn": len(windows), "status": "ended", "label": last}
        sys.exit(0 if ok else "the page does not show what stdout has")
    finally:
        browser.kill()
        shutil.rmtree(profile, ignore_errors=True)


if __name__ == "__main__":
    main()
