//! `serd listen` and `serd devices`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use serd::backend::Backend;
use serd::pipeline::emit::Format;
use serd::pipeline::{self, mic, AudioInput, Options, Tap};
use serd::serve::{self, Server};

/// Listen to the microphone (or replay a file) and print the emotion heard as it is spoken.
///
/// Audio is captured, mixed to mono, resampled to 16 kHz, cut into the model's windows (window
/// and hop come from the model directory), turned into openSMILE functionals and classified.
/// Events on stdout, one JSON object per line, flushed per line:
///
///   {"type":"start","time":T,"schema":1,"source":"mic:NAME","rate_in":48000,"rate":16000,
///    "features":"compare","backend":"cpu","model":"DIR","window_s":2.0,"hop_s":1.0,
///    "version":"X.Y.Z"}
///   {"type":"emotion","time":T,"t_start":S,"t_end":E,"label":"anger","confidence":0.71,
///    "probs":{"anger":..,"surprise":..,"happiness":..,"sadness":..,"neutral":..},
///    "voiced":0.83,"latency_ms":143.2}
///   {"type":"silence","time":T,"t_start":S,"t_end":E,"voiced":0.05}
///   {"type":"utterance","time":T,"t_start":S,"t_end":E,"windows":W,"label":"anger",
///    "confidence":0.64,"probs":{..}}
///   {"type":"end","time":T,"windows":N,"emitted":M,"silences":Q,"utterances":U,"dropped":D,
///    "audio_s":A,"audio_dropped_s":X}
///
/// time is the wall clock (RFC 3339, UTC, milliseconds) when the event was written; t_start and
/// t_end are seconds of stream audio. source is mic:NAME, file:PATH or stdin. Windows with too
/// little voiced speech are reported as silence; a file shorter than one window is one window.
/// An utterance is a run of emotion windows up to a silence window or the end of the stream; its
/// event follows the silence that ended it, with the verdict `serd predict` would give a file of
/// those windows (README, "Utterances").
/// docs/events.schema.json is the contract (schema 1). --format text prints one readable line per
/// event instead.
///
/// Ctrl-C (SIGINT), SIGTERM or SIGHUP ends the stream: the final "end" event is written
/// and serd exits with 0 (a second Ctrl-C exits at once, with 130). A lost device is reopened for
/// up to 30 s. Exit status: 0 done, 1 error (no device, device lost, bad model or file), 2 usage.
///
/// With --serve, the same events are also offered over HTTP while the stream runs: a live page at
/// /, Server-Sent Events at /events (plus the input level as "level" events), a WebSocket at /ws
/// and /health (README: "Three ways out"). stdout is unchanged, apart from a "serve" field in
/// "start" naming the address. A slow client loses events (counted in /health); it never slows
/// the chain. When a file given to --input ends, stdout gets its "end" event and is closed, and
/// serd goes on serving the page (the replay's last 300 events) and /health until Ctrl-C, SIGTERM
/// or SIGHUP; it then exits with 0 (a stream on stdin, --input -, ends serd when it ends). There
/// is no authentication: serd answers requests addressed to an IP address or localhost only, and
/// binding to another address than loopback is for networks you trust.
#[derive(Args)]
#[command(verbatim_doc_comment)]
pub struct ListenArgs {
    /// Input device: an index from `serd devices`, or part of a device's name or id
    /// (default: the system's default input).
    #[arg(long, value_name = "NAME", conflicts_with = "input")]
    device: Option<String>,
    /// Replay an audio file through the same chain instead of capturing; `-` reads a stream
    /// from stdin as it arrives (`arecord -f S16_LE -r 16000 -t wav | serd listen --input -`).
    #[arg(long, value_name = "FILE")]
    input: Option<PathBuf>,
    #[command(flatten)]
    stdin: super::StdinArgs,
    /// With --input: deliver the file at the speed it was recorded (otherwise as fast as the
    /// machine goes, dropping nothing).
    #[arg(long, requires = "input")]
    realtime: bool,
    /// Model directory (default: the bundled models/default).
    #[arg(long, value_name = "DIR")]
    model: Option<PathBuf>,
    /// Where the network runs: a GPU through wgpu when there is one (auto), wgpu, or the CPU.
    #[arg(long, value_parser = super::choice::<Backend>(), default_value = "auto")]
    backend: Backend,
    /// What stdout carries: JSON Lines (the format programs read), or one readable line per event
    /// for a person at a terminal. --serve always serves JSON.
    #[arg(long, value_parser = super::choice::<Format>(), default_value = "json")]
    format: Format,
    /// Also serve the events over HTTP at ADDR: HOST:PORT, :PORT or PORT (loopback); port 0
    /// picks a free port. Without ADDR: 127.0.0.1:8377.
    #[arg(long, value_name = "ADDR", num_args = 0..=1, default_missing_value = serve::DEFAULT_ADDRESS,
          value_parser = |s: &str| serve::parse_address(s).map_err(|e| e.to_string()))]
    serve: Option<SocketAddr>,
}

