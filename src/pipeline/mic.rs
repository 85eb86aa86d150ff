//! Microphone capture with cpal: device listing and selection, and the stream whose callback
//! feeds the input link.
//!
//! The callback converts the device's samples (any format cpal knows, any channel count, any
//! rate) to f32 into a pooled buffer and passes it on without blocking (see [`super::input`]).
//! When the stream fails (device unplugged, server gone), the mic thread closes it and reopens
//! the device asked for (the default input as it is then, when none was named), waiting 0.25 s,
//! 0.5 s, 1 s, ... (at most 4 s) between tries; after [`RETRY_FOR`] without success it ends the
//! stream and reports the device lost. Overruns (the driver lost audio and recovered by itself),
//! a followed change of default device and a refused real-time priority are not failures: they
//! are counted or logged and the stream goes on.

use std::time::{Duration, Instant};

use cpal::traits::{DeviceTrait, HostTrait, StreamTrait};
use cpal::{ErrorKind, FromSample, SampleFormat, SizedSample};
use crossbeam_channel::{select, Receiver, Sender};

use super::device::{Control, DeviceHandle};
use super::input::Writer;
use super::status::{SourceError, Stage, Status};
use crate::quiet::quietly;

/// How long a lost device is retried before serd gives up.
pub const RETRY_FOR: Duration = Duration::from_secs(30);

#[derive(Debug, thiserror::Error)]
pub enum MicError {
    #[error(
        "no usable audio input device{0}; to replay a recording instead: serd listen --input FILE"
    )]
    NoDevice(String),
    #[error("no input device matches {0:?}; `serd devices` lists them")]
    NoMatch(String),
    #[error("cannot list audio devices: {0}")]
    Host(String),
    #[error("cannot open input device {device}: {reason}")]
    Open { device: String, reason: String },
}

/// An input device as `serd devices` shows it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct DeviceInfo {
    pub index: usize,
    pub name: String,
    /// cpal's id, such as `alsa:default`.
    pub id: String,
    pub default: bool,
    /// Supported configurations, one per rate range (none: it cannot capture).
    pub configs: Vec<ConfigRange>,
}

/// The configurations a device offers over one rate range.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ConfigRange {
    pub min_rate: u32,
    pub max_rate: u32,
    pub min_channels: u16,
    pub max_channels: u16,
    /// Sample formats, as cpal names them (`i16`, `f32`, ...).
    pub formats: Vec<String>,
}

impl std::fmt::Display for ConfigRange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let range = |lo: u32, hi: u32| {
            if lo == hi {
                lo.to_string()
            } else {
                format!("{lo}-{hi}")
            }
        };
        write!(
            f,
            "{} Hz, {} channels, {}",
            range(self.min_rate, self.max_rate),
            range(self.min_channels.into(), self.max_channels.into()),
            self.formats.join(" ")
        )
    }
}

fn name_of(device: &cpal::Device) -> String {
    device
        .description()
        .map(|d| d.name().to_string())
        .unwrap_or_else(|_| device.to_string())
}

fn id_of(device: &cpal::Device) -> String {
    device.id().map(|id| id.to_string()).unwrap_or_default()
}

/// The input devices of the default host, in index order.
pub fn devices() -> Result<Vec<DeviceInfo>, MicError> {
    quietly(list)
}

fn list() -> Result<Vec<DeviceInfo>, MicError> {
    let host = cpal::default_host();
    let default_id = host.default_input_device().map(|d| id_of(&d));
    let devices = host
        .input_devices()
        .map_err(|e| MicError::Host(e.to_string()))?;
    Ok(devices
        .enumerate()
        .map(|(index, device)| {
            let id = id_of(&device);
            let configs = device
                .supported_input_configs()
                .map(summarise)
                .unwrap_or_default();
            DeviceInfo {
                index,
                name: name_of(&device),
                default: default_id.as_deref() == Some(id.as_str()),
                id,
                configs,
            }
        })
        .collect())
}

