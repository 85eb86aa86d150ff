//! Inference: the single place where feature windows become probabilities ([`Predictor`]), so
//! that training's cross-validation, `serd predict`, `serd eval` and `serd listen` classify
//! identically; and the rules that turn a file's windows into its verdict.

use std::path::Path;

use burn::tensor::Device;

use crate::calibration;
use crate::features::Window;
use crate::labels::Emotion;
use crate::model::Cnn;
use crate::model_dir::{ModelDir, ModelError, ModelInfo};
use crate::scaler::Scaler;

/// The windows of a file that are classified: those voiced enough; when none is, the most voiced
/// one, so every file gets a prediction.
pub fn usable(windows: &[Window], min_voiced: f32) -> Vec<&Window> {
    let voiced: Vec<&Window> = windows.iter().filter(|w| w.is_voiced(min_voiced)).collect();
    if !voiced.is_empty() {
        return voiced;
    }
    windows
        .iter()
        .max_by(|a, b| a.voiced.total_cmp(&b.voiced))
        .into_iter()
        .collect()
}

/// Mean of per-window probabilities (a file's utterance-level prediction).
pub fn mean_probs(probs: &[[f32; Emotion::COUNT]]) -> Option<[f32; Emotion::COUNT]> {
    if probs.is_empty() {
        return None;
    }
    let mut mean = [0.0f32; Emotion::COUNT];
    for p in probs {
        for (m, v) in mean.iter_mut().zip(p) {
            *m += v / probs.len() as f32;
        }
    }
    Some(mean)
}

/// Index of the largest probability.
pub fn argmax(probs: &[f32; Emotion::COUNT]) -> Emotion {
    let i = (0..Emotion::COUNT)
        .max_by(|&a, &b| probs[a].total_cmp(&probs[b]))
        .unwrap_or(0);
    Emotion::from_index(i).expect("index in range")
}

/// A model ready to classify feature windows.
pub struct Predictor {
    pub info: ModelInfo,
    models: Vec<Cnn>,
    device: Device,
}

impl Predictor {
    pub fn new(info: ModelInfo, models: Vec<Cnn>, device: Device) -> Predictor {
        Predictor {
            info,
            models,
            device,
        }
    }

    pub fn load(dir: &Path, device: Device) -> Result<Predictor, ModelError> {
        let (info, models) = ModelDir::load(dir, &device)?;
        Ok(Predictor {
            info,
            models,
            device,
        })
    }

    /// The networks of the ensemble.
    pub fn models(&self) -> &[Cnn] {
        &self.models
    }

    /// Probabilities of each window, standardised with the model's scaler.
    pub fn classify(&self, windows: &[&Window]) -> Vec<[f32; Emotion::COUNT]> {
        if windows.is_empty() {
            return Vec::new();
        }
        let rows: Vec<Vec<f32>> = windows
            .iter()
            .map(|w| self.info.scaler.scaled(&w.features))
            .collect();
        let refs: Vec<&[f32]> = rows.iter().map(Vec::as_slice).collect();
        // The ensemble's probability is the mean of its members', drawn towards uniform as far
        // as the window lies outside the training data, then calibrated: the order in which
        // training fits the temperature (its fold models carry the gate at temperature 1).
        let mut probs = crate::model::ensemble_probs(&self.models, &refs, &self.device);
        for (p, row) in probs.iter_mut().zip(&rows) {
            if let Some(reference) = self.info.novelty {
                let novelty = Scaler::novelty(row);
                let trust = (reference / novelty).min(1.0);
                log::trace!("window novelty {novelty} (training 99th percentile {reference})");
                for v in p.iter_mut() {
                    *v = trust * *v + (1.0 - trust) / Emotion::COUNT as f32;
                }
            }
            calibration::apply(p, self.info.temperature);
        }
        probs
    }

    /// Sets the temperatures its window and file probabilities are calibrated with (training,
    /// once fitted).
    pub fn set_temperatures(&mut self, window: f32, file: f32) {
        self.info.temperature = window;
        self.info.file_temperature = file;
    }

