#!/usr/bin/env python3
"""Benchmark: `serd listen` in real time and as fast as possible (issue 4's figures).

    pip install numpy soundfile && cargo build --release
    python3 benches/listen.py [--corpus ../shared/corpora/ravdess] [--minutes 3] [--soak-minutes 60]
                              [--serd BINARY [--serd BINARY]]

Input: RAVDESS recordings (real speech with pauses, 48 kHz FLAC in ../shared) concatenated into
one file; 16 and 48 kHz copies (linear interpolation: the content does not matter here, the rate
does) exercise openSMILE alone and the resampler as a typical microphone would.

1. Real-time replay (`--realtime`) of a `--minutes` file, for each backend (cpu, and wgpu when an
   adapter exists) and each rate (16 kHz, 48 kHz):
   - latency_ms of every emotion event (wall time from the arrival of the window's last sample to
     the write of its event), p50/p95/p99;
   - the algorithmic delay, measured separately per window: how much input beyond the window's
     end had arrived when openSMILE completed it (serd's -vv debug line), and latency minus that
     delay, p50/p95/p99: the processing time serd adds (goal: p99 <= 15 ms);
   - CPU share of one core between the start and end events (utime+stime from /proc), goal <= 10%;
   - peak RSS (VmHWM) at the end event, goal <= 150 MB.
2. Soak: a `--soak-minutes` file replayed as fast as possible on the CPU backend, RSS sampled every
   second: RSS after warm-up (10% of the run) vs at the end, drops and exit status, panics.
"""
import argparse
import glob
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import wave