/// Supported configurations merged by rate range: channel range and sample formats.
fn summarise(configs: impl Iterator<Item = cpal::SupportedStreamConfigRange>) -> Vec<ConfigRange> {
    let mut ranges: Vec<ConfigRange> = Vec::new();
    for c in configs {
        let (min_rate, max_rate) = (c.min_sample_rate(), c.max_sample_rate());
        let format = c.sample_format().to_string();
        match ranges
            .iter_mut()
            .find(|r| (r.min_rate, r.max_rate) == (min_rate, max_rate))
        {
            Some(r) => {
                r.min_channels = r.min_channels.min(c.channels());
                r.max_channels = r.max_channels.max(c.channels());
                if !r.formats.contains(&format) {
                    r.formats.push(format);
                }
            }
            None => ranges.push(ConfigRange {
                min_rate,
                max_rate,
                min_channels: c.channels(),
                max_channels: c.channels(),
                formats: vec![format],
            }),
        }
    }
    ranges
}

/// The device `selector` names: an index in [`devices`], or text contained in a name or id;
/// the default input device when `None`.
fn find(selector: Option<&str>) -> Result<cpal::Device, MicError> {
    let host = cpal::default_host();
    let Some(selector) = selector else {
        return host
            .default_input_device()
            .ok_or_else(|| MicError::NoDevice(format!(" (audio host: {})", host.id().name())));
    };
    let mut devices: Vec<cpal::Device> = host
        .input_devices()
        .map_err(|e| MicError::Host(e.to_string()))?
        .collect();
    if let Ok(index) = selector.parse::<usize>() {
        if index < devices.len() {
            return Ok(devices.swap_remove(index));
        }
    }
    let wanted = selector.to_lowercase();
    devices
        .into_iter()
        .find(|d| {
            name_of(d).to_lowercase().contains(&wanted) || id_of(d).to_lowercase().contains(&wanted)
        })
        .ok_or_else(|| MicError::NoMatch(selector.to_string()))
}

/// An open, not yet playing, input stream.
struct Opened {
    stream: cpal::Stream,
    name: String,
    rate: u32,
}

fn open_stream(
    selector: Option<&str>,
    writer: &Writer,
    errors: &Sender<cpal::Error>,
) -> Result<Opened, MicError> {
    quietly(|| try_open_stream(selector, writer, errors)).map_err(|e| match (selector, e) {
        // The default device exists in name only (no sound card, no sound server).
        (None, MicError::Open { device, reason }) => {
            MicError::NoDevice(format!(" ({device}: {reason})"))
        }
        (_, e) => e,
    })
}

fn try_open_stream(
    selector: Option<&str>,
    writer: &Writer,
    errors: &Sender<cpal::Error>,
) -> Result<Opened, MicError> {
    let device = find(selector)?;
    let name = name_of(&device);
    let open_error = |reason: String| MicError::Open {
        device: name.clone(),
        reason,
    };
    let supported = device
        .default_input_config()
        .map_err(|e| open_error(e.to_string()))?;
    let config = supported.config();
    let writer = writer.with_format(config.channels, config.sample_rate);
    let errors = errors.clone();
    // Passed on as it is (formatting it would allocate on the audio thread).
    let on_error = move |e: cpal::Error| {
        let _ = errors.try_send(e);
    };
    let stream = match supported.sample_format() {
        SampleFormat::I8 => build::<i8>(&device, &config, writer, on_error),
        SampleFormat::I16 => build::<i16>(&device, &config, writer, on_error),
        SampleFormat::I24 => build::<cpal::I24>(&device, &config, writer, on_error),
        SampleFormat::I32 => build::<i32>(&device, &config, writer, on_error),
        SampleFormat::I64 => build::<i64>(&device, &config, writer, on_error),
        SampleFormat::U8 => build::<u8>(&device, &config, writer, on_error),
        SampleFormat::U16 => build::<u16>(&device, &config, writer, on_error),
        SampleFormat::U24 => build::<cpal::U24>(&device, &config, writer, on_error),
        SampleFormat::U32 => build::<u32>(&device, &config, writer, on_error),
        SampleFormat::U64 => build::<u64>(&device, &config, writer, on_error),
        SampleFormat::F32 => build::<f32>(&device, &config, writer, on_error),
        SampleFormat::F64 => build::<f64>(&device, &config, writer, on_error),
        other => Err(cpal::Error::with_message(
            cpal::ErrorKind::UnsupportedConfig,
            format!("sample format {other}"),
        )),
    }
    .map_err(|e| open_error(e.to_string()))?;
    Ok(Opened {
        stream,
        name,
        rate: config.sample_rate,
    })
}

