//! `docs/events.schema.json`: every line each command writes is valid against it (`json_lines`
//! checks every line the suite reads, so the other tests check it too), and the test validator
//! rejects what the schema does not allow.

use serde_json::{json, Value};

use crate::common::{fixture, json_lines, output_schema, pcm16_samples, serd, text, validate, Wav};

/// Runs `serd ARGS`, which must succeed: its stdout's lines, each checked against the schema.
fn lines(args: &[&str]) -> Vec<Value> {
    let out = serd(args);
    assert!(out.status.success(), "{args:?}: {}", text(&out.stderr));
    json_lines(&out.stdout)
}

#[test]
fn every_command_writes_what_the_schema_describes() {
    let speech = fixture("speech_16k.wav");
    let silence = fixture("silence_16k.wav");
    let (speech, silence) = (speech.to_str().unwrap(), silence.to_str().unwrap());

    // Speech, then silence: emotion, silence and utterance events.
    let dir = tempfile::tempdir().unwrap();
    let both = dir.path().join("speech_then_silence.wav");
    let mut samples = pcm16_samples(&std::fs::read(speech).unwrap());
    samples.extend(std::iter::repeat_n(0.0, 64_000));
    std::fs::write(&both, Wav::pcm16(16_000, 1).encode(&samples)).unwrap();
    let events = lines(&[
        "listen",
        "--input",
        both.to_str().unwrap(),
        "--backend",
        "cpu",
    ]);
    let types: Vec<&str> = events.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert!(
        types.contains(&"emotion") && types.contains(&"silence") && types.contains(&"utterance"),
        "{types:?}"
    );
    assert_eq!(
        events[0]["schema"],
        output_schema()["$defs"]["start"]["properties"]["schema"]["const"]
    );

    let predicted = lines(&["predict", "--backend", "cpu", speech, silence]);
    assert_eq!(predicted.len(), 2);
    assert!(predicted.iter().all(|p| p["type"] == "prediction"));
    assert!(predicted[1]["label"].is_null(), "{predicted:?}");
    let windows = lines(&["predict", "--windows", "--backend", "cpu", speech]);
    assert!(!windows.is_empty() && windows.iter().all(|w| w["type"] == "window"));
    let utterances = lines(&["predict", "--utterances", "--backend", "cpu", speech]);
    assert!(!utterances.is_empty() && utterances.iter().all(|u| u["type"] == "utterance"));

    let extracted = lines(&["extract", "--window", "1", speech]);
    assert!(extracted.len() > 2);

    // eval: clean and under a condition, with a label outside the five classes left out.
    let manifest = dir.path().join("data.csv");
    std::fs::write(
        &manifest,
        format!(
            "path,label\n{speech},anger\n{},sadness\n{silence},calm\n",
            fixture("speech_48k.wav").display()
        ),
    )
    .unwrap();
    let cache = dir.path().join("cache");
    let report = lines(&[
        "eval",
        "--backend",
        "cpu",
        "--data",
        manifest.to_str().unwrap(),
        "--cache",
        cache.to_str().unwrap(),
        "--condition",
        "white:20",
    ]);
    assert_eq!(report.len(), 1);
    assert_eq!(report[0]["n"], 2);
    assert_eq!(report[0]["left_out"]["calm"], 1);
    assert_eq!(report[0]["conditions"][0]["condition"], "white:20");
}

#[test]
fn the_validator_rejects_what_the_schema_does_not_allow() {
    let emotion = json!({
        "type": "emotion", "time": "2026-12-07T05:12:03.123Z", "t_start": 1.0, "t_end": 3.01,
        "label": "anger", "confidence": 0.97,
        "probs": {"anger": 0.97, "surprise": 0.0, "happiness": 0.02, "sadness": 0.0, "neutral": 0.01},
        "voiced": 0.75, "latency_ms": 143.2
    });
    validate(&emotion).unwrap();
    let broken = |change: &dyn Fn(&mut Value)| {
        let mut e = emotion.clone();
        change(&mut e);
        validate(&e).err()
    };
    assert!(broken(&|e| {
        e.as_object_mut().unwrap().remove("time");
    })
    .is_some());
    assert!(broken(&|e| e["mood"] = json!("fine")).is_some());
    assert!(broken(&|e| e["label"] = json!("fear")).is_some());
    assert!(broken(&|e| e["probs"]["anger"] = json!(1.5)).is_some());
    assert!(broken(&|e| e["t_start"] = json!("1.0")).is_some());
    assert!(broken(&|e| e["type"] = json!("utterance")).is_some());
    // A prediction without speech has null where the emotion would be; a window never does.
    let mut prediction = json!({"type": "prediction", "file": "a.wav", "label": null,
        "confidence": null, "probs": null, "voiced": 0.0});
    validate(&prediction).unwrap();
    prediction["type"] = json!("window");
    prediction["t_start"] = json!(0.0);
    prediction["t_end"] = json!(2.0);
    assert!(validate(&prediction).is_err());
    // The end event's counts are whole numbers.
    let end = json!({"type": "end", "time": "2026-12-07T05:12:03.123Z", "windows": 3,
        "emitted": 2, "silences": 1, "utterances": 1, "dropped": 0, "audio_s": 4.0,
        "audio_dropped_s": 0.0});
    validate(&end).unwrap();
    let mut end = end;
    end["windows"] = json!(2.5);
    assert!(validate(&end).is_err());
    // An utterance is made of one window at least; listen's has a time, predict's a file.
    let utterance = json!({"type": "utterance", "time": "2026-12-07T05:12:03.123Z",
        "t_start": 1.0, "t_end": 6.04, "windows": 4, "label": "anger", "confidence": 0.61,
        "probs": {"anger": 0.61, "surprise": 0.1, "happiness": 0.1, "sadness": 0.1, "neutral": 0.09}});
    validate(&utterance).unwrap();
    let mut none = utterance.clone();
    none["windows"] = json!(0);
    assert!(validate(&none).is_err());
    let mut of_file = utterance.clone();
    of_file["file"] = json!("a.wav");
    assert!(validate(&of_file).is_err(), "a time or a file, not both");
    of_file.as_object_mut().unwrap().remove("time");
    validate(&of_file).unwrap();
}
