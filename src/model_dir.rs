//! A trained model directory: its description, weights and checks.
//!
//! `model.json` holds everything inference needs (format version, label order, feature set,
//! window/hop, voicing threshold, scaler, network config, ensemble size); `weights-N.bpk` the
//! weights (burnpack) of each member of the ensemble, whose probabilities are averaged: the
//! networks first, then the linear members.
//! Training writes it ([`ModelDir::save`]); `eval`, `predict` and `listen` read it, through
//! [`crate::inference::Predictor`].

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use burn::module::Module;
use burn::tensor::Device;
use serde::{Deserialize, Serialize};

use crate::extract::Recipe;
use crate::features::{FeatureSet, FrontEnd, Windowing};
use crate::labels::Emotion;
use crate::model::{Cnn, CnnConfig};
use crate::scaler::Scaler;

/// Version of the model directory layout this serd writes. It reads this and every earlier one.
/// 2: linear members (`linear`), which a reader of format 1 would silently leave out.
pub const FORMAT: u32 = 2;
const INFO: &str = "model.json";
fn weights_file(member: usize) -> String {
    format!("weights-{member}.bpk")
}

/// Contents of `model.json`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ModelInfo {
    pub format: u32,
    /// serd version that trained it.
    pub serd_version: String,
    /// Output order of the probabilities.
    pub labels: Vec<Emotion>,
    pub features: FeatureSet,
    /// Window and hop in seconds; `null` window: one vector per file.
    pub window_s: Option<f64>,
    pub hop_s: Option<f64>,
    /// Windows whose share of voiced frames is below this are not classified.
    pub min_voiced: f32,
    pub scaler: Scaler,
    pub model: CnnConfig,
    /// Networks in the ensemble (same config, different seeds).
    pub members: usize,
    /// Linear members after the networks: `model` with no blocks (multinomial logistic
    /// regression on the standardised features). Absent when there are none (format 1 had none).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub linear: usize,
    /// What is done to the audio before openSMILE (absent in models trained before serd had a
    /// front end: none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub front_end: Option<FrontEnd>,
    /// Temperature applied to each window's probabilities (`p^(1/T)`, renormalised), fitted on
    /// the cross-validated window predictions so that confidence means what it says; 1 when
    /// absent.
    #[serde(default = "one")]
    pub temperature: f32,
    /// Temperature applied to a file's prediction, the mean of its calibrated windows' (a mean
    /// of several windows is less confident than each: it needs its own), fitted on the
    /// cross-validated file predictions; 1 when absent (models that had one temperature).
    #[serde(default = "one")]
    pub file_temperature: f32,
    /// The 99th percentile of [`Scaler::novelty`] over the training windows. A window further
    /// out (a tone, music, synthetic speech, a noise the model never met) has its probabilities
    /// drawn towards uniform in proportion, so that it cannot come out near certain. Absent in
    /// older models: no such gate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub novelty: Option<f32>,
    /// FNV-1a (64 bit, hex) of each weights file, by file name, checked at load: a changed or
    /// damaged byte is an error, not a silently different model. Absent in older models.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub checksums: BTreeMap<String, String>,
}

fn one() -> f32 {
    1.0
}

/// For `skip_serializing_if`: a count of 0 is left out.
pub(crate) fn is_zero(n: &usize) -> bool {
    *n == 0
}

impl ModelInfo {
    /// How this model turns audio into windows.
    pub fn recipe(&self) -> Recipe {
        Recipe {
            set: self.features,
            windowing: self.windowing(),
            front: self.front_end,
        }
    }

    pub fn windowing(&self) -> Windowing {
        Windowing::from_seconds(self.window_s, self.hop_s)
    }

    /// The network of ensemble member `member`: the networks first, then the linear members.
    pub fn member(&self, member: usize) -> CnnConfig {
        if member < self.members {
            self.model.clone()
        } else {
            self.model.clone().with_blocks(0)
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("{}: {reason}", .path.display())]
    NotADirectory { path: PathBuf, reason: &'static str },
    #[error("{}: {source}", .path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}: not a serd model description: {source}", .path.display())]
    Json {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error("{}: model format {found}, this serd reads formats 1 to {FORMAT}: a newer serd wrote it", .path.display())]
    Format { path: PathBuf, found: u32 },
    #[error("{}: inconsistent model: {reason}", .path.display())]
    Inconsistent { path: PathBuf, reason: String },
    #[error("{}: cannot read the weights: {reason}", .path.display())]
    Weights { path: PathBuf, reason: String },
}

/// The recordings a model was trained on, by content (`trained-on.json` in its directory): so
/// that `serd eval` can tell figures on held-out data from figures on the training data, whatever
/// the files are called or wherever they are.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct TrainedOn {
    /// FNV-1a (64 bit) of each file's bytes, in hex, sorted.
    pub fnv1a64: Vec<String>,
}

impl TrainedOn {
    const FILE: &'static str = "trained-on.json";