    /// A file's prediction: the [`Predictor::verdict`] of its usable windows.
    pub fn utterance(&self, windows: &[Window]) -> Option<[f32; Emotion::COUNT]> {
        self.verdict(&self.classify(&usable(windows, self.info.min_voiced)))
    }

    /// The verdict of a stretch of classified windows (a file in `predict` and `eval`, an
    /// utterance in `listen`): the mean of their probabilities, calibrated with the file
    /// temperature. `None` without any window.
    pub fn verdict(&self, probs: &[[f32; Emotion::COUNT]]) -> Option<[f32; Emotion::COUNT]> {
        mean_probs(probs).map(|mut mean| {
            calibration::apply(&mut mean, self.info.file_temperature);
            mean
        })
    }

    /// Judges a file's windows as they come, keeping only their probabilities: what
    /// [`Predictor::utterance`] and [`Predictor::classify`] of the voiced windows give, in memory
    /// that does not grow with the file.
    pub fn judge(&self) -> Judge<'_> {
        Judge {
            predictor: self,
            batch: Vec::new(),
            judged: Vec::new(),
            fallback: None,
            pauses: Vec::new(),
            paused: false,
        }
    }
}

/// A window classified by [`Judge`].
#[derive(Clone, Debug)]
pub struct Judged {
    pub t_start: f64,
    pub t_end: f64,
    pub voiced: f32,
    pub probs: [f32; Emotion::COUNT],
    /// A window with too little voiced speech came between this one and the judged window
    /// before it (`listen` wrote a `silence` event there): an utterance ended.
    pub after_pause: bool,
}

/// Windows judged as they come ([`Predictor::judge`]).
pub struct Judge<'a> {
    predictor: &'a Predictor,
    /// Voiced windows waiting to be classified together.
    batch: Vec<Window>,
    judged: Vec<Judged>,
    /// The most voiced window so far, while no window is voiced enough ([`usable`]'s fallback).
    fallback: Option<Window>,
    /// Whether a window with too little voiced speech came since the last voiced one, for each
    /// window of `batch`.
    pauses: Vec<bool>,
    /// A window with too little voiced speech came since the last voiced one.
    paused: bool,
}

impl Judge<'_> {
    const BATCH: usize = 32;

    pub fn push(&mut self, window: Window) {
        if window.is_voiced(self.predictor.info.min_voiced) {
            self.fallback = None;
            self.batch.push(window);
            self.pauses.push(std::mem::take(&mut self.paused));
            if self.batch.len() >= Self::BATCH {
                self.flush();
            }
            return;
        }
        self.paused = true;
        if self.judged.is_empty()
            && self.batch.is_empty()
            && self
                .fallback
                .as_ref()
                .is_none_or(|f| window.voiced >= f.voiced)
        {
            self.fallback = Some(window);
        }
    }

    fn flush(&mut self) {
        let windows: Vec<&Window> = self.batch.iter().collect();
        let probs = self.predictor.classify(&windows);
        let pauses = self.pauses.drain(..);
        self.judged
            .extend(self.batch.drain(..).zip(probs).zip(pauses).map(
                |((w, probs), after_pause)| Judged {
                    t_start: w.t_start,
                    t_end: w.t_end,
                    voiced: w.voiced,
                    probs,
                    after_pause,
                },
            ));
    }

    /// The voiced windows, judged, in order; and the file's prediction (their mean, or when no
    /// window was voiced enough, its most voiced window's; `None` without any window).
    pub fn finish(mut self) -> (Vec<Judged>, Option<[f32; Emotion::COUNT]>) {
        self.flush();
        let probs = if self.judged.is_empty() {
            self.fallback
                .map(|w| self.predictor.classify(&[&w]))
                .unwrap_or_default()
        } else {
            self.judged.iter().map(|j| j.probs).collect()
        };
        let verdict = self.predictor.verdict(&probs);
        (self.judged, verdict)
    }
}
