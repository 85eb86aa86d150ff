//! The front end: what a model does to 16 kHz audio before openSMILE sees it, so that its verdict
//! does not depend on how loud the microphone is, on a recording's last bit, or on which
//! resampler made it.
//!
//! Two steps, both streaming, causal and independent of how the input is chunked (a file, the
//! same file replayed by `serd listen`, or a live microphone give the same samples to openSMILE):
//! 1. **Level normalisation**: a slow automatic gain control. A tracker follows the level of the
//!    loud 10 ms frames (speech); frames more than [`GATE_DB`] below it (pauses, background) only
//!    pull it down slowly ([`GATED_S`]), so that a loud transient cannot silence what follows for
//!    good. Every sample is scaled so that the level sits at the model's target. The tracker only
//!    works with level differences, so a recording at −30 dB gives the same normalised samples as
//!    at 0 dB once the first frames of speech have been heard, as long as the speech stays above
//!    −70 dBFS; at an onset, a frame just above [`ACTIVE_DBFS`] in one copy can be below it in
//!    the other, and background noise heard before any speech is brought up to the target until
//!    the speech arrives. Digital silence and frames below [`ACTIVE_DBFS`] never move it; a
//!    sample that is not a number is read as silence. Until the first active frame has been
//!    heard, the input is muted (10 ms of a recording's onset at most).
//! 2. **Noise floor**: seeded white noise at a fixed level below the target is added, as every
//!    real microphone adds its own. Studio recordings' digital silence (a third of RAVDESS's
//!    samples are exactly 0) then no longer makes functionals depend on the last bit: ±1 LSB of
//!    dither lies 10–30 dB under the floor, depending on the gain applied.
//!
//! BENCHMARKS.md measures the front end against none; its time constants were set by reasoning,
//! not tuned on the corpora. While the tracker has heard less than [`WARM_UP_S`] of active audio,
//! a frame [`JUMP_DB`] above the level is taken at once and others with a fast attack; later a
//! jump (speech starting after background) gets the fast attack, and otherwise an attack of
//! [`ATTACK_S`] and a release of [`RELEASE_S`], slow enough to keep the loudness contour of an
//! utterance, which carries emotion, while removing the recording's overall level.

use serde::{Deserialize, Serialize};

use crate::rng::Rng;

use super::SAMPLE_RATE;

/// Revision of the algorithm below, part of the feature cache's key: bumped whenever the same
/// [`FrontEnd`] settings would give other samples.
pub const REVISION: u32 = 4;

/// 10 ms frames at [`SAMPLE_RATE`].
const FRAME: usize = SAMPLE_RATE as usize / 100;
/// Frames quieter than this (dBFS) never move the tracker: digital silence, 16-bit dither. The
/// tracker follows a change of gain exactly while the speech level stays above this plus
/// [`GATE_DB`] (−70 dBFS): 50 dB below a normal recording.
const ACTIVE_DBFS: f64 = -90.0;
/// Frames this far below the tracked level are pauses or background: ignored.
const GATE_DB: f64 = 20.0;
/// A frame this far above the tracked level restarts the attack at warm-up speed.
const JUMP_DB: f64 = 10.0;
const WARM_UP_S: f64 = 0.5;
const FAST_S: f64 = 0.05;
const ATTACK_S: f64 = 0.5;
const RELEASE_S: f64 = 4.0;
/// How fast frames below the gate pull the level down towards them (plus the gate).
const GATED_S: f64 = 8.0;
/// Bounds of the gain, dB: at most +60 (a very quiet microphone), at least −20.
const GAIN_DB: (f64, f64) = (-20.0, 60.0);
/// Seed of the noise floor: the same samples for every stream.
const FLOOR_SEED: u64 = 0x5E7D_F100;

/// What the front end does, as recorded in `model.json` (absent: nothing, openSMILE gets the
/// audio as it is, which is what `serd extract` always gives).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct FrontEnd {
    /// Level, dBFS, that the tracked speech level is brought to.
    pub level_dbfs: f64,
    /// RMS of the white noise floor added after normalisation, dBFS.
    pub floor_dbfs: f64,
}

impl FrontEnd {
    /// serd's default: speech brought to −20 dBFS (tracked level of the loud frames; peaks stay
    /// below full scale), a floor at −70 dBFS, 50 dB below it: a quiet microphone.
    pub const DEFAULT: FrontEnd = FrontEnd {
        level_dbfs: -20.0,
        floor_dbfs: -70.0,
    };