pub fn run(args: ListenArgs, strict: bool) -> anyhow::Result<ExitCode> {
    // First of all: a stop asked for while the model is unpacked or the source opened is heard.
    let stop = pipeline::stop_on_signals()?;
    let decode = args.stdin.decode_options(args.input.as_slice(), strict)?;
    // A file replayed with --serve: the page stays up after the file ends, until a stop.
    let linger = args.serve.is_some() && args.input.as_ref().is_some_and(|p| p.as_os_str() != "-");
    let source = match args.input {
        Some(path) => AudioInput::File {
            path,
            realtime: args.realtime,
            decode,
        },
        None => AudioInput::Mic {
            device: args.device,
        },
    };
    let model = super::model_dir(args.model)?;
    let server = match &args.serve {
        Some(address) => Some(Server::start(*address)?),
        None => None,
    };
    if let (Some(server), true) = (&server, log::log_enabled!(log::Level::Warn)) {
        eprintln!(
            "serd: live page at http://{}/ (events: /events, /ws; status: /health)",
            server.local_addr()
        );
    }
    let options = Options {
        source,
        model,
        backend: args.backend,
        format: args.format,
        tap: server.as_ref().map(|s| s.hub() as std::sync::Arc<dyn Tap>),
    };
    let outcome = pipeline::run(&options, std::io::stdout(), &stop);
    if let (Some(server), Ok(o), true) = (&server, &outcome, linger) {
        // The file ended: the page and /health stay until a stop is asked for.
        if o.end.is_some() && !o.stopped && !o.closed {
            close_stdout();
            if log::log_enabled!(log::Level::Warn) {
                eprintln!(
                    "serd: the input ended; still serving http://{}/ until Ctrl-C (SIGINT) or SIGTERM",
                    server.local_addr()
                );
            }
            let _ = stop.recv();
        }
    }
    if let Some(server) = server {
        server.stop();
    }
    let outcome = outcome.map_err(|e| match e {
        // The library says what the model is; the command line says which flag makes another.
        pipeline::Error::NoWindow(_) => anyhow::anyhow!("{e} (serd train --window SECONDS)"),
        e => e.into(),
    })?;
    if let Some(end) = outcome.end {
        log::info!(
            "{} windows, {} emotion and {} silence events, {} dropped, {:.1} s of audio ({:.1} s dropped)",
            end.windows,
            end.emitted,
            end.silences,
            end.dropped,
            end.audio_s,
            end.audio_dropped_s
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// Ends stdout for its reader, which sees the end of the stream after the `end` event, while serd
/// goes on serving: stdout is pointed at /dev/null.
fn close_stdout() {
    use std::io::Write;
    let _ = std::io::stdout().flush();
    match std::fs::OpenOptions::new().write(true).open("/dev/null") {
        Ok(null) => {
            if let Err(e) = rustix::stdio::dup2_stdout(&null) {
                log::debug!("closing stdout: {e}");
            }
        }
        Err(e) => log::debug!("closing stdout: /dev/null: {e}"),
    }
}

/// List audio input devices: index, name, id and supported configurations; `*` marks the
/// default. `serd listen --device` takes the index or part of the name or id. Devices that offer
/// no input configuration (ALSA plugins that cannot capture) are left out unless --all.
#[derive(Args)]
pub struct DevicesArgs {
    /// Also list the devices that offer no input configuration.
    #[arg(long)]
    all: bool,
    /// "text" for a person, or "json": one JSON object per device and line (type "device":
    /// index, name, id, default, configs with min/max rate and channels and sample formats).
    #[arg(long, value_enum, default_value_t = DevicesFormat::Text)]
    format: DevicesFormat,
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum DevicesFormat {
    Text,
    Json,
}

pub fn devices(args: DevicesArgs) -> anyhow::Result<ExitCode> {
    use std::io::Write;
    let (devices, unusable): (Vec<_>, Vec<_>) = mic::devices()?
        .into_iter()
        .partition(|d| args.all || !d.configs.is_empty());
    let mut out = std::io::stdout().lock();
    if devices.is_empty() {
        log::warn!("no audio input device found");
    }
    if !unusable.is_empty() {
        log::info!(
            "{} devices that offer no input configuration are not listed (--all lists them)",
            unusable.len()
        );
    }
    for d in devices {
        if args.format == DevicesFormat::Json {
            #[derive(serde::Serialize)]
            struct Line<'a> {
                r#type: &'static str,
                #[serde(flatten)]
                device: &'a mic::DeviceInfo,
            }
            let line = Line {
                r#type: "device",
                device: &d,
            };
            writeln!(out, "{}", serde_json::to_string(&line)?)?;
            continue;
        }
        let mark = if d.default { '*' } else { ' ' };
        writeln!(out, "{mark} {:>2}  {}  ({})", d.index, d.name, d.id)?;
        if d.configs.is_empty() {
            writeln!(
                out,
                "        no input configuration offered: cannot capture from it"
            )?;
        }
        for c in d.configs {
            writeln!(out, "        {c}")?;
        }
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}
