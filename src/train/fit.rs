//! Training one network: Adam, sparse categorical cross-entropy (optionally class-weighted and
//! label-smoothed, optionally with an L2 penalty), mini-batches, and either early stopping on a
//! validation split with the best weights restored, or a fixed number of epochs.

use burn::module::Module;
use burn::nn::loss::CrossEntropyLossConfig;
use burn::optim::decay::WeightDecayConfig;
use burn::optim::{AdamConfig, GradientsParams};
use burn::tensor::{Device, Int, Tensor, TensorData};
use serde::{Deserialize, Serialize};

use crate::folds::Rng;
use crate::labels::Emotion;
use crate::model::{Cnn, CnnConfig};

/// Optimisation settings.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct FitConfig {
    pub epochs: usize,
    pub patience: usize,
    pub batch: usize,
    pub learning_rate: f64,
    /// Weight each class's loss by total / (classes × class count).
    pub class_weights: bool,
    /// Label smoothing of the training loss, 0 (none) to below 1: the target puts `1 - a` on the
    /// labelled class plus `a / 5` on every class. Early stopping watches the unsmoothed loss.
    /// Absent from model directories written before it existed, which trained without it.
    #[serde(default)]
    pub label_smoothing: f64,
    /// L2 penalty on every weight (Adam's coupled weight decay: `penalty × weight` is added to
    /// each gradient), 0 for none. Absent from model directories written before it existed,
    /// which trained without it.
    #[serde(default)]
    pub weight_decay: f64,
    /// Stop when the validation loss has not improved for `patience` epochs and keep the best
    /// epoch (true), or train all `epochs` on the whole training part and keep the last (false:
    /// no validation split is held out). Absent from model directories written before it
    /// existed, which all stopped early.
    #[serde(default = "yes")]
    pub early_stopping: bool,
    pub seed: u64,
}

fn yes() -> bool {
    true
}

/// Standardised examples: `rows[i]` has label `labels[i]`.
pub struct Examples<'a> {
    pub rows: Vec<&'a [f32]>,
    pub labels: Vec<Emotion>,
}

/// What happened while fitting.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct FitLog {
    /// Epochs run.
    pub epochs: usize,
    /// Epoch (1-based) whose weights were kept: lowest validation loss, or the last epoch
    /// without early stopping; 0 when training diverged.
    pub best_epoch: usize,
    /// Validation loss of that epoch (none without early stopping).
    pub best_valid_loss: Option<f64>,
    /// Mean training loss (smoothed, penalty excluded) over the kept epoch's batches.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub train_loss: Option<f64>,
}

/// Trains a fresh network on `train`, stopping when the loss on `valid` has not improved for
/// `patience` epochs, and returns the network of the best epoch (in inference mode, on `device`).
/// Without early stopping `valid` is not used: all epochs run and the last is returned.
/// `on_epoch` receives the validation loss, or without early stopping the training loss.
pub fn fit(
    model_config: &CnnConfig,
    config: &FitConfig,
    train: &Examples,
    valid: &Examples,
    device: &Device,
    mut on_epoch: impl FnMut(usize, f64),
) -> (Cnn, FitLog) {
    let train_device = device.clone().autodiff();
    train_device.seed(config.seed);
    let mut model = model_config.init(&train_device);
    let mut optimizer = AdamConfig::new()
        .with_epsilon(1e-7)
        .with_weight_decay(
            (config.weight_decay > 0.0).then(|| WeightDecayConfig::new(config.weight_decay as f32)),
        )
        .init();
    let weights = config.class_weights.then(|| class_weights(&train.labels));
    let loss_fn = CrossEntropyLossConfig::new()
        .with_weights(weights.clone())
        .with_smoothing((config.label_smoothing > 0.0).then_some(config.label_smoothing as f32))
        .init(&train_device);
    let valid_loss_fn = CrossEntropyLossConfig::new()
        .with_weights(weights)
        .init(device);

    let mut rng = Rng::new(config.seed);
    let mut order: Vec<usize> = (0..train.rows.len()).collect();
    // One batch of every example is the same batch each epoch (a sum does not depend on the
    // order): built once, not copied anew every epoch, which for a linear model on every window
    // of a corpus would cost more than the step itself.
    let whole = (config.batch >= train.rows.len() && !train.rows.is_empty())
        .then(|| tensors(train, &order, &train_device));
    // The kept network, its validation loss, its epoch and its training loss.
    let mut best = (model.valid(), f64::INFINITY, 0usize, f64::NAN);
    let mut epochs = 0;
    for epoch in 1..=config.epochs {
        epochs = epoch;
        rng.shuffle(&mut order);
        // Summed on the device and read once an epoch: on a GPU every read is a synchronisation.
        let mut summed: Option<Tensor<1>> = None;
        for batch in order.chunks(config.batch) {
            let (x, y) = match &whole {
                Some((x, y)) => (x.clone(), y.clone()),
                None => tensors(train, batch, &train_device),
            };
            let loss = loss_fn.forward(model.forward(x), y);
            let weighted = loss.clone().detach() * batch.len() as f32;
            summed = Some(summed.map_or(weighted.clone(), |s| s + weighted));
            let grads = GradientsParams::from_grads(loss.backward(), &model);
            model = optimizer.step(config.learning_rate, model, grads);
        }
        let train_loss = summed.map_or(f64::NAN, |s| f64::from(s.into_scalar::<f32>()))
            / train.rows.len().max(1) as f64;
        if !config.early_stopping {
            on_epoch(epoch, train_loss);
            if epoch == config.epochs {
                // Diverged: nothing is kept, as when no validation loss was ever finite.
                let kept = if train_loss.is_finite() { epoch } else { 0 };
                best = (model.valid(), f64::NAN, kept, train_loss);
            }
            continue;
        }
        let candidate = model.valid();
        let valid_loss = mean_loss(
            &candidate,
            valid,
            |logits, y| valid_loss_fn.forward(logits, y),
            device,
        );
        on_epoch(epoch, valid_loss);
        if valid_loss < best.1 {
            best = (candidate, valid_loss, epoch, train_loss);
        } else if epoch - best.2 >= config.patience {
            break;
        }
    }
    let log = FitLog {
        epochs,
        best_epoch: best.2,
        best_valid_loss: config.early_stopping.then_some(best.1),
        train_loss: Some(best.3).filter(|l| l.is_finite()),
    };
    (best.0, log)
}

