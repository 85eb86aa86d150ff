#!/usr/bin/env python3
"""Benchmark: utterance verdicts against window verdicts on long streams of held-out speakers
(BENCHMARKS.md, "Utterances").

    cargo build --release
    apt-get install flac                       # to decode the corpus's FLAC files
    python3 benches/utterances.py [--seeds 1 2 3 4 5] [--streams 8] [--work DIR]

1. Trains a model with `serd train` (eGeMAPS, `--window 2 --hop 1`, two speaker-grouped folds for
   its calibration) on RAVDESS actors 01-16, through a CSV manifest.
2. For each seed, shuffles the 144 files of the held-out actors 17-20 into --streams streams
   (18 files each, about 90 s), each file followed by a pause of digital silence drawn from 1 to 2 s,
   and replays each stream with `serd listen --input` (48 kHz, as recorded).
3. Scores, pooled over the seed's streams, with unweighted average recall (UAR) over the five
   classes:
   - windows: each emotion event against the file it overlaps most;
   - utterances: each utterance event against the file it overlaps most;
   - files: `serd predict` on the same held-out files, one verdict each (null counts as wrong).
   Also how the segmentation went: utterances per file, the share of utterances that overlap more
   than one file, and the share of files that no utterance covers mostly.
   With --align every file starts on a whole second of its stream (pauses of 1 to 3 s), so that a
   stream's windows over a file are the ones `predict` cuts from it: what is left of a difference
   between utterance and file figures is the stream's context (the front end's level control
   carried from file to file, windows reaching into the neighbours' pauses).

Prints one line per seed and the median (min-max) over seeds; appends one JSON line per seed to
--results (default: target/utterances.jsonl). Corpus audio is written only under --work (a
temporary folder unless given), never into the repository.
"""
import argparse
import csv
import json
import math
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
import wave

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RAVDESS = os.path.join(ROOT, "..", "shared", "corpora", "ravdess")
CLASSES = ["anger", "surprise", "happiness", "sadness", "neutral"]
EMOTION = {"01": "neutral", "03": "happiness", "04": "sadness", "05": "anger", "08": "surprise"}
TRAIN_ACTORS = range(1, 17)
TEST_ACTORS = range(17, 21)
RATE = 48_000


def serd_binary():
    target = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))
    return os.path.join(target, "release", "serd")


def files_of(actors):
    out = []
    for a in actors:
        folder = os.path.join(RAVDESS, f"Actor_{a:02d}")
        for name in sorted(os.listdir(folder)):
            label = EMOTION.get(name.split("-")[2])
            if label:
                out.append((os.path.join(folder, name), label, f"ravdess:{a:02d}"))
    return out


def decode(path, work):
    """The file's samples at 48 kHz, mono, in [-1, 1) (flac decodes; two files are stereo)."""
    wav = os.path.join(work, "decoded.wav")
    subprocess.run(["flac", "-d", "-s", "-f", "-o", wav, path], check=True)
    with wave.open(wav) as w:
        assert w.getframerate() == RATE and w.getsampwidth() == 2, path
        x = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").astype(np.float64)
        x = x.reshape(-1, w.getnchannels()).mean(axis=1)
    return x / 32768.0