    /// The fingerprint of a file's bytes.
    pub fn fingerprint(bytes: &[u8]) -> String {
        format!(
            "{:016x}",
            crate::files::fnv1a(crate::files::FNV_OFFSET, bytes)
        )
    }

    /// The record of `paths`' contents (unreadable files are left out).
    pub fn of(paths: &[&Path]) -> TrainedOn {
        use rayon::prelude::*;
        let mut fnv1a64: Vec<String> = paths
            .par_iter()
            .filter_map(|p| std::fs::read(p).ok())
            .map(|bytes| TrainedOn::fingerprint(&bytes))
            .collect();
        fnv1a64.sort_unstable();
        fnv1a64.dedup();
        TrainedOn { fnv1a64 }
    }

    /// Whether a file with these bytes was trained on.
    pub fn contains(&self, bytes: &[u8]) -> bool {
        self.fnv1a64
            .binary_search(&TrainedOn::fingerprint(bytes))
            .is_ok()
    }

    pub fn save(&self, dir: &Path) -> Result<(), ModelError> {
        let path = dir.join(TrainedOn::FILE);
        let json = serde_json::to_string(self).expect("a list of strings serialises");
        std::fs::write(&path, json + "\n").map_err(|source| ModelError::Io { path, source })
    }

    /// The record in `dir`; `None` when the model has none (trained before it existed).
    pub fn load(dir: &Path) -> Result<Option<TrainedOn>, ModelError> {
        let path = dir.join(TrainedOn::FILE);
        match std::fs::read_to_string(&path) {
            Ok(text) => serde_json::from_str(&text)
                .map(Some)
                .map_err(|source| ModelError::Json { path, source }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(ModelError::Io { path, source }),
        }
    }
}

/// Reading and writing model directories.
pub struct ModelDir;

impl ModelDir {
    /// Writes `model.json` and the weights of each network into `dir` (created if needed).
    pub fn save(dir: &Path, info: &ModelInfo, models: &[Cnn]) -> Result<(), ModelError> {
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| ModelError::Io { path, source }
        };
        std::fs::create_dir_all(dir).map_err(io(dir))?;
        let mut info = info.clone();
        info.checksums.clear();
        for (member, model) in models.iter().enumerate() {
            let weights = dir.join(weights_file(member));
            model
                .clone()
                .save_file(&weights)
                .map_err(|e| ModelError::Weights {
                    path: weights.clone(),
                    reason: e.to_string(),
                })?;
            let bytes = std::fs::read(&weights).map_err(io(&weights))?;
            info.checksums
                .insert(weights_file(member), checksum(&bytes));
        }
        let json = serde_json::to_string_pretty(&info).expect("model info serialises");
        std::fs::write(dir.join(INFO), json + "\n").map_err(io(&dir.join(INFO)))?;
        Ok(())
    }

