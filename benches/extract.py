#!/usr/bin/env python3
"""Benchmark: serd extract vs opensmile-python (PyPI opensmile 2.6.0) on the same files, same run.

    pip install opensmile==2.6.0 && apt-get install espeak-ng sox
    cargo build --release && python3 benches/extract.py [--runs 5]

1. One long file (>= 3 min of espeak-ng speech, 16 kHz): eGeMAPS and ComParE functionals of the
   whole file. serd: wall and CPU time of the `serd extract` command (process start, decoding and
   output included), by default (one file: the feature set split across two openSMILE threads)
   and with `--jobs 1` (one openSMILE instance, as opensmile-python); opensmile-python: wall time
   of `Smile.process_file` inside Python (interpreter start and import excluded). Runs alternate
   between the three; medians and the ratios are printed.
2. A batch of 48 files of ~6 s: `serd extract --jobs 1` vs `--jobs 2` (default: all cores), wall
   and CPU time of the process (user + sys of the child), showing both cores in use.
"""
import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time

import opensmile

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
SERD = os.path.join(os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target")), "release", "serd")
SENTENCES = [
    "The committee will meet again on Thursday to review the budget for next year.",
    "I cannot believe you did that without asking anyone first!",
    "Please put the blue folder back on the shelf before you leave.",
    "We finally won the championship after ten long years of trying.",
    "It is cold and dark outside, and the last bus has already gone.",
]


def sh(*args, **kw):
    return subprocess.run(args, check=True, **kw)


def make_audio(tmp):
    parts = []
    for i, text in enumerate(SENTENCES):
        raw = os.path.join(tmp, f"s{i}.wav")
        sh("espeak-ng", "-v", "en-us", "-s", str(140 + 10 * i), "-w", raw, text)
        part = os.path.join(tmp, f"p{i}.wav")
        sh("sox", "-D", raw, "-r", "16000", "-b", "16", part, "pad", "0", "0.4")
        parts.append(part)
    unit = os.path.join(tmp, "unit.wav")
    sh("sox", "-D", *parts, unit)
    unit_s = float(subprocess.check_output(["soxi", "-D", unit]))
    repeat = int(190 / unit_s) + 1
    long = os.path.join(tmp, "long.wav")
    sh("sox", "-D", *([unit] * repeat), long)
    batch = []
    for k in range(48):
        f = os.path.join(tmp, f"batch{k:02}.wav")
        sh("sox", "-D", parts[k % len(parts)], parts[(k + 1) % len(parts)], f)
        batch.append(f)
    return long, float(subprocess.check_output(["soxi", "-D", long])), batch


def time_serd(args):
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    sh(SERD, "extract", *args, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - t
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=5)
    runs = ap.parse_args().runs
    if not os.path.exists(SERD):
        sys.exit(f"{SERD} missing: run cargo build --release first")
    with tempfile.TemporaryDirectory() as tmp:
        long, seconds, batch = make_audio(tmp)
        print(f"machine: {os.cpu_count()} cores; long file {seconds:.1f} s at 16 kHz; {runs} runs each, alternating")
        sh(SERD, "extract", long, stdout=subprocess.DEVNULL)  # unpacks the bundle once
        for name, fs in (("egemaps", opensmile.FeatureSet.eGeMAPSv02), ("compare", opensmile.FeatureSet.ComParE_2016)):
            smile = opensmile.Smile(feature_set=fs)
            ours, single, theirs = [], [], []
            for _ in range(runs):
                ours.append(time_serd(["--features", name, long]))
                single.append(time_serd(["--features", name, "--jobs", "1", long]))
                t = time.perf_counter()
                smile.process_file(long)
                theirs.append(time.perf_counter() - t)
            b = statistics.median(theirs)
            for label, res in (("serd extract", ours), ("serd extract --jobs 1", single)):
                a = statistics.median(r[0] for r in res)
                cpu = statistics.median(r[1] for r in res)
                print(f"{name}: {label} {a:.3f} s (RTF {a / seconds:.4f}, CPU {cpu:.3f} s), "
                      f"ratio serd/python {a / b:.3f}  [{' '.join(f'{r[0]:.2f}' for r in res)}]")
            print(f"{name}: opensmile-python process_file {b:.3f} s (RTF {b / seconds:.4f})  "
                  f"[{' '.join(f'{x:.2f}' for x in theirs)}]")
        one, two = [], []
        for _ in range(runs):
            one.append(time_serd(["--jobs", "1", *batch]))
            two.append(time_serd(batch))
        for label, res in (("--jobs 1", one), ("default (all cores)", two)):
            wall = statistics.median(r[0] for r in res)
            cpu = statistics.median(r[1] for r in res)
            print(f"batch of {len(batch)} files, {label}: wall {wall:.3f} s, CPU {cpu:.3f} s, "
                  f"CPU/wall {cpu / wall:.2f} cores")
        print(f"batch speed-up all cores vs one: {statistics.median(r[0] for r in one) / statistics.median(r[0] for r in two):.2f}x")


if __name__ == "__main__":
    main()