def write_wav(path, samples):
    pcm = np.clip(np.round(samples * 32768.0), -32768, 32767).astype("<i2")
    with wave.open(path, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(RATE)
        w.writeframes(pcm.tobytes())


def uar(pairs):
    recalls = []
    for c in CLASSES:
        got = [p == c for t, p in pairs if t == c]
        if got:
            recalls.append(sum(got) / len(got))
    return sum(recalls) / len(recalls) if recalls else None


def overlap(a0, a1, b0, b1):
    return max(0.0, min(a1, b1) - max(a0, b0))


def truth_of(t0, t1, placed):
    """(index, label) of the placed file [start, end, label] that [t0, t1] overlaps most."""
    best = max(range(len(placed)), key=lambda i: overlap(t0, t1, placed[i][0], placed[i][1]))
    if overlap(t0, t1, placed[best][0], placed[best][1]) <= 0:
        return None, None
    return best, placed[best][2]


def train(work, cache, front_end):
    manifest = os.path.join(work, "train.csv")
    with open(manifest, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["path", "label", "speaker"])
        for path, label, speaker in files_of(TRAIN_ACTORS):
            w.writerow([os.path.abspath(path), label, speaker])
    model = os.path.join(work, "model")
    cmd = [serd_binary(), "train", "--data", manifest, "--out", model, "--features", "egemaps",
           "--window", "2", "--hop", "1", "--cv", "speaker", "--folds", "2", "--seed", "42",
           "--front-end", front_end, "--backend", "cpu", "--cache", cache, "-q"]
    started = time.time()
    done = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    if done.returncode != 0:
        sys.exit(f"serd train failed:\n{done.stderr}")
    print(f"trained on actors 01-16 in {time.time() - started:.0f} s: {model}", file=sys.stderr)
    return model


def predict_files(model, files):
    cmd = [serd_binary(), "predict", "--model", model, "--backend", "cpu", "-q"] + [f for f, _, _ in files]
    done = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if done.returncode != 0:
        sys.exit(f"serd predict failed:\n{done.stderr}")
    lines = [json.loads(l) for l in done.stdout.splitlines()]
    assert [l["file"] for l in lines] == [f for f, _, _ in files]
    return [(label, line["label"]) for (_, label, _), line in zip(files, lines)]


def run_seed(seed, model, test, audio, streams, work, align=False):
    rng = random.Random(seed)
    order = list(range(len(test)))
    rng.shuffle(order)
    per = -(-len(order) // streams)
    windows, utterances = [], []
    seg = {"files": 0, "utterances": 0, "multi_file": 0, "files_covered": 0, "audio_s": 0.0}
    for s in range(streams):
        chosen = order[s * per:(s + 1) * per]
        parts, placed, t = [], [], 0.0
        for i in chosen:
            x = audio[i]
            placed.append([t, t + len(x) / RATE, test[i][1]])
            pause = rng.uniform(1.0, 2.0)
            if align:
                # The next file starts on a whole second: on the windows' grid, as in a file.
                pause = math.ceil(t + len(x) / RATE + pause) - (t + len(x) / RATE)
            parts += [x, np.zeros(int(pause * RATE))]
            t += len(x) / RATE + pause
        path = os.path.join(work, f"stream-{seed}-{s}.wav")
        write_wav(path, np.concatenate(parts))
        done = subprocess.run(
            [serd_binary(), "listen", "--model", model, "--backend", "cpu", "--input", path, "-q"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        os.remove(path)
        if done.returncode != 0:
            sys.exit(f"serd listen failed:\n{done.stderr}")
        events = [json.loads(l) for l in done.stdout.splitlines()]
        assert events[-1]["type"] == "end" and events[-1]["dropped"] == 0
        seg["files"] += len(placed)
        seg["audio_s"] += events[-1]["audio_s"]
        covered = set()
        for e in events:
            if e["type"] not in ("emotion", "utterance"):
                continue
            i, truth = truth_of(e["t_start"], e["t_end"], placed)
            if truth is None:
                continue
            if e["type"] == "emotion":
                windows.append((truth, e["label"]))
                continue
            utterances.append((truth, e["label"]))
            seg["utterances"] += 1
            touched = sum(overlap(e["t_start"], e["t_end"], p[0], p[1]) > 0.25 for p in placed)
            seg["multi_file"] += touched > 1
            covered.add(i)
        seg["files_covered"] += len(covered)
    return {
        "seed": seed,
        "window_uar": uar(windows), "windows": len(windows),
        "utterance_uar": uar(utterances), "utterances": len(utterances),
        "utterances_per_file": seg["utterances"] / seg["files"],
        "multi_file_share": seg["multi_file"] / max(1, seg["utterances"]),
        "files_uncovered_share": 1 - seg["files_covered"] / seg["files"],
        "audio_s": round(seg["audio_s"], 1),
    }


def spread(rows, key):
    values = [r[key] for r in rows]
    return f"{statistics.median(values):.3f} ({min(values):.3f}-{max(values):.3f})"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3, 4, 5])
    ap.add_argument("--streams", type=int, default=8, help="streams per seed")
    ap.add_argument("--work", help="working folder (model, manifest, decoded audio)")
    ap.add_argument("--cache", help="feature cache (default: WORK/features)")
    ap.add_argument("--model", help="use this model instead of training one")
    ap.add_argument("--front-end", default="level", choices=["level", "none"],
                    help="serd train's --front-end (default: level, serd's default)")
    ap.add_argument("--align", action="store_true",
                    help="start every file on a whole second of its stream (pauses of 1 to 3 s), so "
                    "that its windows are the ones predict cuts from it")
    ap.add_argument("--results", default=os.path.join(ROOT, "target", "utterances.jsonl"))
    args = ap.parse_args()
    if not os.path.exists(serd_binary()):
        sys.exit(f"{serd_binary()}: build it first (cargo build --release)")
    started = time.time()
    with tempfile.TemporaryDirectory() as tmp:
        work = args.work or tmp
        os.makedirs(work, exist_ok=True)
        model = args.model or train(work, args.cache or os.path.join(work, "features"), args.front_end)
        test = files_of(TEST_ACTORS)
        files = predict_files(model, test)
        file_uar = uar(files)
        audio = [decode(f, work) for f, _, _ in test]
        rows = []
        for seed in args.seeds:
            row = run_seed(seed, model, test, audio, args.streams, work, args.align)
            row["file_uar"] = file_uar
            row["aligned"] = args.align
            row["front_end"] = args.front_end if not args.model else None
            rows.append(row)
            print(f"seed {seed}: window UAR {row['window_uar']:.3f} ({row['windows']} windows), "
                  f"utterance UAR {row['utterance_uar']:.3f} ({row['utterances']} utterances, "
                  f"{row['utterances_per_file']:.2f} per file, {row['multi_file_share']:.1%} over "
                  f"more than one file, {row['files_uncovered_share']:.1%} of files mostly in no "
                  f"utterance), {row['audio_s']:.0f} s of audio", flush=True)
        os.makedirs(os.path.dirname(args.results), exist_ok=True)
        with open(args.results, "a") as f:
            for row in rows:
                f.write(json.dumps(row) + "\n")
    print(f"\n{len(test)} held-out files (RAVDESS actors 17-20), {len(args.seeds)} seeds x "
          f"{args.streams} streams; median (min-max) over seeds:")
    print(f"  window UAR     {spread(rows, 'window_uar')}")
    print(f"  utterance UAR  {spread(rows, 'utterance_uar')}")
    print(f"  file UAR       {file_uar:.3f} (serd predict, one verdict per file; the same every seed)")
    print(f"  utterances per file {spread(rows, 'utterances_per_file')}, over more than one file "
          f"{spread(rows, 'multi_file_share')}")
    print(f"total {time.time() - started:.0f} s")


if __name__ == "__main__":
    main()
