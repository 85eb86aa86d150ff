//! openSMILE through its C API (SMILEapi): the only module of serd with `unsafe`.
//!
//! The library is loaded at run time (dlopen through bindgen's `SmileApi`), from the copy embedded
//! in the serd binary (see `bundle`) or from `SERD_OPENSMILE_LIB`, so a missing library is an
//! error message, never a loader crash. [`Smile`] owns one openSMILE instance; [`Running`] runs it
//! on its own thread (`smile_run` blocks until end of input) while the caller writes audio into
//! the external audio source and receives sink frames over a channel.
#![allow(unsafe_code)]

mod bundle;

use std::ffi::{c_char, c_long, c_void, CStr, CString};
use std::fmt;
use std::path::{Path, PathBuf};
use std::ptr::NonNull;
use std::sync::{Arc, Mutex, OnceLock};
use std::thread::JoinHandle;

use crossbeam_channel::Sender;

use opensmile_sys as sys;

pub use bundle::{BUNDLE_ID, LIBRARY_ENV};

/// Errors of openSMILE itself, with its own message where it gave one.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot load the openSMILE library (tried {tried}); set {LIBRARY_ENV} to the path of libSMILEapi")]
    Load { tried: String },
    #[error("cannot unpack openSMILE's files into {path}: {source}")]
    Unpack {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("openSMILE {call} failed ({code}){}", message_suffix(.message))]
    Call {
        call: &'static str,
        code: Code,
        message: String,
    },
    #[error("openSMILE: {0}")]
    Invalid(String),
    #[error("{0}")]
    Unavailable(String),
    #[error("the openSMILE thread panicked")]
    Panicked,
}

fn message_suffix(message: &str) -> String {
    if message.is_empty() {
        String::new()
    } else {
        format!(": {message}")
    }
}

/// A SMILEapi result code other than success.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Code(sys::smileres_t::Type);

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use sys::smileres_t::*;
        f.write_str(match self.0 {
            SMILE_SUCCESS => "success",
            SMILE_FAIL => "failure",
            SMILE_INVALID_ARG => "invalid argument",
            SMILE_INVALID_STATE => "invalid state",
            SMILE_COMP_NOT_FOUND => "component not found",
            SMILE_LICENSE_FAIL => "licence check failed",
            SMILE_CONFIG_PARSE_FAIL => "configuration not readable",
            SMILE_CONFIG_INIT_FAIL => "configuration not usable",
            SMILE_NOT_WRITTEN => "not written",
            _ => return write!(f, "code {}", self.0),
        })
    }
}

/// The loaded library and the folder holding openSMILE's configuration files.
pub struct Runtime {
    api: sys::SmileApi,
    config_dir: PathBuf,
}

impl Runtime {
    /// The process-wide runtime, loaded on first use.
    pub fn get() -> Result<&'static Runtime, Error> {
        static RUNTIME: OnceLock<Result<Runtime, String>> = OnceLock::new();
        RUNTIME
            .get_or_init(|| Runtime::load().map_err(|e| e.to_string()))
            .as_ref()
            // Kept as text so that every later call reports the same cause.
            .map_err(|e| Error::Unavailable(e.clone()))
    }

    fn load() -> Result<Runtime, Error> {
        let files = bundle::unpack()?;
        let mut tried = Vec::new();
        for candidate in files.library_candidates() {
            // SAFETY: loading runs the library's initialisers; libSMILEapi is a plain C++ library
            // whose static constructors only register openSMILE's component types.
            match unsafe { sys::SmileApi::new(&candidate) } {
                Ok(api) => {
                    log::debug!("openSMILE loaded from {}", candidate.display());
                    return Ok(Runtime {
                        api,
                        config_dir: files.config_dir,
                    });
                }
                Err(e) => tried.push(format!("{}: {e}", candidate.display())),
            }
        }
        if tried.is_empty() {
            tried.push("no library is embedded for this platform".into());
        }
        Err(Error::Load {
            tried: tried.join("; "),
        })
    }

    /// Folder with openSMILE's configuration tree (`egemaps/`, `compare/`, `shared/`, `serd/`).
    pub fn config_dir(&self) -> &Path {
        &self.config_dir
    }
}

/// One frame delivered by an external sink: `values` of the frame starting at `time`.
#[derive(Debug, Clone)]
pub struct SinkFrame {
    /// The tag its sink was connected with ([`Smile::connect_sink`]).
    pub sink: usize,
    pub time: f64,
    pub length: f64,
    pub values: Vec<f32>,
}

struct SinkContext {
    tag: usize,
    tx: Sender<SinkFrame>,
}