import numpy as np

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
SERD = os.path.join(os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target")), "release", "serd")
TICK = os.sysconf("SC_CLK_TCK")
DELAY = re.compile(r"window ([\d.]+)-([\d.]+) s: latency ([\d.]+) ms; completed ([\d.]+) ms")


def read_wav(path):
    if not path.endswith(".wav"):
        import soundfile  # FLAC corpora (RAVDESS as distributed): pip install soundfile
        x, rate = soundfile.read(path, dtype="int16", always_2d=True)
        return rate, x.astype(np.float32).mean(axis=1)
    with wave.open(path) as w:
        assert w.getsampwidth() == 2, path
        x = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").astype(np.float32)
        x = x.reshape(-1, w.getnchannels()).mean(axis=1)
        return w.getframerate(), x


def write_wav(path, rate, x):
    with wave.open(path, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(np.clip(x, -32768, 32767).astype("<i2").tobytes())


def make_input(corpus, seconds, path, rate_out=None):
    files = sorted(
        f
        for ext in ("wav", "flac")
        for f in glob.glob(os.path.join(corpus, "**", f"*.{ext}"), recursive=True)
    )
    if not files:
        sys.exit(f"no .wav or .flac files under {corpus}")
    parts, total, i = [], 0, 0
    while total < seconds:
        rate, x = read_wav(files[i % len(files)])
        parts.append(x)
        total += len(x) / rate
        i += 1
    x = np.concatenate(parts)[: int(seconds * rate)]
    if rate_out and rate_out != rate:
        t_out = np.arange(int(len(x) * rate_out / rate)) * rate / rate_out
        x = np.interp(t_out, np.arange(len(x)), x)
        rate = rate_out
    write_wav(path, rate, x)
    return path


def proc_cpu_s(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def proc_status_kb(pid, key):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return 0


def pct(values, p):
    v = sorted(values)
    return v[min(len(v) - 1, int(round(p / 100 * (len(v) - 1))))]


def realtime(path, backend, extra=(), on_start=None, on_line=None, serd=SERD):
    """One real-time replay by the binary `serd`; `extra` arguments for it, `on_start(event)` when
    the stream starts and `on_line(event, wall_s)` for each stdout line (wall_s: time.time() at
    its arrival)."""
    proc = subprocess.Popen(
        [serd, "-vv", "listen", "--realtime", "--backend", backend, *extra, "--input", path],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    delays = {}

    def read_stderr():
        for line in proc.stderr:
            m = DELAY.search(line)
            if m:
                delays[float(m.group(2))] = float(m.group(4))
            elif "error" in line and "serd" in line:
                print("  stderr:", line.rstrip(), file=sys.stderr)

    t = threading.Thread(target=read_stderr)
    t.start()
    latencies, beyond, start, end = [], [], None, None
    cpu0 = wall0 = None
    for line in proc.stdout:
        e = json.loads(line)
        if on_line:
            on_line(e, time.time())
        if e["type"] == "start":
            start, cpu0, wall0 = e, proc_cpu_s(proc.pid), time.monotonic()
            if on_start:
                on_start(e)
        elif e["type"] == "emotion":
            latencies.append(e["latency_ms"])
            beyond.append((e["t_end"], e["latency_ms"]))
        elif e["type"] == "end":
            end = e
            cpu = proc_cpu_s(proc.pid) - cpu0
            wall = time.monotonic() - wall0
            hwm = proc_status_kb(proc.pid, "VmHWM")
    if "--serve" in extra:
        # A replayed file leaves the server up until a signal.
        proc.send_signal(signal.SIGINT)
    proc.wait()
    t.join()
    # The last window completes at the end of input (a flush), not by the algorithmic delay.
    pairs = [(lat, delays[t_end]) for t_end, lat in beyond[:-1] if t_end in delays]
    return {
        "backend": start["backend"], "rate_in": start["rate_in"], "audio_s": end["audio_s"],
        "windows": end["windows"], "emitted": end["emitted"], "dropped": end["dropped"],
        "audio_dropped_s": end["audio_dropped_s"],
        "latency_ms": {p: pct(latencies, p) for p in (50, 95, 99)},
        "delay_ms": {p: pct([d for _, d in pairs], p) for p in (50, 95, 99)},
        "beyond_delay_ms": {p: pct([l - d for l, d in pairs], p) for p in (50, 95, 99)},
        "cpu_share": cpu / wall, "peak_rss_mb": hwm / 1024, "exit": proc.returncode,
    }


def soak(path):
    proc = subprocess.Popen([SERD, "listen", "--backend", "cpu", "--input", path],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    samples, end = [], None
    stop = threading.Event()

    def sample():
        t0 = time.monotonic()
        while not stop.is_set():
            try:
                samples.append((time.monotonic() - t0, proc_status_kb(proc.pid, "VmRSS")))
            except OSError:
                break
            time.sleep(1.0)

    s = threading.Thread(target=sample)
    s.start()
    t0 = time.monotonic()
    for line in proc.stdout:
        e = json.loads(line)
        if e["type"] == "end":
            end = e
    wall = time.monotonic() - t0
    stderr = proc.stderr.read()
    proc.wait()
    stop.set()
    s.join()
    rss = [kb / 1024 for _, kb in samples if kb]
    warm = rss[max(1, len(rss) // 10)]
    return {
        "audio_s": end["audio_s"], "wall_s": wall, "windows": end["windows"],
        "dropped": end["dropped"], "audio_dropped_s": end["audio_dropped_s"],
        "rss_mb_after_warmup": warm, "rss_mb_mid": rss[len(rss) // 2], "rss_mb_end": rss[-1],
        "rss_mb_max": max(rss), "exit": proc.returncode,
        "panics": stderr.count("internal error"), "stderr_lines": len(stderr.splitlines()),
    }


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--corpus", default=os.path.join(ROOT, "..", "shared", "corpora", "ravdess"))
    ap.add_argument("--minutes", type=float, default=3)
    ap.add_argument("--soak-minutes", type=float, default=60)
    ap.add_argument("--backends", default="cpu,wgpu")
    ap.add_argument("--skip-realtime", action="store_true")
    ap.add_argument("--serd", action="append", metavar="BINARY",
                    help="serd binary to replay with (repeat to compare builds side by side, "
                         "interleaved; default: the release build)")
    args = ap.parse_args()
    binaries = args.serd or [SERD]
    with tempfile.TemporaryDirectory() as tmp:
        results = {}
        if not args.skip_realtime:
            for rate in (16000, 48000):
                path = make_input(args.corpus, args.minutes * 60, os.path.join(tmp, f"rt{rate}.wav"), rate)
                for backend in args.backends.split(","):
                    for serd in binaries:
                        r = realtime(path, backend, serd=serd)
                        key = f"realtime {backend} {rate // 1000}k"
                        if len(binaries) > 1:
                            key += f" {serd}"
                        results[key] = r
                        print(key, json.dumps(r), flush=True)
        if args.soak_minutes > 0:
            path = make_input(args.corpus, args.soak_minutes * 60, os.path.join(tmp, "soak.wav"), 48000)
            r = soak(path)
            results["soak"] = r
            print("soak", json.dumps(r), flush=True)


if __name__ == "__main__":
    main()
