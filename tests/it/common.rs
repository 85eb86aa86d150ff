//! Helpers shared by the integration tests.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// Runs the `serd` binary built for this test run.
pub fn serd(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_serd"))
        .args(args)
        .output()
        .expect("run serd")
}

/// Runs `serd` with stdout or stderr (or both) going to `/dev/full`, where every write fails
/// with "no space left on device"; the other streams are captured.
pub fn serd_full(args: &[&str], full_stdout: bool, full_stderr: bool) -> Output {
    let full = || {
        Stdio::from(
            std::fs::OpenOptions::new()
                .write(true)
                .open("/dev/full")
                .expect("/dev/full"),
        )
    };
    let mut command = Command::new(env!("CARGO_BIN_EXE_serd"));
    command.args(args);
    command.stdout(if full_stdout { full() } else { Stdio::piped() });
    command.stderr(if full_stderr { full() } else { Stdio::piped() });
    command.output().expect("run serd")
}

/// Starts `serd ARGS` with stdin, stdout and stderr all pipes.
pub fn spawn_piped(args: &[&str]) -> std::process::Child {
    Command::new(env!("CARGO_BIN_EXE_serd"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run serd")
}

/// Runs `serd` with `input` on its stdin (written by a thread, as a pipe delivers it).
pub fn serd_stdin(args: &[&str], input: Vec<u8>) -> Output {
    use std::io::Write;
    let mut child = spawn_piped(args);
    let mut stdin = child.stdin.take().unwrap();
    let writer = std::thread::spawn(move || {
        for chunk in input.chunks(3000) {
            if stdin.write_all(chunk).is_err() {
                break;
            }
        }
    });
    let out = child.wait_with_output().expect("serd's output");
    writer.join().unwrap();
    out
}

/// A test's prerequisite (a wgpu adapter, a sound server) is missing: CI
/// (`SERD_TESTS_REQUIRE_ALL=1`, set by `.ci/run`) fails, since `tools/setup --test` installs them
/// all there; anywhere else the test says what it could not check and passes.
pub fn prerequisite_missing(what: &str) {
    if std::env::var_os("SERD_TESTS_REQUIRE_ALL").is_some_and(|v| v == "1") {
        panic!("{what}, and SERD_TESTS_REQUIRE_ALL=1");
    }
    eprintln!("{what}: not tested here");
}

pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A command's stdout read as JSON Lines; every line must be valid against
/// `docs/events.schema.json`, so that each run of the suite checks the schema against what serd
/// writes.
pub fn json_lines(out: &[u8]) -> Vec<serde_json::Value> {
    text(out)
        .lines()
        .map(|l| {
            let value = serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}"));
            if let Err(e) = validate(&value) {
                panic!("not valid against docs/events.schema.json: {e}\n{l}");
            }
            value
        })
        .collect()
}

/// `docs/events.schema.json`, read once.
pub fn output_schema() -> &'static serde_json::Value {
    static SCHEMA: std::sync::OnceLock<serde_json::Value> = std::sync::OnceLock::new();
    SCHEMA.get_or_init(|| {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/events.schema.json");
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
    })
}

/// Checks a line of serd's stdout against the output schema.
pub fn validate(value: &serde_json::Value) -> Result<(), String> {
    let root = output_schema();
    check(root, root, value, "$")
}