/// One initialised openSMILE instance (`smile_new` + `smile_initialize`), freed on drop.
pub struct Smile {
    obj: NonNull<sys::smileobj_t>,
    rt: &'static Runtime,
    /// Boxed: callbacks hold pointers to them, which must not move when the Vec grows.
    #[allow(clippy::vec_box)]
    sinks: Vec<Box<SinkContext>>,
    /// openSMILE's error log lines since the last failed call: its calls often fail with an empty
    /// error message and the reason only in the log. Boxed for the log callback's pointer.
    last_error: Box<Mutex<String>>,
}

// SAFETY: SMILEapi is built for one thread running `smile_run` while others write to external
// sources, signal end of input or abort (openSMILE's external source and component manager lock
// internally; opensmile-python and SMILEapi's own docs use it this way). Everything else
// (initialise, connect sinks, free) happens before the run thread starts or after it has joined.
unsafe impl Send for Smile {}
unsafe impl Sync for Smile {}

impl Smile {
    /// `smile_initialize` with a configuration file and `-name value` options.
    pub fn new(config: &Path, options: &[(&str, String)]) -> Result<Smile, Error> {
        let rt = Runtime::get()?;
        let config = cstring(&config.to_string_lossy())?;
        let owned: Vec<(CString, CString)> = options
            .iter()
            .map(|(k, v)| Ok((cstring(k)?, cstring(v)?)))
            .collect::<Result<_, Error>>()?;
        let opts: Vec<sys::smileopt_t> = owned
            .iter()
            .map(|(k, v)| sys::smileopt_t {
                name: k.as_ptr(),
                value: v.as_ptr(),
            })
            .collect();

        // SAFETY: smile_new has no preconditions; a null result is handled.
        let obj = NonNull::new(unsafe { rt.api.smile_new() })
            .ok_or_else(|| Error::Invalid("smile_new returned no instance".into()))?;
        let smile = Smile {
            obj,
            rt,
            sinks: Vec::new(),
            last_error: Box::default(),
        };
        let param = &*smile.last_error as *const Mutex<String> as *mut c_void;
        // SAFETY: obj is a live instance; param points into a Box owned by the instance's owner
        // and freed only after smile_free, so it outlives every log callback.
        smile.check("smile_set_log_callback", unsafe {
            rt.api
                .smile_set_log_callback(obj.as_ptr(), Some(on_log), param)
        })?;
        let n = i32::try_from(opts.len()).map_err(|_| Error::Invalid("too many options".into()))?;
        // SAFETY: every pointer is valid for the call (owned/opts outlive it); log output goes to
        // the callback only (consoleOutput 0, no log file), so openSMILE never writes to stdout.
        smile.check("smile_initialize", unsafe {
            rt.api.smile_initialize(
                obj.as_ptr(),
                config.as_ptr(),
                n,
                opts.as_ptr(),
                2,
                0,
                0,
                std::ptr::null(),
            )
        })?;
        Ok(smile)
    }

    /// Names of the elements an external sink delivers, in order.
    pub fn sink_names(&self, component: &str) -> Result<Vec<String>, Error> {
        let name = cstring(component)?;
        let mut n: c_long = 0;
        // SAFETY: valid instance, NUL-terminated name, valid out pointer.
        self.check("smile_extsink_get_num_elements", unsafe {
            self.rt
                .api
                .smile_extsink_get_num_elements(self.obj.as_ptr(), name.as_ptr(), &mut n)
        })?;
        (0..n)
            .map(|i| {
                let mut element: *const c_char = std::ptr::null();
                // SAFETY: as above; openSMILE returns a pointer it owns, copied out at once.
                self.check("smile_extsink_get_element_name", unsafe {
                    self.rt.api.smile_extsink_get_element_name(
                        self.obj.as_ptr(),
                        name.as_ptr(),
                        i,
                        &mut element,
                    )
                })?;
                if element.is_null() {
                    return Err(Error::Invalid(format!(
                        "sink {component} has no name for element {i}"
                    )));
                }
                // SAFETY: non-null, NUL-terminated string owned by the instance.
                Ok(unsafe { CStr::from_ptr(element) }
                    .to_string_lossy()
                    .into_owned())
            })
            .collect()
    }

    /// Sends every frame that the external sink `component` reads to `tx`, tagged with `tag`.
    pub fn connect_sink(
        &mut self,
        component: &str,
        tag: usize,
        tx: Sender<SinkFrame>,
    ) -> Result<(), Error> {
        let name = cstring(component)?;
        let ctx = Box::new(SinkContext { tag, tx });
        let param = &*ctx as *const SinkContext as *mut c_void;
        // SAFETY: `param` points into a Box kept in self.sinks until the instance is freed, so it
        // outlives every callback.
        self.check("smile_extsink_set_data_callback_ex", unsafe {
            self.rt.api.smile_extsink_set_data_callback_ex(
                self.obj.as_ptr(),
                name.as_ptr(),
                Some(on_sink),
                param,
            )
        })?;
        self.sinks.push(ctx);
        Ok(())
    }

