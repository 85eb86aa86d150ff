//! The corpora's file-name grammars: what a file's name says about its emotion and speaker,
//! one parser per corpus.

use super::*;

/// SAVEE's four speakers.
pub(super) const SAVEE_SPEAKERS: [&str; 4] = ["DC", "JE", "JK", "KL"];

/// The label a file name gives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Label {
    Kept(Emotion),
    /// Outside the five classes: the corpus's own word for it.
    LeftOut(&'static str),
}

/// What a file name says under one naming scheme.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Parsed {
    pub(super) label: Label,
    /// Speaker id within the corpus, without namespace.
    pub(super) speaker: String,
}

/// What `path`'s name says under `kind`'s naming scheme; `None` when it does not follow it.
pub(super) fn parse_name(kind: Kind, path: &Path) -> Option<Parsed> {
    let stem = path.file_stem()?.to_str()?;
    match kind {
        Kind::Ravdess => parse_ravdess(stem),
        Kind::EmoDb => parse_emodb(stem),
        Kind::Tess => parse_tess(path, stem),
        Kind::CremaD => parse_cremad(stem),
        Kind::Shemo => parse_shemo(stem),
        Kind::Esd => parse_esd(path, stem),
        Kind::Savee => parse_savee(path, stem),
        Kind::Manifest => None,
    }
}

pub(super) fn is_digits(s: &str, n: usize) -> bool {
    s.len() == n && s.bytes().all(|b| b.is_ascii_digit())
}

/// `MM-VV-EE-II-SS-RR-AA`, seven two-digit fields; EE the emotion, AA the actor.
pub(super) fn parse_ravdess(stem: &str) -> Option<Parsed> {
    let fields: Vec<&str> = stem.split('-').collect();
    if fields.len() != 7 || !fields.iter().all(|f| is_digits(f, 2)) {
        return None;
    }
    let label = match fields[2] {
        "01" => Label::Kept(Emotion::Neutral),
        "02" => Label::LeftOut("calm"),
        "03" => Label::Kept(Emotion::Happiness),
        "04" => Label::Kept(Emotion::Sadness),
        "05" => Label::Kept(Emotion::Anger),
        "06" => Label::LeftOut("fearful"),
        "07" => Label::LeftOut("disgust"),
        "08" => Label::Kept(Emotion::Surprise),
        _ => return None,
    };
    Some(Parsed {
        label,
        speaker: fields[6].to_string(),
    })
}

/// `SSTTTEV`: speaker (2 digits), text (letter + 2 digits), emotion letter, version letter.
pub(super) fn parse_emodb(stem: &str) -> Option<Parsed> {
    let b = stem.as_bytes();
    let shape = b.len() == 7
        && b[0].is_ascii_digit()
        && b[1].is_ascii_digit()
        && b[2].is_ascii_alphabetic()
        && b[3].is_ascii_digit()
        && b[4].is_ascii_digit()
        && b[6].is_ascii_alphabetic();
    if !shape {
        return None;
    }
    let label = match b[5].to_ascii_uppercase() {
        b'W' => Label::Kept(Emotion::Anger),
        b'L' => Label::LeftOut("boredom"),
        b'E' => Label::LeftOut("disgust"),
        b'A' => Label::LeftOut("fear"),
        b'F' => Label::Kept(Emotion::Happiness),
        b'T' => Label::Kept(Emotion::Sadness),
        b'N' => Label::Kept(Emotion::Neutral),
        _ => return None,
    };
    Some(Parsed {
        label,
        speaker: stem[..2].to_string(),
    })
}

/// `{OAF|YAF}_{word}_{emotion}`; the speaker may also come from the folder (`OAF_angry/`).
pub(super) fn parse_tess(path: &Path, stem: &str) -> Option<Parsed> {
    let parts: Vec<&str> = stem.split('_').collect();
    if parts.len() < 3 || parts[1..parts.len() - 1].iter().any(|p| p.is_empty()) {
        return None;
    }
    let label = match parts[parts.len() - 1].to_ascii_lowercase().as_str() {
        "angry" => Label::Kept(Emotion::Anger),
        "disgust" => Label::LeftOut("disgust"),
        "fear" => Label::LeftOut("fear"),
        "happy" => Label::Kept(Emotion::Happiness),
        "neutral" => Label::Kept(Emotion::Neutral),
        "ps" => Label::Kept(Emotion::Surprise),
        "sad" => Label::Kept(Emotion::Sadness),
        _ => return None,
    };
    let tess_speaker = |s: &str| {
        ["OAF", "YAF"]
            .into_iter()
            .find(|k| k.eq_ignore_ascii_case(s))
    };
    let from_folder = || {
        let folder = path.parent()?.file_name()?.to_str()?;
        tess_speaker(folder.split('_').next()?)
    };
    let speaker = tess_speaker(parts[0]).or_else(from_folder)?;
    Some(Parsed {
        label,
        speaker: speaker.to_string(),
    })
}