    /// Checks the levels (from a model file).
    pub fn problem(&self) -> Option<String> {
        let ok = |v: f64, lo: f64, hi: f64| v.is_finite() && (lo..=hi).contains(&v);
        if !ok(self.level_dbfs, -60.0, 0.0) {
            return Some(format!(
                "front_end.level_dbfs {} is not between -60 and 0",
                self.level_dbfs
            ));
        }
        if !ok(self.floor_dbfs, -140.0, self.level_dbfs) {
            return Some(format!(
                "front_end.floor_dbfs {} is not between -140 and the level",
                self.floor_dbfs
            ));
        }
        None
    }
}

/// The running front end of one stream.
pub struct Stage {
    target_db: f64,
    floor: f64,
    rng: Rng,
    /// Tracked speech level, dB (None until the first active frame).
    level_db: Option<f64>,
    /// Seconds of active frames heard.
    active_s: f64,
    /// Gain at the start and end of the current frame (linear); samples are interpolated.
    gain_from: f64,
    gain_to: f64,
    /// Position in the current frame and its sum of squares so far.
    at: usize,
    energy: f64,
}

impl Stage {
    pub fn new(front: FrontEnd) -> Stage {
        Stage {
            target_db: front.level_dbfs,
            floor: 10f64.powf(front.floor_dbfs / 20.0),
            rng: Rng::new(FLOOR_SEED),
            level_db: None,
            active_s: 0.0,
            // Until a level is known, only the floor passes (a gain of 1 would let the first
            // frame through at the recording's own level).
            gain_from: 0.0,
            gain_to: 0.0,
            at: 0,
            energy: 0.0,
        }
    }

    /// Appends the processed `input` to `out`.
    pub fn process(&mut self, input: &[f32], out: &mut Vec<f32>) {
        out.reserve(input.len());
        for &x in input {
            // A sample that is not a number is read as silence: one bad sample must not poison
            // the tracked level (and so every later sample).
            let x = if x.is_finite() { f64::from(x) } else { 0.0 };
            self.energy += x * x;
            let t = self.at as f64 / FRAME as f64;
            let gain = self.gain_from + (self.gain_to - self.gain_from) * t;
            out.push((x * gain + self.floor * self.rng.normal()) as f32);
            self.at += 1;
            if self.at == FRAME {
                self.end_frame();
            }
        }
    }

    /// A frame is complete: update the tracked level; the next frame moves the gain towards it.
    fn end_frame(&mut self) {
        let frame_db = 10.0 * (self.energy / FRAME as f64).max(1e-30).log10();
        self.at = 0;
        self.energy = 0.0;
        self.gain_from = self.gain_to;
        if frame_db < ACTIVE_DBFS {
            return;
        }
        let frame_s = 1.0 / 100.0;
        let level = match self.level_db {
            None => frame_db,
            Some(level) => {
                // Only level differences decide, so the tracker follows a gain exactly. While it
                // warms up, a jump is taken at once: a quiet onset frame then does not leave the
                // first syllables over-amplified.
                let warming = self.active_s < WARM_UP_S;
                let tau = if frame_db <= level - GATE_DB {
                    // A pause or background far below the level. Left alone, a loud transient
                    // (a cough, a knock) could lift the level so far that speech is never heard
                    // again; so the level creeps down towards where this frame would pass the
                    // gate, halfway inside it.
                    let target = frame_db + GATE_DB / 2.0;
                    let a = 1.0 - (-frame_s / GATED_S).exp();
                    self.level_db = Some(level + a * (target - level));
                    self.gain_to = gain_for(self.target_db, level + a * (target - level));
                    return;
                } else if warming && frame_db > level + JUMP_DB {
                    0.0
                } else if warming || frame_db > level + JUMP_DB {
                    FAST_S
                } else if frame_db > level {
                    ATTACK_S
                } else {
                    RELEASE_S
                };
                if tau == 0.0 {
                    frame_db
                } else {
                    level + (1.0 - (-frame_s / tau).exp()) * (frame_db - level)
                }
            }
        };
        self.active_s += frame_s;
        self.level_db = Some(level);
        self.gain_to = gain_for(self.target_db, level);
    }
}