    /// Starts `smile_run` on a thread named `name`.
    pub fn start(self, name: &str) -> Result<Running, Error> {
        let smile = Arc::new(self);
        let runner = Arc::clone(&smile);
        let thread = std::thread::Builder::new()
            .name(name.to_string())
            // SAFETY: valid instance, initialised and not yet run.
            .spawn(move || {
                runner.check("smile_run", unsafe {
                    runner.rt.api.smile_run(runner.obj.as_ptr())
                })
            })
            .map_err(|e| Error::Invalid(format!("cannot start the openSMILE thread: {e}")))?;
        Ok(Running {
            smile,
            thread: Some(thread),
            source: cstring("extsource")?,
        })
    }

    fn check(&self, call: &'static str, res: sys::smileres_t::Type) -> Result<(), Error> {
        if res == sys::smileres_t::SMILE_SUCCESS {
            return Ok(());
        }
        // SAFETY: valid instance; the message is owned by it and copied at once by c_text.
        let mut message = unsafe { c_text(self.rt.api.smile_error_msg(self.obj.as_ptr())) };
        if message.is_empty() {
            message =
                std::mem::take(&mut *self.last_error.lock().unwrap_or_else(|e| e.into_inner()));
        }
        Err(Error::Call {
            call,
            code: Code(res),
            message,
        })
    }
}

impl Drop for Smile {
    fn drop(&mut self) {
        // SAFETY: the last owner of the instance: the run thread (if any) has ended, since it
        // holds an Arc<Smile> for as long as smile_run executes.
        unsafe { self.rt.api.smile_free(self.obj.as_ptr()) }
    }
}

/// An instance whose `smile_run` is executing on its own thread.
pub struct Running {
    smile: Arc<Smile>,
    thread: Option<JoinHandle<Result<(), Error>>>,
    source: CString,
}

impl Running {
    /// Writes 16-bit mono samples into the external audio source. `Ok(false)`: openSMILE's buffer
    /// is full, nothing was written; retry after it has processed some input.
    pub fn write(&self, pcm: &[i16]) -> Result<bool, Error> {
        let bytes = i32::try_from(std::mem::size_of_val(pcm))
            .map_err(|_| Error::Invalid("audio chunk too large".into()))?;
        // SAFETY: `pcm` is valid for `bytes` bytes; the source copies the data before returning.
        let res = unsafe {
            self.smile.rt.api.smile_extaudiosource_write_data(
                self.smile.obj.as_ptr(),
                self.source.as_ptr(),
                pcm.as_ptr().cast(),
                bytes,
            )
        };
        if res == sys::smileres_t::SMILE_NOT_WRITTEN {
            return Ok(false);
        }
        self.smile
            .check("smile_extaudiosource_write_data", res)
            .map(|()| true)
    }

    /// Signals end of input; openSMILE flushes its pipeline and `smile_run` returns.
    pub fn end_input(&self) -> Result<(), Error> {
        // SAFETY: valid instance and component name.
        self.smile
            .check("smile_extaudiosource_set_external_eoi", unsafe {
                self.smile.rt.api.smile_extaudiosource_set_external_eoi(
                    self.smile.obj.as_ptr(),
                    self.source.as_ptr(),
                )
            })
    }

    /// Whether `smile_run` has returned.
    pub fn is_finished(&self) -> bool {
        self.thread.as_ref().is_none_or(|t| t.is_finished())
    }

    /// Waits for `smile_run` to return, with its result.
    pub fn join(mut self) -> Result<(), Error> {
        self.join_thread()
    }