fn build<T>(
    device: &cpal::Device,
    config: &cpal::StreamConfig,
    writer: Writer,
    on_error: impl FnMut(cpal::Error) + Send + 'static,
) -> Result<cpal::Stream, cpal::Error>
where
    T: SizedSample,
    f32: FromSample<T>,
{
    device.build_input_stream::<T, _, _>(
        *config,
        // The real-time callback: copies into a pooled buffer or counts a drop. A closed link
        // (serd shutting down) needs nothing more from it.
        move |data: &[T], _| {
            let _ = writer.write(data, |s: T| f32::from_sample_(s));
        },
        on_error,
        None,
    )
}

/// An input device: the default one (`None`), or the first whose name or id contains the text,
/// or the one with that index in `serd devices`.
pub struct Microphone {
    pub selector: Option<String>,
}

impl Microphone {
    /// Opens the device (so that its rate is known and errors come at once) and starts the mic
    /// thread, which plays the stream on [`Control::Start`].
    pub fn open(self, writer: Writer, status: Sender<Status>) -> Result<DeviceHandle, MicError> {
        open(self.selector, writer, status)
    }
}

fn open(
    selector: Option<String>,
    writer: Writer,
    status: Sender<Status>,
) -> Result<DeviceHandle, MicError> {
    let (control_tx, control_rx) = crossbeam_channel::bounded(2);
    let (opened_tx, opened_rx) = crossbeam_channel::bounded(1);
    // cpal streams are not `Send` on every platform: the stream lives and dies on this thread.
    let thread = std::thread::Builder::new()
        .name("serd-mic".into())
        .spawn(move || {
            let (errors_tx, errors_rx) = crossbeam_channel::bounded(8);
            let opened = match open_stream(selector.as_deref(), &writer, &errors_tx) {
                Ok(opened) => opened,
                Err(e) => {
                    let _ = opened_tx.send(Err(e));
                    return;
                }
            };
            let _ = opened_tx.send(Ok((opened.name.clone(), opened.rate)));
            let result = capture(
                opened,
                selector.as_deref(),
                &writer,
                &errors_tx,
                &errors_rx,
                &control_rx,
            );
            // The status first: a failure must reach the supervisor before the chain, drained
            // by the end of input, can report that it ended.
            let status_msg = match result {
                Ok(()) => Status::Done(Stage::Source),
                Err(e) => Status::Failed(Stage::Source, e.into()),
            };
            let _ = status.send(status_msg);
            writer.end();
        })
        .expect("spawning a thread");
    match opened_rx.recv() {
        Ok(Ok((name, rate))) => Ok(DeviceHandle::new(
            format!("mic:{name}"),
            rate,
            true,
            control_tx,
            thread,
        )),
        Ok(Err(e)) => {
            let _ = thread.join();
            Err(e)
        }
        Err(_) => Err(MicError::Host("the capture thread stopped".into())),
    }
}