fn tensors(examples: &Examples, batch: &[usize], device: &Device) -> (Tensor<2>, Tensor<1, Int>) {
    let n = examples.rows[batch[0]].len();
    let data: Vec<f32> = batch
        .iter()
        .flat_map(|&i| examples.rows[i].iter().copied())
        .collect();
    let labels: Vec<i64> = batch
        .iter()
        .map(|&i| examples.labels[i].index() as i64)
        .collect();
    (
        Tensor::<2>::from_data(TensorData::new(data, [batch.len(), n]), device),
        Tensor::<1, Int>::from_data(TensorData::new(labels, [batch.len()]), device),
    )
}

fn mean_loss(
    model: &Cnn,
    examples: &Examples,
    loss: impl Fn(Tensor<2>, Tensor<1, Int>) -> Tensor<1>,
    device: &Device,
) -> f64 {
    let all: Vec<usize> = (0..examples.rows.len()).collect();
    let (mut sum, mut n) = (0.0, 0usize);
    for batch in all.chunks(256) {
        let (x, y) = tensors(examples, batch, device);
        sum += f64::from(loss(model.forward(x), y).into_scalar::<f32>()) * batch.len() as f64;
        n += batch.len();
    }
    sum / n.max(1) as f64
}

/// Balanced class weights (scikit-learn's `compute_class_weight("balanced")`). A class absent from
/// the training data has no samples to weigh; it gets 1, since burn requires positive weights.
fn class_weights(labels: &[Emotion]) -> Vec<f32> {
    let mut counts = [0usize; Emotion::COUNT];
    labels.iter().for_each(|l| counts[l.index()] += 1);
    let present = counts.iter().filter(|&&c| c > 0).count().max(1);
    counts
        .iter()
        .map(|&c| {
            if c == 0 {
                1.0
            } else {
                labels.len() as f32 / (present as f32 * c as f32)
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `n` rows of 4 features, anger when the first is +2 and sadness when it is -2, the others
    /// uniform noise in ±0.5.
    fn separable(n: usize) -> (Vec<Vec<f32>>, Vec<Emotion>) {
        let mut rng = Rng::new(7);
        (0..n)
            .map(|i| {
                let sign = if i % 2 == 0 { 1.0 } else { -1.0 };
                let row = (0..4)
                    .map(|j| {
                        if j == 0 {
                            2.0 * sign
                        } else {
                            (rng.next_u64() % 1000) as f32 / 1000.0 - 0.5
                        }
                    })
                    .collect();
                (
                    row,
                    if sign > 0.0 {
                        Emotion::Anger
                    } else {
                        Emotion::Sadness
                    },
                )
            })
            .unzip()
    }

    /// Settings the toy fits share; each test states those it depends on.
    fn toy_config() -> FitConfig {
        FitConfig {
            epochs: 40,
            patience: 40,
            batch: 16,
            learning_rate: 1e-2,
            class_weights: false,
            label_smoothing: 0.0,
            weight_decay: 0.0,
            early_stopping: true,
            seed: 1,
        }
    }

    /// Mean probability a model gives the labelled class of `examples`, after checking that it
    /// gets every one right.
    fn confidence_on(model: Cnn, examples: &Examples, device: &Device) -> f32 {
        let probs = crate::model::ensemble_probs(&[model], &examples.rows, device);
        for (p, l) in probs.iter().zip(&examples.labels) {
            assert_eq!(
                p.iter().cloned().fold(f32::MIN, f32::max),
                p[l.index()],
                "{p:?}"
            );
        }
        probs
            .iter()
            .zip(&examples.labels)
            .map(|(p, l)| p[l.index()])
            .sum::<f32>()
            / probs.len() as f32
    }

    /// Two classes told apart by the sign of the first feature, learnt without and with heavy
    /// label smoothing: both separate them, but smoothing keeps the network from certainty (its
    /// optimum puts 1 - a + a/5 = 0.6 on the labelled class at a = 0.5).
    #[test]
    fn label_smoothing_tempers_confidence() {
        let (rows, labels) = separable(64);
        let examples = || Examples {
            rows: rows.iter().map(Vec::as_slice).collect(),
            labels: labels.clone(),
        };
        let device = Device::flex();
        let confidence = |label_smoothing: f64| {
            let config = FitConfig {
                epochs: 60,
                patience: 60,
                batch: 16,
                label_smoothing,
                ..toy_config()
            };
            let model_config = CnnConfig::new(4).with_filters(8);
            let (model, _) = fit(
                &model_config,
                &config,
                &examples(),
                &examples(),
                &device,
                |_, _| {},
            );
            confidence_on(model, &examples(), &device)
        };
        let (plain, smoothed) = (confidence(0.0), confidence(0.5));
        assert!(plain > 0.9, "without smoothing: {plain}");
        assert!(
            smoothed < 0.75 && smoothed > 0.4,
            "with smoothing 0.5: {smoothed}"
        );
    }

    #[test]
    fn class_weights_are_balanced_and_positive() {
        use Emotion::*;
        // 3 anger, 1 sadness, no other class: weights 4 / (2 x 3) and 4 / (2 x 1).
        let w = class_weights(&[Anger, Anger, Anger, Sadness]);
        assert!((w[Anger.index()] - 2.0 / 3.0).abs() < 1e-6);
        assert!((w[Sadness.index()] - 2.0).abs() < 1e-6);
        assert!(
            w.iter().all(|&x| x > 0.0),
            "burn rejects non-positive weights: {w:?}"
        );
    }

    /// Without early stopping every epoch runs, nothing needs to validate, and the last epoch is
    /// kept; an L2 penalty keeps the linear model's weights, hence its confidence, smaller.
    #[test]
    fn without_early_stopping_all_epochs_run_and_a_penalty_shrinks_the_weights() {
        let (rows, labels) = separable(64);
        let examples = Examples {
            rows: rows.iter().map(Vec::as_slice).collect(),
            labels,
        };
        let none = Examples {
            rows: Vec::new(),
            labels: Vec::new(),
        };
        let device = Device::flex();
        let confidence = |weight_decay: f64| {
            let config = FitConfig {
                epochs: 40,
                patience: 1,
                batch: 64,
                learning_rate: 5e-2,
                class_weights: true,
                weight_decay,
                early_stopping: false,
                seed: 3,
                ..toy_config()
            };
            let model_config = CnnConfig::new(4).with_blocks(0);
            let mut epochs_seen = Vec::new();
            let (model, log) = fit(
                &model_config,
                &config,
                &examples,
                &none,
                &device,
                |e, loss| {
                    assert!(loss.is_finite());
                    epochs_seen.push(e);
                },
            );
            assert_eq!(epochs_seen, (1..=40).collect::<Vec<_>>());
            assert_eq!((log.epochs, log.best_epoch), (40, 40));
            assert_eq!(log.best_valid_loss, None);
            assert!(log.train_loss.is_some_and(f64::is_finite), "{log:?}");
            confidence_on(model, &examples, &device)
        };
        let (free, penalised) = (confidence(0.0), confidence(1.0));
        assert!(free > 0.95, "no penalty: {free}");
        assert!(
            penalised < free - 0.1,
            "penalty 1: {penalised}, none: {free}"
        );
    }
}