    /// Reads a model directory onto `device`.
    pub fn load(dir: &Path, device: &Device) -> Result<(ModelInfo, Vec<Cnn>), ModelError> {
        if !dir.is_dir() {
            return Err(ModelError::NotADirectory {
                path: dir.to_path_buf(),
                reason: if dir.exists() {
                    "not a model directory (the folder that holds model.json and the weights)"
                } else {
                    "no such model directory"
                },
            });
        }
        let path = dir.join(INFO);
        let text = std::fs::read_to_string(&path).map_err(|source| ModelError::Io {
            path: path.clone(),
            source,
        })?;
        let info: ModelInfo = serde_json::from_str(&text).map_err(|source| ModelError::Json {
            path: path.clone(),
            source,
        })?;
        info.validate(&path)?;
        let models = (0..info.members + info.linear)
            .map(|member| load_member(dir, &info, member, device))
            .collect::<Result<Vec<_>, _>>()?;
        // Damaged weights can load and still give NaN: try the networks once on the mean input.
        let probe = vec![0.0; info.features.dimension()];
        let outputs = crate::model::ensemble_probs(&models, &[probe.as_slice()], device);
        if outputs.iter().flatten().any(|p| !p.is_finite()) {
            return Err(ModelError::Weights {
                path: dir.to_path_buf(),
                reason: "the networks give non-finite outputs (damaged weights)".into(),
            });
        }
        Ok((info, models))
    }
}

/// The network of ensemble member `member` of the model in `dir`, its weights checked against
/// what `info` says of them (size, checksum) before burn reads them.
fn load_member(
    dir: &Path,
    info: &ModelInfo,
    member: usize,
    device: &Device,
) -> Result<Cnn, ModelError> {
    let config = info.member(member);
    let weights = dir.join(weights_file(member));
    let bytes = std::fs::read(&weights).map_err(|source| ModelError::Io {
        path: weights.clone(),
        source,
    })?;
    let damaged = |reason: String| ModelError::Weights {
        path: weights.clone(),
        reason,
    };
    // Checked before burn reads the file: the sizes model.json states must be the weights' (4
    // bytes a value, plus the format's few kilobytes of names).
    let values = config.parameters();
    if !(values * 4..=values * 4 + 65_536).contains(&bytes.len()) {
        return Err(damaged(format!(
            "{} bytes, but the network model.json describes holds {values} values ({} bytes)",
            bytes.len(),
            values * 4
        )));
    }
    if let Some(expected) = info.checksums.get(&weights_file(member)) {
        let found = checksum(&bytes);
        if &found != expected {
            return Err(damaged(format!(
                "checksum {found}, model.json says {expected}: the file was changed or damaged \
                 after training"
            )));
        }
    }
    config
        .init(device)
        .try_load_file(&weights)
        .map_err(|e| damaged(e.to_string()))
}

impl ModelInfo {
    /// Checks that the description is one serd can serve: its format, labels, sizes, network,
    /// scaler, windows, front end, novelty gate, temperatures and voicing threshold. `path` is
    /// where it was read from, for the error.
    pub fn validate(&self, path: &Path) -> Result<(), ModelError> {
        let info = self;
        let path = path.to_path_buf();
        if !(1..=FORMAT).contains(&info.format) {
            return Err(ModelError::Format {
                path,
                found: info.format,
            });
        }
        let inconsistent = |reason: String| ModelError::Inconsistent {
            path: path.clone(),
            reason,
        };
        if info.labels != Emotion::ALL {
            return Err(inconsistent(format!(
                "labels {:?}, expected {:?}",
                info.labels,
                Emotion::ALL
            )));
        }
        let n = info.features.dimension();
        if info.scaler.dimension() != n || info.model.n_features != n {
            return Err(inconsistent(format!(
                "{} expects {n} features, the scaler has {} and the network {}",
                info.features.name(),
                info.scaler.dimension(),
                info.model.n_features
            )));
        }
        if !(1..=64).contains(&info.members) || info.linear > 64 {
            return Err(inconsistent(format!(
                "an ensemble of {} networks (1 to 64) and {} linear members (0 to 64)",
                info.members, info.linear
            )));
        }
        if let Some(problem) = info.model.problem().or_else(|| info.scaler.problem()) {
            return Err(inconsistent(problem));
        }
        if let Some(window) = info.window_s {
            Windowing::sliding(window, info.hop_s.unwrap_or(window))
                .map_err(|e| inconsistent(e.to_string()))?;
        }
        if let Some(problem) = info.front_end.as_ref().and_then(FrontEnd::problem) {
            return Err(inconsistent(problem));
        }
        if let Some(d) = info.novelty.filter(|d| !(d.is_finite() && *d > 0.0)) {
            return Err(inconsistent(format!(
                "novelty {d} is not a positive number"
            )));
        }
        for t in [info.temperature, info.file_temperature] {
            if !(t.is_finite() && (0.01..=100.0).contains(&t)) {
                return Err(inconsistent(format!(
                    "temperature {t} is not between 0.01 and 100"
                )));
            }
        }
        if !(0.0..=1.0).contains(&info.min_voiced) {
            return Err(inconsistent(format!(
                "min_voiced {} is not a share between 0 and 1",
                info.min_voiced
            )));
        }
        Ok(())
    }
}

/// The checksum `model.json` records for a weights file: 64-bit FNV-1a, 16 hex digits (any
/// single changed byte changes it).
fn checksum(bytes: &[u8]) -> String {
    format!(
        "{:016x}",
        crate::files::fnv1a(crate::files::FNV_OFFSET, bytes)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A description of format 1 (before linear members) loads with none; one of a format newer
    /// than this serd's is refused, naming it.
    #[test]
    fn older_formats_load_and_newer_ones_are_refused() {
        let n = FeatureSet::Egemaps.dimension();
        let rows = [vec![0.0; n], vec![1.0; n]];
        let device = Device::flex();
        let config = CnnConfig::new(n).with_filters(4);
        let dir = tempfile::tempdir().unwrap();
        let info = ModelInfo {
            format: FORMAT,
            serd_version: "test".into(),
            labels: Emotion::ALL.to_vec(),
            features: FeatureSet::Egemaps,
            window_s: None,
            hop_s: None,
            min_voiced: 0.1,
            scaler: Scaler::fit(rows.iter().map(Vec::as_slice)),
            model: config.clone(),
            members: 1,
            linear: 0,
            front_end: None,
            temperature: 1.0,
            file_temperature: 1.0,
            novelty: None,
            checksums: BTreeMap::new(),
        };
        ModelDir::save(dir.path(), &info, &[config.init(&device)]).unwrap();
        let path = dir.path().join(INFO);
        let mut json: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        assert!(json.get("linear").is_none(), "no linear members, no field");
        json["format"] = 1.into();
        std::fs::write(&path, json.to_string()).unwrap();
        let (loaded, models) = ModelDir::load(dir.path(), &device).unwrap();
        assert_eq!((loaded.members, loaded.linear, models.len()), (1, 0, 1));
        json["format"] = (FORMAT + 1).into();
        std::fs::write(&path, json.to_string()).unwrap();
        let error = ModelDir::load(dir.path(), &device).unwrap_err().to_string();
        assert!(
            error.contains(&format!("model format {}", FORMAT + 1)),
            "{error}"
        );
    }

    /// Fuzzing `model.json`: damaged descriptions of a small saved model load (and then predict
    /// finite probabilities) or give an error; never a panic or an absurd allocation.
    #[test]
    fn fuzz_damaged_model_json_loads_or_fails_cleanly() {
        let n = FeatureSet::Egemaps.dimension();
        let rows: Vec<Vec<f32>> = (0..4)
            .map(|i| (0..n).map(|j| (i * j % 7) as f32).collect())
            .collect();
        let device = Device::flex();
        let config = CnnConfig::new(n).with_filters(4);
        let info = ModelInfo {
            format: FORMAT,
            serd_version: "test".into(),
            labels: Emotion::ALL.to_vec(),
            features: FeatureSet::Egemaps,
            window_s: Some(2.0),
            hop_s: Some(1.0),
            min_voiced: 0.1,
            scaler: Scaler::fit(rows.iter().map(Vec::as_slice)),
            model: config.clone(),
            members: 1,
            linear: 1,
            front_end: Some(FrontEnd::DEFAULT),
            temperature: 0.8,
            file_temperature: 0.7,
            novelty: Some(2.5),
            checksums: BTreeMap::new(),
        };
        let dir = tempfile::tempdir().unwrap();
        let members = [config.init(&device), info.member(1).init(&device)];
        ModelDir::save(dir.path(), &info, &members).unwrap();
        let base = std::fs::read(dir.path().join(INFO)).unwrap();
        let (mut loaded, mut refused) = (0, 0);
        for damaged in crate::fuzz::mutants(&base, 4, crate::fuzz::cases(2000)) {
            std::fs::write(dir.path().join(INFO), &damaged).unwrap();
            match ModelDir::load(dir.path(), &device) {
                Ok((info, models)) => {
                    loaded += 1;
                    let row = vec![0.0; info.scaler.dimension()];
                    let probs = crate::model::ensemble_probs(&models, &[row.as_slice()], &device);
                    assert!(probs.iter().flatten().all(|p| p.is_finite()));
                }
                Err(_) => refused += 1,
            }
        }
        assert!(refused > 0, "{loaded} loaded, {refused} refused");
    }
}
