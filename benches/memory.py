#!/usr/bin/env python3
"""Benchmark: peak memory of `serd extract` and `serd predict` against the length of a file
(issue 14: a 2-hour file within 10 % of a 10-minute file's peak RSS).

    cargo build --release
    python3 benches/memory.py [--minutes 10 120]

Input: tests/fixtures/speech_16k.wav repeated to each length (16 kHz 16-bit mono WAV). Each command runs once per length
under /usr/bin/time; the table gives wall time and peak RSS (maximum resident set size), and the
ratio of the longest file's peak to the shortest's.
"""
import argparse
import glob
import os
import subprocess
import sys
import tempfile
import wave

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TARGET = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))
SERD = os.path.join(TARGET, "release", "serd")

COMMANDS = [
    ("extract --window 2 (eGeMAPS)", ["extract", "--window", "2"]),
    ("extract --window 2 (ComParE)", ["extract", "--features", "compare", "--window", "2"]),
    ("predict (bundled model)", ["predict", "--backend", "cpu"]),
    ("predict --windows (bundled model)", ["predict", "--backend", "cpu", "--windows"]),
]


def speech_frames():
    """The speech fixture (16 kHz 16-bit mono): memory grows with length, not content."""
    with wave.open(os.path.join(ROOT, "tests/fixtures/speech_16k.wav")) as w:
        return w.getparams(), w.readframes(w.getnframes())


def write_long(path, params, frames, minutes):
    need = int(minutes * 60 * params.framerate * params.sampwidth)
    with wave.open(path, "wb") as out:
        out.setparams(params)
        written = 0
        while written < need:
            chunk = frames[: need - written]
            out.writeframes(chunk)
            written += len(chunk)


def measure(args, path):
    result = subprocess.run(
        ["/usr/bin/time", "-f", "%e %M", SERD, *args, path],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    last = result.stderr.strip().splitlines()[-1]
    wall, rss_kb = last.split()
    return float(wall), int(rss_kb) / 1024, result.returncode


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--minutes", type=float, nargs="+", default=[10, 120])
    opts = parser.parse_args()
    if not os.path.exists(SERD):
        sys.exit(f"{SERD}: build it first (cargo build --release)")
    params, frames = speech_frames()
    with tempfile.TemporaryDirectory() as tmp:
        files = {}
        for m in opts.minutes:
            files[m] = os.path.join(tmp, f"speech_{m:g}min.wav")
            write_long(files[m], params, frames, m)
        print("| command | " + " | ".join(f"{m:g} min: wall, peak RSS" for m in opts.minutes) + " | ratio |")
        print("|---|" + "---|" * (len(opts.minutes) + 1))
        for name, args in COMMANDS:
            cells, peaks = [], []
            for m in opts.minutes:
                wall, rss, code = measure(args, files[m])
                status = "" if code == 0 else f" (exit {code})"
                cells.append(f"{wall:.1f} s, {rss:.1f} MB{status}")
                peaks.append(rss)
            print(f"| {name} | " + " | ".join(cells) + f" | {peaks[-1] / peaks[0]:.3f} |")
            sys.stdout.flush()


if __name__ == "__main__":
    main()