/// `SSSS_TTT_EEE_II`: speaker 1001..1091, sentence, emotion, intensity.
pub(super) fn parse_cremad(stem: &str) -> Option<Parsed> {
    let parts: Vec<&str> = stem.split('_').collect();
    if parts.len() != 4 || !is_digits(parts[0], 4) {
        return None;
    }
    let speaker: u32 = parts[0].parse().ok()?;
    if !(1001..=1091).contains(&speaker)
        || parts[1].len() != 3
        || !parts[1].bytes().all(|b| b.is_ascii_alphabetic())
        || !["LO", "MD", "HI", "XX"]
            .iter()
            .any(|i| i.eq_ignore_ascii_case(parts[3]))
    {
        return None;
    }
    let label = match parts[2].to_ascii_uppercase().as_str() {
        "ANG" => Label::Kept(Emotion::Anger),
        "DIS" => Label::LeftOut("disgust"),
        "FEA" => Label::LeftOut("fear"),
        "HAP" => Label::Kept(Emotion::Happiness),
        "NEU" => Label::Kept(Emotion::Neutral),
        "SAD" => Label::Kept(Emotion::Sadness),
        _ => return None,
    };
    Some(Parsed {
        label,
        speaker: parts[0].to_string(),
    })
}

/// ShEMO's emotion letters (file names), also accepted in relabelling JSON.
pub(super) fn shemo_letter(letter: u8) -> Option<Label> {
    Some(match letter.to_ascii_uppercase() {
        b'A' => Label::Kept(Emotion::Anger),
        b'W' => Label::Kept(Emotion::Surprise),
        b'H' => Label::Kept(Emotion::Happiness),
        b'S' => Label::Kept(Emotion::Sadness),
        b'N' => Label::Kept(Emotion::Neutral),
        b'F' => Label::LeftOut("fear"),
        _ => return None,
    })
}

/// `GSSENN`: gender F/M, speaker (2 digits), emotion letter, number (2 digits).
pub(super) fn parse_shemo(stem: &str) -> Option<Parsed> {
    let b = stem.as_bytes();
    let shape = b.len() == 6
        && matches!(b[0].to_ascii_uppercase(), b'F' | b'M')
        && b[1].is_ascii_digit()
        && b[2].is_ascii_digit()
        && b[4].is_ascii_digit()
        && b[5].is_ascii_digit();
    if !shape {
        return None;
    }
    Some(Parsed {
        label: shemo_letter(b[3])?,
        speaker: format!("{}{}", b[0].to_ascii_uppercase() as char, &stem[1..3]),
    })
}

/// `SSSS_NNNNNN` in a folder named for the emotion (`Angry/`, possibly `Angry/train/`).
pub(super) fn parse_esd(path: &Path, stem: &str) -> Option<Parsed> {
    let (speaker, number) = stem.split_once('_')?;
    if !is_digits(speaker, 4) || !is_digits(number, 6) {
        return None;
    }
    let emotion = path
        .ancestors()
        .skip(1)
        .take(3)
        .filter_map(|dir| dir.file_name()?.to_str())
        .find_map(|name| match name.to_ascii_lowercase().as_str() {
            "angry" => Some(Emotion::Anger),
            "happy" => Some(Emotion::Happiness),
            "neutral" => Some(Emotion::Neutral),
            "sad" => Some(Emotion::Sadness),
            "surprise" => Some(Emotion::Surprise),
            _ => None,
        })?;
    Some(Parsed {
        label: Label::Kept(emotion),
        speaker: speaker.to_string(),
    })
}

/// SAVEE's `{prefix}{NN}`: a anger, d disgust, f fear, h happiness, n neutral, sa sadness,
/// su surprise.
pub(super) fn savee_code(code: &str) -> Option<Label> {
    if code.len() < 3 || !code.is_ascii() {
        return None;
    }
    let (prefix, number) = code.split_at(code.len() - 2);
    if !is_digits(number, 2) {
        return None;
    }
    Some(match prefix.to_ascii_lowercase().as_str() {
        "a" => Label::Kept(Emotion::Anger),
        "d" => Label::LeftOut("disgust"),
        "f" => Label::LeftOut("fear"),
        "h" => Label::Kept(Emotion::Happiness),
        "n" => Label::Kept(Emotion::Neutral),
        "sa" => Label::Kept(Emotion::Sadness),
        "su" => Label::Kept(Emotion::Surprise),
        _ => return None,
    })
}

/// `DC/a01` (speaker folder) or `DC_a01` (flat).
pub(super) fn parse_savee(path: &Path, stem: &str) -> Option<Parsed> {
    let speaker = |s: &str| {
        SAVEE_SPEAKERS
            .into_iter()
            .find(|k| k.eq_ignore_ascii_case(s))
    };
    if let Some((spk, code)) = stem.split_once('_') {
        return Some(Parsed {
            label: savee_code(code)?,
            speaker: speaker(spk)?.to_string(),
        });
    }
    let folder = path.parent()?.file_name()?.to_str()?;
    Some(Parsed {
        label: savee_code(stem)?,
        speaker: speaker(folder)?.to_string(),
    })
}