/// The linear gain that brings `level_db` to `target_db`, within [`GAIN_DB`].
fn gain_for(target_db: f64, level_db: f64) -> f64 {
    10f64.powf((target_db - level_db).clamp(GAIN_DB.0, GAIN_DB.1) / 20.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Speech-like test signal: a 200 Hz tone with a syllable envelope, pauses of digital silence.
    fn syllables(seconds: f64, amplitude: f64) -> Vec<f32> {
        let n = (seconds * f64::from(SAMPLE_RATE)) as usize;
        (0..n)
            .map(|i| {
                let t = i as f64 / f64::from(SAMPLE_RATE);
                let envelope = (std::f64::consts::PI * 4.0 * t).sin().max(0.0);
                let on = (t % 2.0) < 1.4;
                if on {
                    (amplitude * envelope * (2.0 * std::f64::consts::PI * 200.0 * t).sin()) as f32
                } else {
                    0.0
                }
            })
            .collect()
    }

    /// The level of the loudest 10 ms frame of `x`, dBFS.
    fn loudest_frame_db(x: &[f32]) -> f64 {
        x.chunks(FRAME)
            .map(|f| {
                let energy = f.iter().map(|v| f64::from(*v).powi(2)).sum::<f64>();
                10.0 * (energy / FRAME as f64).log10()
            })
            .fold(f64::MIN, f64::max)
    }

    fn run(input: &[f32], chunk: usize) -> Vec<f32> {
        let mut stage = Stage::new(FrontEnd::DEFAULT);
        let mut out = Vec::new();
        for c in input.chunks(chunk) {
            stage.process(c, &mut out);
        }
        out
    }

    #[test]
    fn chunking_does_not_change_the_output() {
        let input = syllables(5.0, 0.3);
        let whole = run(&input, input.len());
        assert_eq!(whole, run(&input, 1));
        assert_eq!(whole, run(&input, 333));
    }

    #[test]
    fn a_quieter_recording_gives_the_same_samples() {
        let loud = syllables(6.0, 0.3);
        let quiet: Vec<f32> = loud.iter().map(|x| x * 10f32.powf(-30.0 / 20.0)).collect();
        let (a, b) = (run(&loud, 4096), run(&quiet, 4096));
        let worst = a
            .iter()
            .zip(&b)
            .map(|(x, y)| (x - y).abs())
            .fold(0.0f32, f32::max);
        assert!(worst < 1e-4, "largest difference {worst}");
    }

    #[test]
    fn speech_is_brought_to_the_target_level_and_silence_gets_the_floor() {
        for amplitude in [0.003, 0.05, 0.8] {
            let out = run(&syllables(8.0, amplitude), 1000);
            // The loudest 10 ms frames of the last syllables sit near the target.
            let peak_db = loudest_frame_db(&out[out.len() - 2 * SAMPLE_RATE as usize..]);
            assert!(
                (peak_db - FrontEnd::DEFAULT.level_dbfs).abs() < 3.0,
                "amplitude {amplitude}: loudest frame {peak_db:.1} dBFS"
            );
        }
        // Digital silence before any speech comes out as the floor.
        let out = run(&vec![0.0; SAMPLE_RATE as usize], 512);
        let rms_db = 10.0
            * (out.iter().map(|x| f64::from(*x).powi(2)).sum::<f64>() / out.len() as f64).log10();
        assert!(
            (rms_db - FrontEnd::DEFAULT.floor_dbfs).abs() < 0.5,
            "{rms_db}"
        );
    }

    #[test]
    fn levels_are_checked() {
        assert!(FrontEnd::DEFAULT.problem().is_none());
        let bad = FrontEnd {
            level_dbfs: -20.0,
            floor_dbfs: -10.0,
        };
        assert!(bad.problem().unwrap().contains("floor"));
        let bad = FrontEnd {
            level_dbfs: f64::NAN,
            floor_dbfs: -70.0,
        };
        assert!(bad.problem().unwrap().contains("level"));
    }

    /// A loud knock must not silence the speech after it for good: the level comes back.
    #[test]
    fn a_loud_transient_does_not_lock_the_level() {
        let mut input = syllables(3.0, 0.05);
        input.extend(std::iter::repeat_n(0.9f32, SAMPLE_RATE as usize / 5));
        input.extend(syllables(20.0, 0.05));
        let out = run(&input, 4096);
        let peak_db = loudest_frame_db(&out[out.len() - 2 * SAMPLE_RATE as usize..]);
        assert!(
            (peak_db - FrontEnd::DEFAULT.level_dbfs).abs() < 3.0,
            "loudest frame {peak_db:.1} dBFS after the knock"
        );
    }

    /// A sample that is not a number is silence, not the end of the stream.
    #[test]
    fn non_finite_samples_are_read_as_silence() {
        let mut input = syllables(4.0, 0.3);
        input[100] = f32::NAN;
        input[20_000] = f32::INFINITY;
        let out = run(&input, 1000);
        assert!(out.iter().all(|x| x.is_finite()));
        let clean = {
            let mut c = input.clone();
            c[100] = 0.0;
            c[20_000] = 0.0;
            run(&c, 1000)
        };
        assert_eq!(out, clean);
    }
}
