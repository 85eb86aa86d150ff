#!/usr/bin/env python3
"""Writes MODEL_DIR/trained-on.json from MODEL_DIR/metrics.json, for a model trained before serd
recorded its training files: the FNV-1a (64 bit) of the bytes of every file in the
cross-validation's assignment (every file the final model was trained on), as `serd train` writes
it. Paths in metrics.json are relative to where `serd train` ran (the repository's root).

    python3 tools/trained_on.py models/default
"""
import json
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def fnv1a64(data):
    h = 0xCBF29CE484222325
    for b in data:
        h = ((h ^ b) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return f"{h:016x}"


def main():
    model = sys.argv[1]
    metrics = json.load(open(os.path.join(model, "metrics.json")))
    paths = [a["path"] for a in metrics["cv"]["assignment"]]
    hashes = sorted({fnv1a64(open(os.path.join(ROOT, p), "rb").read()) for p in paths})
    with open(os.path.join(model, "trained-on.json"), "w") as f:
        f.write(json.dumps({"fnv1a64": hashes}, separators=(",", ":")) + "\n")
    print(f"{model}/trained-on.json: {len(hashes)} files", file=sys.stderr)


if __name__ == "__main__":
    main()
