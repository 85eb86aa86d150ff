//! The resampler thread: device blocks → mono → 16 kHz, the rate openSMILE works at.
//!
//! It is the same resampler as `serd extract`/`train` use on files (train/serve parity).
//! Extreme samples (a broken driver: not numbers, or beyond ±1000) are treated by serd's one rule
//! ([`crate::audio::sanitize`]) and reported once: a bad chunk never stops the stream. A stream
//! whose format changes (a device reopened after a loss) gets a new resampler; stream time goes
//! on.

use std::time::Instant;

use crossbeam_channel::Sender;

use super::input::{Input, InputMsg};
use super::tap::Meter;
use crate::audio::resample::{ResampleError, Resampler};
use crate::features::SAMPLE_RATE;

/// 16 kHz mono audio on its way to the feature thread.
#[derive(Debug)]
pub enum AudioMsg {
    Chunk(Chunk),
    End {
        /// Seconds of device audio dropped because the chain was behind.
        dropped_s: f64,
    },
}

#[derive(Debug)]
pub struct Chunk {
    /// Samples at [`SAMPLE_RATE`] (may be empty while the resampler fills its first block).
    pub samples: Vec<f32>,
    /// Seconds of input received so far, this chunk's included.
    pub input_s: f64,
    /// When the newest input sample reached serd.
    pub arrived: Instant,
}

/// Runs until the end of the input; `Err` only for a resampler that cannot be built. The meter,
/// if any, hears the 16 kHz stream.
pub fn run(
    input: Input,
    out: Sender<AudioMsg>,
    mut meter: Option<Meter>,
) -> Result<(), ResampleError> {
    let mut resampler: Option<(u32, Resampler)> = None;
    let mut mono = Vec::new();
    let mut input_s = 0.0;
    // Files were treated by the decoder already (and named there); this is for the microphone.
    let mut sanitizer = crate::audio::Sanitizer::new("the input device".into());
    while let Some(msg) = input.recv() {
        let mut block = match msg {
            InputMsg::Block(block) => block,
            InputMsg::End => break,
        };
        let channels = usize::from(block.channels.max(1));
        // Before the downmix: a sum of huge samples would overflow.
        sanitizer.apply(&mut block.samples);
        mono.clear();
        downmix(&block.samples, channels, &mut mono);
        input_s += mono.len() as f64 / f64::from(block.rate);
        let mut samples = Vec::with_capacity(mono.len() * SAMPLE_RATE as usize / 8000 + 16);
        if resampler.as_ref().map(|(rate, _)| *rate) != Some(block.rate) {
            if let Some((_, mut old)) = resampler.take() {
                old.flush(&mut samples)?;
            }
            resampler = Some((block.rate, Resampler::new(block.rate, SAMPLE_RATE)?));
        }
        let (_, current) = resampler.as_mut().expect("set above");
        current.process(&mono, &mut samples)?;
        if let Some(meter) = &mut meter {
            meter.feed(&samples);
        }
        let arrived = block.arrived;
        input.recycle(block);
        let chunk = Chunk {
            samples,
            input_s,
            arrived,
        };
        if out.send(AudioMsg::Chunk(chunk)).is_err() {
            return Ok(());
        }
    }
    if let Some((_, mut r)) = resampler {
        let mut samples = Vec::new();
        r.flush(&mut samples)?;
        let chunk = Chunk {
            samples,
            input_s,
            arrived: Instant::now(),
        };
        let _ = out.send(AudioMsg::Chunk(chunk));
    }
    let _ = out.send(AudioMsg::End {
        dropped_s: input.dropped_s(),
    });
    Ok(())
}

pub use crate::audio::downmix;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::input;

    #[test]
    fn downmix_averages_channels() {
        let mut out = vec![9.0];
        downmix(&[1.0, 3.0, -1.0, 1.0], 2, &mut out);
        assert_eq!(out, [9.0, 2.0, 0.0]);
        downmix(&[0.5], 1, &mut out);
        assert_eq!(out, [9.0, 2.0, 0.0, 0.5]);
    }

    fn run_blocks(blocks: &[(Vec<f32>, u16, u32)]) -> (Vec<f32>, f64) {
        let (writer, input) = input::link();
        let (tx, rx) = crossbeam_channel::unbounded();
        let feeder = {
            let blocks = blocks.to_vec();
            std::thread::spawn(move || {
                for (samples, channels, rate) in blocks {
                    writer
                        .with_format(channels, rate)
                        .write_waiting(&samples, |s| s)
                        .unwrap();
                }
                writer.end();
            })
        };
        run(input, tx, None).unwrap();
        feeder.join().unwrap();
        let (mut audio, mut input_s) = (Vec::new(), 0.0);
        for msg in rx {
            match msg {
                AudioMsg::Chunk(c) => {
                    audio.extend(c.samples);
                    input_s = c.input_s;
                }
                AudioMsg::End { dropped_s } => assert_eq!(dropped_s, 0.0),
            }
        }
        (audio, input_s)
    }

    #[test]
    fn stereo_48k_becomes_16k_mono_of_the_right_length() {
        let tone: Vec<f32> = (0..48_000)
            .flat_map(|i| {
                let x = (i as f32 * 440.0 * std::f32::consts::TAU / 48_000.0).sin() * 0.5;
                [x, x]
            })
            .collect();
        let (audio, input_s) = run_blocks(&[(tone, 2, 48_000)]);
        assert_eq!(audio.len(), 16_000);
        assert!((input_s - 1.0).abs() < 1e-9);
        // Mid-stream samples follow the same 440 Hz sine at 16 kHz.
        let err = (4000..12_000)
            .map(|i| {
                let want = (i as f32 * 440.0 * std::f32::consts::TAU / 16_000.0).sin() * 0.5;
                (audio[i] - want).abs()
            })
            .fold(0.0f32, f32::max);
        assert!(err < 1e-3, "max deviation {err}");
    }

    #[test]
    fn non_finite_samples_become_silence_and_a_format_change_is_followed() {
        let mut first = vec![0.25f32; 1600];
        first[10] = f32::NAN;
        first[11] = f32::INFINITY;
        first[13] = 2e38;
        let second = vec![0.25f32; 4800];
        let (audio, input_s) = run_blocks(&[(first, 1, 16_000), (second, 1, 48_000)]);
        assert_eq!(audio.len(), 1600 + 1600);
        assert_eq!((audio[10], audio[11], audio[12]), (0.0, 0.0, 0.25));
        assert_eq!(audio[13], crate::audio::SAMPLE_LIMIT);
        assert!(audio.iter().all(|x| x.is_finite()));
        assert!((input_s - 0.2).abs() < 1e-9);
    }
}
