//! The five emotion classes serd recognises, in the fixed order used by models, probabilities
//! and reports.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// An emotion class. The declaration order is the class index order everywhere.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Emotion {
    Anger,
    Surprise,
    Happiness,
    Sadness,
    Neutral,
}

impl Emotion {
    /// All classes, in index order.
    pub const ALL: [Emotion; 5] = [
        Emotion::Anger,
        Emotion::Surprise,
        Emotion::Happiness,
        Emotion::Sadness,
        Emotion::Neutral,
    ];

    /// Number of classes.
    pub const COUNT: usize = 5;

    /// Class index, 0..COUNT.
    pub fn index(self) -> usize {
        self as usize
    }

    /// The class of an index, if in range.
    pub fn from_index(i: usize) -> Option<Emotion> {
        Emotion::ALL.get(i).copied()
    }

    /// Lowercase name, as in JSON output and manifests.
    pub fn name(self) -> &'static str {
        match self {
            Emotion::Anger => "anger",
            Emotion::Surprise => "surprise",
            Emotion::Happiness => "happiness",
            Emotion::Sadness => "sadness",
            Emotion::Neutral => "neutral",
        }
    }
}

impl fmt::Display for Emotion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A label that is not one of the five class names.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown emotion {0:?} (expected anger, surprise, happiness, sadness or neutral)")]
pub struct UnknownEmotion(pub String);

impl FromStr for Emotion {
    type Err = UnknownEmotion;

    fn from_str(s: &str) -> Result<Emotion, UnknownEmotion> {
        Emotion::ALL
            .into_iter()
            .find(|e| e.name().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| UnknownEmotion(s.to_string()))
    }
}

/// Class probabilities, written as an object in the fixed class order
/// (`{"anger":..,"surprise":..,"happiness":..,"sadness":..,"neutral":..}`): the one form every
/// command reports them in (`listen`'s events, `predict`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Probs(pub [f32; Emotion::COUNT]);

impl Serialize for Probs {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = serializer.serialize_map(Some(Emotion::COUNT))?;
        for e in Emotion::ALL {
            map.serialize_entry(e.name(), &round_prob(self.0[e.index()]))?;
        }
        map.end()
    }
}

/// Decimals a probability is written with (`probs`, `confidence`): the digits beyond say nothing
/// (the backends and batchings differ there) and only lengthen the lines.
pub const PROB_DECIMALS: i32 = 4;

/// `p` rounded to [`PROB_DECIMALS`] decimals, as written (a `f64`, so that `0.1235` is written
/// as such and not as the nearest `f32`'s digits).
pub fn round_prob(p: f32) -> f64 {
    let scale = 10f64.powi(PROB_DECIMALS);
    (f64::from(p) * scale).round() / scale
}

/// Serialises a probability rounded ([`round_prob`]); for `#[serde(serialize_with)]`.
pub fn serialize_prob<S: serde::Serializer>(p: &f32, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_f64(round_prob(*p))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_indices_round_trip() {
        for (i, e) in Emotion::ALL.into_iter().enumerate() {
            assert_eq!(e.index(), i);
            assert_eq!(Emotion::from_index(i), Some(e));
            assert_eq!(e.name().parse::<Emotion>(), Ok(e));
            assert_eq!(
                serde_json::to_string(&e).unwrap(),
                format!("\"{}\"", e.name())
            );
        }
        assert_eq!(" Anger ".parse::<Emotion>(), Ok(Emotion::Anger));
        assert!("fear".parse::<Emotion>().is_err());
        assert_eq!(Emotion::from_index(5), None);
    }

    #[test]
    fn probabilities_are_written_with_four_decimals() {
        let probs = Probs([0.123_456, 0.000_04, 0.999_96, 1.0 / 3.0, 0.0]);
        assert_eq!(
            serde_json::to_string(&probs).unwrap(),
            r#"{"anger":0.1235,"surprise":0.0,"happiness":1.0,"sadness":0.3333,"neutral":0.0}"#
        );
    }
}