/// The subset of JSON Schema (draft 2020-12) the output schema uses: `type`, `const`, `enum`,
/// `required`, `properties`, `additionalProperties`, `items`, `minimum`, `maximum`, `anyOf` and
/// local `$ref`s to `#/$defs/NAME`; `description`, `title`, `format` and the like are
/// annotations. Any other keyword is an error, so the schema never relies on a check this
/// does not make.
pub fn check(
    root: &serde_json::Value,
    schema: &serde_json::Value,
    value: &serde_json::Value,
    at: &str,
) -> Result<(), String> {
    use serde_json::Value;
    let Some(schema) = schema.as_object() else {
        return Err(format!("{at}: the schema is not an object"));
    };
    for (keyword, rule) in schema {
        match keyword.as_str() {
            "$schema" | "$id" | "$defs" | "title" | "description" | "format" => {}
            "$ref" => {
                let name = rule
                    .as_str()
                    .and_then(|r| r.strip_prefix("#/$defs/"))
                    .ok_or_else(|| format!("{at}: unsupported $ref {rule}"))?;
                let target = root["$defs"]
                    .get(name)
                    .ok_or_else(|| format!("{at}: no $defs/{name}"))?;
                check(root, target, value, at)?;
            }
            "anyOf" => {
                let options = rule.as_array().ok_or("anyOf is not an array")?;
                let errors: Vec<String> = options
                    .iter()
                    .filter_map(|option| check(root, option, value, at).err())
                    .collect();
                if errors.len() == options.len() {
                    return Err(format!(
                        "{at}: matches none of anyOf: {}",
                        errors.join("; ")
                    ));
                }
            }
            "type" => {
                let types: Vec<&str> = match rule {
                    Value::String(t) => vec![t.as_str()],
                    Value::Array(ts) => ts.iter().filter_map(Value::as_str).collect(),
                    _ => return Err(format!("{at}: bad type {rule}")),
                };
                let is = |t: &str| match t {
                    "null" => value.is_null(),
                    "boolean" => value.is_boolean(),
                    "string" => value.is_string(),
                    "number" => value.is_number(),
                    "integer" => {
                        value.is_i64()
                            || value.is_u64()
                            || value.as_f64().is_some_and(|f| f.fract() == 0.0)
                    }
                    "array" => value.is_array(),
                    "object" => value.is_object(),
                    _ => false,
                };
                if !types.iter().any(|t| is(t)) {
                    return Err(format!("{at}: {value} is not of type {rule}"));
                }
            }
            "const" => {
                if value != rule {
                    return Err(format!("{at}: {value} is not {rule}"));
                }
            }
            "enum" => {
                if !rule
                    .as_array()
                    .is_some_and(|options| options.contains(value))
                {
                    return Err(format!("{at}: {value} is not one of {rule}"));
                }
            }
            "minimum" | "maximum" => {
                if let (Some(x), Some(bound)) = (value.as_f64(), rule.as_f64()) {
                    let within = if keyword == "minimum" {
                        x >= bound
                    } else {
                        x <= bound
                    };
                    if !within {
                        return Err(format!("{at}: {x} is beyond the {keyword} {bound}"));
                    }
                }
            }
            "required" => {
                if let Some(object) = value.as_object() {
                    for name in rule.as_array().into_iter().flatten() {
                        let name = name.as_str().unwrap_or_default();
                        if !object.contains_key(name) {
                            return Err(format!("{at}: lacks {name}"));
                        }
                    }
                }
            }
            "properties" => {
                if let Some(object) = value.as_object() {
                    for (name, property) in rule.as_object().into_iter().flatten() {
                        if let Some(v) = object.get(name) {
                            check(root, property, v, &format!("{at}.{name}"))?;
                        }
                    }
                }
            }
            "additionalProperties" => {
                if let Some(object) = value.as_object() {
                    let known = schema.get("properties").and_then(Value::as_object);
                    for (name, v) in object {
                        if known.is_some_and(|k| k.contains_key(name)) {
                            continue;
                        }
                        match rule {
                            Value::Bool(false) => {
                                return Err(format!("{at}: {name} is not in the schema"))
                            }
                            Value::Bool(true) => {}
                            other => check(root, other, v, &format!("{at}.{name}"))?,
                        }
                    }
                }
            }
            "items" => {
                if let Some(items) = value.as_array() {
                    for (i, v) in items.iter().enumerate() {
                        check(root, rule, v, &format!("{at}[{i}]"))?;
                    }
                }
            }
            other => return Err(format!("{at}: the test validator does not know {other}")),
        }
    }
    Ok(())
}

/// A canonical 44-byte-header PCM WAV file (format 1 or 3), or WAVE_FORMAT_EXTENSIBLE.
pub struct Wav {
    pub rate: u32,
    pub channels: u16,
    pub bits: u16,
    pub float: bool,
    pub extensible: bool,
    /// A chunk placed between `fmt ` and `data` (RAVDESS files carry one).
    pub extra_chunk: bool,
}

impl Wav {
    pub fn pcm16(rate: u32, channels: u16) -> Wav {
        Wav {
            rate,
            channels,
            bits: 16,
            float: false,
            extensible: false,
            extra_chunk: false,
        }
    }