    fn join_thread(&mut self) -> Result<(), Error> {
        match self.thread.take() {
            Some(t) => t.join().map_err(|_| Error::Panicked)?,
            None => Ok(()),
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if self.thread.is_some() {
            // A run waiting for input does not see an abort request: end the input as well.
            let _ = self.end_input();
            // SAFETY: valid instance; abort is allowed while running or after the end.
            unsafe { self.smile.rt.api.smile_abort(self.smile.obj.as_ptr()) };
            let _ = self.join_thread();
        }
    }
}

/// Copies a C string from openSMILE, trimmed; empty for null.
///
/// # Safety
/// `p` is null or points to a NUL-terminated string valid for the duration of the call.
unsafe fn c_text(p: *const c_char) -> String {
    if p.is_null() {
        return String::new();
    }
    // SAFETY: non-null and NUL-terminated, per this function's contract.
    unsafe { CStr::from_ptr(p) }
        .to_string_lossy()
        .trim()
        .to_string()
}

fn cstring(s: &str) -> Result<CString, Error> {
    CString::new(s).map_err(|_| Error::Invalid(format!("string contains NUL: {s:?}")))
}

/// Sink callback, on the openSMILE thread: copies the frames and sends them on.
extern "C" fn on_sink(
    data: *const f32,
    n_t: c_long,
    n: c_long,
    meta: *const sys::FrameMetaData,
    param: *mut c_void,
) -> bool {
    if data.is_null() || meta.is_null() || param.is_null() || n_t <= 0 || n <= 0 {
        return true;
    }
    // SAFETY: param is the SinkContext registered in connect_sink (alive until smile_free);
    // data holds n_t * n floats and meta one FrameMetaData, valid during the callback.
    let (ctx, meta, data) = unsafe {
        (
            &*(param as *const SinkContext),
            &*meta,
            std::slice::from_raw_parts(data, (n_t * n) as usize),
        )
    };
    for (i, row) in data.chunks_exact(n as usize).enumerate() {
        let frame = SinkFrame {
            sink: ctx.tag,
            time: meta.time + i as f64 * meta.period,
            length: meta.lengthSec,
            values: row.to_vec(),
        };
        // A closed receiver means the consumer has gone away; dropping the frame is right.
        let _ = ctx.tx.send(frame);
    }
    true
}

/// Log callback: openSMILE's messages go to serd's logger (stderr), never to stdout.
extern "C" fn on_log(_obj: *mut sys::smileobj_t, msg: sys::smilelogmsg_t, param: *mut c_void) {
    use sys::smilelogtype_t::*;
    // SAFETY: openSMILE's strings are valid for the duration of the callback.
    let (module, text) = unsafe { (c_text(msg.module), c_text(msg.text)) };
    let level = match msg.type_ {
        // The stock eGeMAPS/ComParE configs make the component manager report idle ticks this way
        // while it waits for input or for a lagged level (openSMILE-python gets the same warning);
        // output is unaffected (the parity tests compare it with opensmile-python), so it is noise.
        SMILE_LOG_WARNING if text.contains("could not perform any work") => log::Level::Debug,
        // Errors end up in the failing call's error (see Smile::check): reported once, there.
        SMILE_LOG_ERROR => {
            if !param.is_null() {
                // SAFETY: param is the instance's last_error Mutex (see Smile::new).
                let last = unsafe { &*(param as *const Mutex<String>) };
                let mut last = last.lock().unwrap_or_else(|e| e.into_inner());
                // openSMILE logs the cause first and a generic summary after it: keep both.
                if !last.is_empty() {
                    last.push_str("; ");
                }
                last.push_str(&format!("{module}: {text}"));
            }
            log::Level::Debug
        }
        SMILE_LOG_WARNING => log::Level::Warn,
        SMILE_LOG_DEBUG => log::Level::Trace,
        _ => log::Level::Debug,
    };
    if log::log_enabled!(target: "opensmile", level) {
        log::log!(target: "opensmile", level, "{module}: {text}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bad_configuration_is_a_typed_error_with_opensmiles_reason() {
        let dir = tempfile::tempdir().unwrap();
        let conf = dir.path().join("broken.conf");
        std::fs::write(
            &conf,
            "[componentInstances:cComponentManager]\ninstance[x].type=cNoSuchComponent\n",
        )
        .unwrap();
        match Smile::new(&conf, &[]) {
            Err(Error::Call { call, message, .. }) => {
                assert_eq!(call, "smile_initialize");
                assert!(
                    message.contains("cNoSuchComponent"),
                    "openSMILE's reason is kept: {message:?}"
                );
            }
            Err(other) => panic!("unexpected error {other}"),
            Ok(_) => panic!("a broken configuration initialised"),
        }
    }

    #[test]
    fn sink_names_of_an_unknown_component_fail_cleanly() {
        let rt = Runtime::get().unwrap();
        let conf = rt.config_dir().join("egemaps/v02/eGeMAPSv02.conf");
        let source = rt.config_dir().join("serd/source.conf.inc");
        let sinks = rt
            .config_dir()
            .join("shared/standard_external_data_output_single.conf.inc");
        let options = [
            ("source", source.display().to_string()),
            ("sink", sinks.display().to_string()),
        ];
        let smile = Smile::new(&conf, &options).unwrap();
        assert_eq!(smile.sink_names("extsink").unwrap().len(), 88);
        assert!(matches!(
            smile.sink_names("nosuchsink"),
            Err(Error::Call { .. })
        ));
    }
}
