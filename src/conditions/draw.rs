//! Random recording conditions for augmentation.

use super::{Companding, Condition, Noise, Step};
use crate::rng::Rng;

/// Draws a random condition for augmentation. Each part is independent:
/// - gain, always: uniform -35..+5 dB (quiet laptops to hot recordings);
/// - noise, p = 0.6: babble with p = 0.4 (only if `babble_available`), else white, pink or brown
///   equally; SNR uniform 0..30 dB;
/// - reverb, p = 0.4: RT60 uniform 0.2..1.0 s, DRR uniform -5..10 dB;
/// - telephone, p = 0.3: µ-law or A-law equally;
/// - floor, p = 0.25: uniform -95..-65 dBFS (after the gain, so a quiet recording can sit close to it);
/// - rate, p = 0.3: 44100 or 48000 Hz;
/// - speed, p = `voice` (0 draws nothing): a factor uniform 0.9..1.1, tempo, pitch and formants
///   alike (another voice, within what separates similar speakers).
///
/// Steps come in the order speed, reverb, noise, gain, floor, telephone, rate: the voice first,
/// then the room, the microphone's noise, the level, and the channel. The speed is drawn last, so
/// that with `voice` 0 every other step is what it was before speed existed. Values are rounded
/// (0.1 dB, 0.01 s, speed 0.01) so that logged conditions stay readable; rounding keeps them
/// within the ranges.
pub fn draw(rng: &mut Rng, babble_available: bool, voice: f64) -> Condition {
    let tenth = |x: f64| (x * 10.0).round() / 10.0 + 0.0; // + 0.0 turns -0 into 0
    let mut steps = Vec::new();
    if rng.uniform() < 0.4 {
        let rt60 = (rng.range(0.2, 1.0) * 100.0).round() / 100.0;
        steps.push(Step::Reverb {
            rt60,
            drr_db: tenth(rng.range(-5.0, 10.0)),
        });
    }
    if rng.uniform() < 0.6 {
        // Babble, the hardest and commonest noise, in 40 % of noisy copies; the stationary
        // kinds share the rest. Noise::ALL ends with Babble.
        let kind = if babble_available && rng.uniform() < 0.4 {
            Noise::Babble
        } else {
            Noise::ALL[rng.below(3)]
        };
        steps.push(Step::Noise {
            kind,
            snr_db: tenth(rng.range(0.0, 30.0)),
        });
    }
    steps.push(Step::Gain {
        db: tenth(rng.range(-35.0, 5.0)),
    });
    if rng.uniform() < 0.25 {
        steps.push(Step::Floor {
            dbfs: tenth(rng.range(-95.0, -65.0)),
        });
    }
    if rng.uniform() < 0.3 {
        let companding = if rng.uniform() < 0.5 {
            Companding::MuLaw
        } else {
            Companding::ALaw
        };
        steps.push(Step::Telephone { companding });
    }
    if rng.uniform() < 0.3 {
        let hz = if rng.uniform() < 0.5 { 44100 } else { 48000 };
        steps.push(Step::Rate { hz });
    }
    if voice > 0.0 && rng.uniform() < voice {
        let factor = (rng.range(0.9, 1.1) * 100.0).round() / 100.0;
        if factor != 1.0 {
            steps.insert(0, Step::Speed { factor });
        }
    }
    Condition { steps }
}