    /// Encodes interleaved samples in [-1, 1).
    pub fn encode(&self, samples: &[f64]) -> Vec<u8> {
        let mut data = Vec::new();
        for &x in samples {
            match (self.float, self.bits) {
                (true, 32) => data.extend_from_slice(&(x as f32).to_le_bytes()),
                (true, 64) => data.extend_from_slice(&x.to_le_bytes()),
                (false, 8) => data.push(((x * 128.0).round() + 128.0).clamp(0.0, 255.0) as u8),
                (false, 16) => data.extend_from_slice(
                    &((x * 32768.0).round().clamp(-32768.0, 32767.0) as i16).to_le_bytes(),
                ),
                (false, 24) => {
                    let v = (x * 8_388_608.0).round().clamp(-8_388_608.0, 8_388_607.0) as i32;
                    data.extend_from_slice(&v.to_le_bytes()[..3]);
                }
                (false, 32) => data.extend_from_slice(
                    &((x * 2_147_483_648.0)
                        .round()
                        .clamp(-2_147_483_648.0, 2_147_483_647.0) as i32)
                        .to_le_bytes(),
                ),
                other => panic!("unsupported test format {other:?}"),
            }
        }
        let block = self.channels * self.bits / 8;
        let tag: u16 = if self.extensible {
            0xFFFE
        } else if self.float {
            3
        } else {
            1
        };
        let mut fmt = Vec::new();
        fmt.extend_from_slice(&tag.to_le_bytes());
        fmt.extend_from_slice(&self.channels.to_le_bytes());
        fmt.extend_from_slice(&self.rate.to_le_bytes());
        fmt.extend_from_slice(&(self.rate * u32::from(block)).to_le_bytes());
        fmt.extend_from_slice(&block.to_le_bytes());
        fmt.extend_from_slice(&self.bits.to_le_bytes());
        if self.extensible {
            fmt.extend_from_slice(&22u16.to_le_bytes());
            fmt.extend_from_slice(&self.bits.to_le_bytes());
            let mask: u32 = if self.channels == 1 {
                0x4
            } else {
                (1 << self.channels) - 1
            };
            fmt.extend_from_slice(&mask.to_le_bytes());
            let sub: u16 = if self.float { 3 } else { 1 };
            fmt.extend_from_slice(&sub.to_le_bytes());
            fmt.extend_from_slice(&[
                0x00, 0x00, 0x00, 0x00, 0x10, 0x00, 0x80, 0x00, 0x00, 0xAA, 0x00, 0x38, 0x9B, 0x71,
            ]);
        }
        let mut body = Vec::new();
        body.extend_from_slice(b"WAVE");
        chunk(&mut body, b"fmt ", &fmt);
        if self.extra_chunk {
            chunk(&mut body, b"FLLR", &[0u8; 30]);
        }
        chunk(&mut body, b"data", &data);
        let mut file = Vec::new();
        file.extend_from_slice(b"RIFF");
        file.extend_from_slice(&(body.len() as u32).to_le_bytes());
        file.extend_from_slice(&body);
        file
    }
}

fn chunk(out: &mut Vec<u8>, id: &[u8; 4], payload: &[u8]) {
    out.extend_from_slice(id);
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    out.extend_from_slice(payload);
    if payload.len() % 2 == 1 {
        out.push(0);
    }
}

/// A gliding tone with some harmonics: pitched enough for openSMILE to find voicing.
pub fn tone(rate: u32, seconds: f64) -> Vec<f64> {
    let n = (f64::from(rate) * seconds) as usize;
    let mut phase = 0.0f64;
    (0..n)
        .map(|i| {
            let t = i as f64 / f64::from(rate);
            phase += 2.0 * std::f64::consts::PI * (140.0 + 60.0 * t / seconds) / f64::from(rate);
            0.3 * phase.sin() + 0.1 * (2.0 * phase).sin() + 0.05 * (3.0 * phase).sin()
        })
        .collect()
}

/// The samples of a canonical 16-bit PCM mono WAV file (the fixtures), in [-1, 1).
pub fn pcm16_samples(bytes: &[u8]) -> Vec<f64> {
    let data = bytes
        .windows(4)
        .position(|w| w == b"data")
        .expect("a data chunk")
        + 8;
    bytes[data..]
        .chunks_exact(2)
        .map(|b| f64::from(i16::from_le_bytes([b[0], b[1]])) / 32768.0)
        .collect()
}

/// Lines of a child's stdout, as they come.
pub fn lines_of(child: &mut Child) -> mpsc::Receiver<String> {
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

pub fn signal(child: &Child, name: &str) {
    let status = Command::new("kill")
        .args([name, &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

/// Waits for the child, killing it if it takes longer than `limit`.
pub fn wait_at_most(child: &mut Child, limit: Duration) -> std::process::ExitStatus {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("serd did not exit within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}
