//! Decoding audio files with symphonia: WAV (PCM 8/16/24/32-bit, float 32/64, extensible),
//! AIFF (also when misnamed .wav: formats are recognised by content), FLAC, MP3, Ogg Vorbis.
//! Channels are averaged to mono.

use std::fs::File;
use std::path::{Path, PathBuf};

use crate::contain::contain;
use symphonia::core::audio::SampleBuffer;
use symphonia::core::codecs::{Decoder, DecoderOptions, CODEC_TYPE_NULL};
use symphonia::core::errors::Error as SymphoniaError;
use symphonia::core::formats::{FormatOptions, FormatReader};
use symphonia::core::io::MediaSourceStream;
use symphonia::core::meta::MetadataOptions;
use symphonia::core::probe::Hint;

/// Sample rates accepted from a file header; anything else is a corrupt or absurd header.
const RATES: std::ops::RangeInclusive<u32> = 1_000..=768_000;

#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("is a directory")]
    Directory,
    #[error("empty file")]
    EmptyFile,
    #[error("not a recognised audio format (WAV, AIFF, FLAC, MP3, Ogg Vorbis)")]
    Unrecognised,
    #[error("no audio track")]
    NoTrack,
    #[error("unsupported audio encoding: {0}")]
    Unsupported(String),
    #[error("implausible header: {0}")]
    Header(String),
    #[error("corrupt audio data: {0}")]
    Corrupt(String),
}

/// An open audio file, read packet by packet as mono samples.
pub struct AudioFile {
    format: Box<dyn FormatReader>,
    decoder: Box<dyn Decoder>,
    track: u32,
    rate: u32,
    channels: usize,
    buffer: Option<SampleBuffer<f32>>,
    /// Whether non-finite samples were met (and read as silence, [`super::silence_non_finite`]).
    non_finite: bool,
    /// For the warning about them.
    path: PathBuf,
}

impl AudioFile {
    pub fn open(path: &Path) -> Result<AudioFile, DecodeError> {
        let meta = std::fs::metadata(path)?;
        if meta.is_dir() {
            return Err(DecodeError::Directory);
        }
        if meta.len() == 0 {
            return Err(DecodeError::EmptyFile);
        }
        let stream = MediaSourceStream::new(Box::new(File::open(path)?), Default::default());
        let mut hint = Hint::new();
        if let Some(ext) = path.extension().and_then(|e| e.to_str()) {
            hint.with_extension(ext);
        }
        let probed = contain(|| {
            symphonia::default::get_probe().format(
                &hint,
                stream,
                &FormatOptions {
                    enable_gapless: true,
                    ..FormatOptions::default()
                },
                &MetadataOptions::default(),
            )
        })
        .map_err(|panic| DecodeError::Header(format!("the decoder failed on it ({panic})")))?
        .map_err(|e| match e {
            SymphoniaError::Unsupported(_) => DecodeError::Unrecognised,
            SymphoniaError::IoError(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                DecodeError::Header("file ends inside the header".into())
            }
            other => DecodeError::Header(other.to_string()),
        })?;
        let format = probed.format;
        let track = format
            .tracks()
            .iter()
            .find(|t| t.codec_params.codec != CODEC_TYPE_NULL)
            .ok_or(DecodeError::NoTrack)?;
        let params = &track.codec_params;
        let rate = params
            .sample_rate
            .ok_or_else(|| DecodeError::Header("no sample rate".into()))?;
        if !RATES.contains(&rate) {
            return Err(DecodeError::Header(format!("sample rate {rate} Hz")));
        }
        let channels = params.channels.map(|c| c.count()).unwrap_or(1);
        if channels == 0 {
            return Err(DecodeError::Header("zero channels".into()));
        }
        let decoder = symphonia::default::get_codecs()
            .make(params, &DecoderOptions::default())
            .map_err(|e| DecodeError::Unsupported(e.to_string()))?;
        let track = track.id;
        Ok(AudioFile {
            format,
            decoder,
            track,
            rate,
            channels,
            buffer: None,
            non_finite: false,
            path: path.to_path_buf(),
        })
    }

    /// Sample rate of the file, Hz.
    pub fn rate(&self) -> u32 {
        self.rate
    }

    /// Channels in the file (they are averaged to mono).
    pub fn channels(&self) -> usize {
        self.channels
    }

    /// Appends the next packet's samples, as mono, to `out`, non-finite samples as silence.
    /// `Ok(false)` at the end of the file.
    pub fn read(&mut self, out: &mut Vec<f32>) -> Result<bool, DecodeError> {
        let start = out.len();
        let more = self.read_packet(out)?;
        let replaced = super::silence_non_finite(&mut out[start..]);
        if replaced > 0 && !self.non_finite {
            log::warn!(
                "{}: holds samples that are not numbers (NaN or infinite); they are read as \
                 silence",
                self.path.display()
            );
        }
        self.non_finite |= replaced > 0;
        Ok(more)
    }

    fn read_packet(&mut self, out: &mut Vec<f32>) -> Result<bool, DecodeError> {
        loop {
            let packet =
                match contain(|| self.format.next_packet()).map_err(DecodeError::Corrupt)? {
                    Ok(p) => p,
                    // symphonia reports the end of the stream as an unexpected EOF.
                    Err(SymphoniaError::IoError(e))
                        if e.kind() == std::io::ErrorKind::UnexpectedEof =>
                    {
                        return Ok(false)
                    }
                    Err(SymphoniaError::ResetRequired) => return Ok(false),
                    Err(e) => return Err(DecodeError::Corrupt(e.to_string())),
                };
            if packet.track_id() != self.track {
                continue;
            }
            let decoded =
                match contain(|| self.decoder.decode(&packet)).map_err(DecodeError::Corrupt)? {
                    Ok(d) => d,
                    // A damaged packet in a compressed stream: skip it, as players do.
                    Err(SymphoniaError::DecodeError(e)) => {
                        log::debug!("skipping an undecodable packet: {e}");
                        continue;
                    }
                    Err(e) => return Err(DecodeError::Corrupt(e.to_string())),
                };
            let spec = *decoded.spec();
            let channels = spec.channels.count().max(1);
            let frames = decoded.frames();
            let needed = decoded.capacity() as u64;
            let buffer = match &mut self.buffer {
                Some(b) if b.capacity() as u64 >= needed * channels as u64 => b,
                slot => slot.insert(SampleBuffer::new(needed, spec)),
            };
            buffer.copy_interleaved_ref(decoded);
            let samples = &buffer.samples()[..frames * channels];
            if channels == 1 {
                out.extend_from_slice(samples);
            } else {
                let scale = 1.0 / channels as f32;
                out.extend(
                    samples
                        .chunks_exact(channels)
                        .map(|f| f.iter().sum::<f32>() * scale),
                );
            }
            return Ok(true);
        }
    }
}
