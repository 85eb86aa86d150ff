//! Audio in: decoding files to mono samples ([`decode`]) and resampling to 16 kHz ([`resample`]).

pub mod decode;
pub mod resample;

/// serd's one rule for samples that are not numbers (NaN, ±∞, which float WAV files and drivers
/// can hold): they are silence. Applied where audio enters serd, the file decoder and the
/// microphone, so that every command sees the same samples. Returns how many were replaced.
pub fn silence_non_finite(samples: &mut [f32]) -> usize {
    let mut replaced = 0;
    for x in samples.iter_mut().filter(|x| !x.is_finite()) {
        *x = 0.0;
        replaced += 1;
    }
    replaced
}

#[cfg(test)]
mod tests {
    #[test]
    fn non_finite_samples_become_silence() {
        let mut x = [0.5, f32::NAN, f32::INFINITY, -0.25, f32::NEG_INFINITY];
        assert_eq!(super::silence_non_finite(&mut x), 3);
        assert_eq!(x, [0.5, 0.0, 0.0, -0.25, 0.0]);
    }
}