/// Plays the stream until stopped; reopens it after stream errors.
fn capture(
    mut opened: Opened,
    selector: Option<&str>,
    writer: &Writer,
    errors_tx: &Sender<cpal::Error>,
    errors: &Receiver<cpal::Error>,
    control: &Receiver<Control>,
) -> Result<(), SourceError> {
    match control.recv() {
        Ok(Control::Start) => {}
        Ok(Control::Stop) | Err(_) => return Ok(()),
    }
    opened.stream.play().map_err(|e| SourceError::Start {
        device: opened.name.clone(),
        reason: e.to_string(),
    })?;
    let mut overruns = 0u64;
    let mut device = opened.name.clone();
    loop {
        select! {
            recv(control) -> msg => match msg {
                Ok(Control::Start) => {}
                Ok(Control::Stop) | Err(_) => break,
            },
            recv(errors) -> msg => {
                let Ok(error) = msg else { break };
                match response(error.kind()) {
                    Response::Count => overruns += 1,
                    Response::Note => log::info!("input device {device}: {error}"),
                    Response::Reopen => {
                        let name = opened.name.clone();
                        log::warn!("input device {name}: {error}; reopening it");
                        drop(opened);
                        opened = match reopen(selector, writer, errors_tx, errors, control) {
                            Reopen::Opened(o) => o,
                            Reopen::Stopped => break,
                            Reopen::GaveUp(last) => {
                                return Err(SourceError::Lost {
                                    device: name,
                                    error: error.to_string(),
                                    within_s: RETRY_FOR.as_secs(),
                                    last,
                                })
                            }
                        };
                        log::warn!("input device {} reopened at {} Hz", opened.name, opened.rate);
                        device = opened.name.clone();
                    }
                }
            },
        }
    }
    if overruns > 0 {
        log::warn!(
            "input device {device}: {overruns} overruns (audio the driver lost before serd could \
             read it; it recovered each time)"
        );
    }
    Ok(())
}

/// What a stream error calls for.
#[derive(Debug, PartialEq, Eq)]
enum Response {
    /// An overrun: the driver lost audio and restarted the stream itself.
    Count,
    /// The stream goes on (it followed a new default device, or runs without real-time priority).
    Note,
    /// The stream is dead: close it and open the device again.
    Reopen,
}

fn response(kind: ErrorKind) -> Response {
    match kind {
        ErrorKind::Xrun => Response::Count,
        ErrorKind::DeviceChanged | ErrorKind::RealtimeDenied => Response::Note,
        _ => Response::Reopen,
    }
}

enum Reopen {
    Opened(Opened),
    Stopped,
    GaveUp(String),
}

fn reopen(
    selector: Option<&str>,
    writer: &Writer,
    errors_tx: &Sender<cpal::Error>,
    errors: &Receiver<cpal::Error>,
    control: &Receiver<Control>,
) -> Reopen {
    let deadline = Instant::now() + RETRY_FOR;
    let mut wait = Duration::from_millis(250);
    let mut last = String::new();
    while Instant::now() < deadline {
        // Wait, but stop at once when asked to.
        if let Ok(Control::Stop) | Err(crossbeam_channel::RecvTimeoutError::Disconnected) =
            control.recv_timeout(wait.min(deadline.saturating_duration_since(Instant::now())))
        {
            return Reopen::Stopped;
        }
        wait = (wait * 2).min(Duration::from_secs(4));
        // Errors of the stream just closed are stale.
        while errors.try_recv().is_ok() {}
        match open_stream(selector, writer, errors_tx).and_then(|o| {
            o.stream.play().map_err(|e| MicError::Open {
                device: o.name.clone(),
                reason: e.to_string(),
            })?;
            Ok(o)
        }) {
            Ok(o) => return Reopen::Opened(o),
            Err(e) => last = e.to_string(),
        }
    }
    Reopen::GaveUp(last)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_dead_stream_is_reopened() {
        // ALSA reports overruns as stream errors and restarts the stream itself: reopening the
        // device for each would lose a quarter of a second of audio every time.
        assert_eq!(response(ErrorKind::Xrun), Response::Count);
        assert_eq!(response(ErrorKind::DeviceChanged), Response::Note);
        assert_eq!(response(ErrorKind::RealtimeDenied), Response::Note);
        for dead in [
            ErrorKind::DeviceNotAvailable,
            ErrorKind::HostUnavailable,
            ErrorKind::StreamInvalidated,
            ErrorKind::BackendError,
        ] {
            assert_eq!(response(dead), Response::Reopen, "{dead:?}");
        }
    }
}
