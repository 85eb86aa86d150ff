#!/usr/bin/env python3
"""Regenerates tests/fixtures: synthesised audio and openSMILE reference features.

Audio comes from espeak-ng (speech) and sox (tones, noise, silence, format variants), never from a
corpus. The reference features are computed by PyPI `opensmile` 2.6.0 (audEERING's
openSMILE-python, the trusted reference for openSMILE features) with `Smile.process_file` on each
file at its own sample rate; windowed references use openSMILE's fixed frame mode through the
`frameModeFunctionalsConf` option, the same mechanism serd uses.

    apt-get install espeak-ng sox libsox-fmt-all    # libsox-fmt-all: mp3/ogg encoders
    pip install opensmile==2.6.0
    python3 tools/make_fixtures.py

Writes tests/fixtures/*.{wav,flac,mp3,ogg,aiff} and tests/fixtures/reference.json.
"""
import json
import os
import subprocess
import sys
import tempfile

import numpy as np
import opensmile

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures")
TEXT = "Nobody told me the meeting was moved. I waited for an hour, and now I am really upset!"
WINDOW, HOP = 1.0, 0.5
SETS = {"egemaps": opensmile.FeatureSet.eGeMAPSv02, "compare": opensmile.FeatureSet.ComParE_2016}


def sh(*args):
    subprocess.run(args, check=True)


def make_audio(tmp):
    raw = os.path.join(tmp, "speech.wav")
    sh("espeak-ng", "-v", "en-us", "-s", "150", "-w", raw, TEXT)
    f = lambda name: os.path.join(OUT, name)
    sh("sox", "-D", raw, "-r", "16000", "-b", "16", "-c", "1", f("speech_16k.wav"))
    sh("sox", "-D", raw, "-r", "48000", "-b", "16", "-c", "1", f("speech_48k.wav"))
    sh("sox", "-D", raw, "-r", "44100", "-b", "16", "-c", "1", f("speech_44k.wav"))
    sh("sox", "-n", "-r", "16000", "-b", "16", f("tone_16k.wav"), "synth", "2", "sine", "150-300", "vol", "0.5")
    sh("sox", "-R", "-n", "-r", "16000", "-b", "16", f("noise_16k.wav"), "synth", "2", "pinknoise", "vol", "0.2")
    sh("sox", "-n", "-r", "16000", "-b", "16", f("silence_16k.wav"), "trim", "0", "2")
    # Container and codec variants of a short tone, decoded and compared with tone_16k.wav.
    for ext in ("flac", "mp3", "ogg", "aiff"):
        sh("sox", f("tone_16k.wav"), f(f"tone_16k.{ext}"))
    # Ogg Vorbis pads the last page: the decoder must trim it (speech ends off a page boundary).
    sh("sox", f("speech_16k.wav"), f("speech_16k.ogg"))
    # AIFF content under a .wav name: formats are recognised by content.
    sh("cp", f("tone_16k.aiff"), f("tone_aiff_named.wav"))


def reference(path, set_name, windowed, frame_conf):
    options = {"frameModeFunctionalsConf": frame_conf} if windowed else {}
    smile = opensmile.Smile(feature_set=SETS[set_name], options=options)
    df = smile.process_file(path)
    windows = []
    for (_, start, end), row in df.iterrows():
        windows.append({
            "t_start": start.total_seconds(),
            "t_end": end.total_seconds(),
            "values": [float("%.9g" % v) for v in row.values.astype(np.float32)],
        })
    if set_name == "egemaps":
        # Voiced share: frames whose smoothed F0 is above zero, per window, from the LLDs.
        lld = opensmile.Smile(feature_set=SETS[set_name], feature_level=opensmile.FeatureLevel.LowLevelDescriptors)
        frames = lld.process_file(path)
        starts = np.array([s.total_seconds() for (_, s, _) in frames.index])
        voiced = frames["F0semitoneFrom27.5Hz_sma3nz"].values > 0
        # openSMILE-python replaces the last window's end with the file's duration; the voiced
        # share covers openSMILE's own window span, the same for every window.
        span = windows[0]["t_end"] - windows[0]["t_start"] if windowed else None
        for w in windows:
            end = w["t_start"] + span if windowed else w["t_end"]
            inside = (starts >= w["t_start"] - 1e-6) & (starts < end - 1e-6)
            w["voiced"] = float(voiced[inside].mean()) if inside.any() else 0.0
    return list(df.columns), windows


def main():
    os.makedirs(OUT, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        make_audio(tmp)
        frame_conf = os.path.join(tmp, "fixed.conf.inc")
        with open(frame_conf, "w") as fh:
            fh.write(f"frameMode = fixed\nframeSize = {WINDOW}\nframeStep = {HOP}\nframeCenterSpecial = left\n")
        cases, names = [], {}
        plan = [(f, s, w) for f in ("speech_16k.wav", "tone_16k.wav", "noise_16k.wav", "silence_16k.wav")
                for s in SETS for w in (False, True) if not (s == "compare" and w and f != "speech_16k.wav")]
        plan += [(f, s, False) for f in ("speech_48k.wav", "speech_44k.wav") for s in SETS]
        for file, set_name, windowed in plan:
            cols, windows = reference(os.path.join(OUT, file), set_name, windowed, frame_conf)
            names[set_name] = cols
            cases.append({"file": file, "features": set_name,
                          "window": [WINDOW, HOP] if windowed else None, "windows": windows})
            print(f"{file} {set_name} {'windowed' if windowed else 'whole'}: {len(windows)} windows", file=sys.stderr)
    doc = {"generator": "tools/make_fixtures.py", "reference": f"opensmile (PyPI) {opensmile.__version__}",
           "names": names, "cases": cases}
    with open(os.path.join(OUT, "reference.json"), "w") as fh:
        json.dump(doc, fh, separators=(",", ":"))


if __name__ == "__main__":
    main()
