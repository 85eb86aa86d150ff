//! Training one network: Adam, sparse categorical cross-entropy (optionally class-weighted and
//! label-smoothed, optionally with an L2 penalty), mini-batches, and either early stopping on a
//! validation split with the best weights restored, or a fixed number of epochs.

use burn::module::Module;
use burn::optim::decay::WeightDecayConfig;
use burn::optim::{AdamConfig, GradientsParams};
use burn::tensor::activation::log_softmax;
use burn::tensor::{Device, Tensor, TensorData};
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
    /// Groups whose total loss weights are made equal, whatever their sizes (classes balanced
    /// within each group with `class_weights`). Absent from model directories written before it
    /// existed, which trained without it.
    #[serde(default)]
    pub balance: Balance,
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

/// What the loss weights balance besides the classes ([`weights`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Balance {
    /// The examples are one group.
    #[default]
    None,
    /// Every corpus weighs the same.
    Corpus,
    /// Every speaker weighs the same.
    Speaker,
}

impl crate::choice::Choice for Balance {
    const ALL: &'static [(Balance, &'static str, &'static str)] = &[
        (
            Balance::None,
            "none",
            "Classes balanced over all the data (with class weights)",
        ),
        (
            Balance::Corpus,
            "corpus",
            "Every corpus weighs the same in the loss, classes balanced within each",
        ),
        (
            Balance::Speaker,
            "speaker",
            "Every speaker weighs the same in the loss, classes balanced within each",
        ),
    ];
}

/// Standardised examples: `rows[i]` has label `labels[i]` and weighs `weights[i]` in the loss
/// (see [`weights`]).
pub struct Examples<'a> {
    pub rows: Vec<&'a [f32]>,
    pub labels: Vec<Emotion>,
    pub weights: Vec<f32>,
}

/// Loss weights of examples with `labels` from `groups` (their corpora), averaging 1: with
/// `by_group` every group weighs the same in total, else the examples are one group; with
/// `by_class` every class present in a group weighs the same within it (scikit-learn's
/// `compute_class_weight("balanced")` per group), else every example of a group the same.
pub fn weights(labels: &[Emotion], groups: &[&str], by_class: bool, by_group: bool) -> Vec<f32> {
    let group_of = |i: usize| if by_group { groups[i] } else { "" };
    let mut counts: std::collections::HashMap<(&str, Option<Emotion>), usize> =
        std::collections::HashMap::new();
    for (i, &label) in labels.iter().enumerate() {
        *counts
            .entry((group_of(i), by_class.then_some(label)))
            .or_default() += 1;
    }
    // Cells (group, class) per group: each cell gets 1 / (groups × cells in its group).
    let mut cells: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
    for (group, _) in counts.keys() {
        *cells.entry(group).or_default() += 1;
    }
    let n = labels.len() as f32;
    labels
        .iter()
        .enumerate()
        .map(|(i, &label)| {
            let group = group_of(i);
            let cell = counts[&(group, by_class.then_some(label))] as f32;
            n / (cells.len() as f32 * cells[group] as f32 * cell)
        })
        .collect()
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
    let smoothing = config.label_smoothing as f32;

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
            let (x, y, w) = match &whole {
                Some((x, y, w)) => (x.clone(), y.clone(), w.clone()),
                None => tensors(train, batch, &train_device),
            };
            let loss = weighted_cross_entropy(model.forward(x), y, w, smoothing);
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
        let valid_loss = mean_loss(&candidate, valid, device);
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

/// A batch's inputs, labels (one-hot) and loss weights.
fn tensors(
    examples: &Examples,
    batch: &[usize],
    device: &Device,
) -> (Tensor<2>, Tensor<2>, Tensor<1>) {
    let targets: Vec<f32> = batch
        .iter()
        .flat_map(|&i| {
            let label = examples.labels[i].index();
            (0..Emotion::COUNT).map(move |k| if k == label { 1.0 } else { 0.0 })
        })
        .collect();
    let weights: Vec<f32> = batch
        .iter()
        .map(|&i| examples.weights.get(i).copied().unwrap_or(1.0))
        .collect();
    (
        crate::model::rows_tensor(batch.iter().map(|&i| examples.rows[i]), device),
        Tensor::<2>::from_data(
            TensorData::new(targets, [batch.len(), Emotion::COUNT]),
            device,
        ),
        Tensor::<1>::from_data(TensorData::new(weights, [batch.len()]), device),
    )
}

/// Sparse categorical cross-entropy, label-smoothed (the target keeps `1 - smoothing` on the
/// labelled class plus `smoothing / classes` on every class) and weighted per example: the
/// weighted mean `Σ wᵢ lᵢ / Σ wᵢ`, which with class weights is burn's (and Keras's) weighted loss.
fn weighted_cross_entropy(
    logits: Tensor<2>,
    one_hot: Tensor<2>,
    weights: Tensor<1>,
    smoothing: f32,
) -> Tensor<1> {
    let classes = one_hot.dims()[1] as f32;
    let target = one_hot * (1.0 - smoothing) + smoothing / classes;
    let per_example = (target * log_softmax(logits, 1))
        .sum_dim(1)
        .squeeze_dim::<1>(1)
        .neg();
    (per_example * weights.clone()).sum() / weights.sum()
}

/// The weighted, unsmoothed loss over all of `examples`.
fn mean_loss(model: &Cnn, examples: &Examples, device: &Device) -> f64 {
    let all: Vec<usize> = (0..examples.rows.len()).collect();
    let (mut sum, mut total) = (0.0, 0.0);
    for batch in all.chunks(256) {
        let (x, y, w) = tensors(examples, batch, device);
        let weight = f64::from(w.clone().sum().into_scalar::<f32>());
        let loss = weighted_cross_entropy(model.forward(x), y, w, 0.0);
        sum += f64::from(loss.into_scalar::<f32>()) * weight;
        total += weight;
    }
    if total > 0.0 {
        sum / total
    } else {
        0.0
    }
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
            balance: Balance::None,
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
            weights: vec![1.0; rows.len()],
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

    /// Class weights are scikit-learn's "balanced" ones; corpus weights give every corpus the
    /// same total, classes balanced within each; all average 1.
    #[test]
    fn loss_weights_balance_classes_and_corpora() {
        use Emotion::*;
        let close = |a: &[f32], b: &[f32]| a.iter().zip(b).all(|(x, y)| (x - y).abs() < 1e-6);
        // 3 anger, 1 sadness: 4 / (2 x 3) and 4 / (2 x 1).
        let labels = [Anger, Anger, Anger, Sadness];
        let one = [""; 4];
        let by_class = weights(&labels, &one, true, false);
        assert!(
            close(&by_class, &[2.0 / 3.0, 2.0 / 3.0, 2.0 / 3.0, 2.0]),
            "{by_class:?}"
        );
        assert!(close(&weights(&labels, &one, false, false), &[1.0; 4]));
        // Corpus a: 3 anger, 1 sadness; corpus b: 2 neutral. Each corpus weighs 3 of the 6.
        let labels = [Anger, Anger, Anger, Sadness, Neutral, Neutral];
        let corpora = ["a", "a", "a", "a", "b", "b"];
        let w = weights(&labels, &corpora, false, true);
        assert!(close(&w, &[0.75, 0.75, 0.75, 0.75, 1.5, 1.5]), "{w:?}");
        let w = weights(&labels, &corpora, true, true);
        assert!(close(&w, &[0.5, 0.5, 0.5, 1.5, 1.5, 1.5]), "{w:?}");
        assert!((w.iter().sum::<f32>() - 6.0).abs() < 1e-5);
    }

    /// The weighted loss is the weighted mean of the examples' losses, smoothing included:
    /// checked against the formula on two examples.
    #[test]
    fn weighted_cross_entropy_is_the_weighted_mean() {
        let device = Device::flex();
        let matrix = |v: Vec<f32>| Tensor::<2>::from_data(TensorData::new(v, [2, 5]), &device);
        // Example 1: logits (2, 0, 0, 0, 0), label 0. Example 2: (0, 1, 0, 0, 0), label 0.
        let logits = matrix(vec![2.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0]);
        let one_hot = matrix(vec![1.0, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0]);
        let weights = Tensor::<1>::from_data(TensorData::new(vec![1.0f32, 3.0], [2]), &device);
        let loss = |a: f32| {
            weighted_cross_entropy(logits.clone(), one_hot.clone(), weights.clone(), a)
                .into_scalar::<f32>()
        };
        let log_z1 = (2f32.exp() + 4.0).ln();
        let log_z2 = (1f32.exp() + 4.0).ln();
        let (l1, l2) = (log_z1 - 2.0, log_z2);
        assert!((loss(0.0) - (l1 + 3.0 * l2) / 4.0).abs() < 1e-5);
        // Smoothed: the target adds a / 5 on every class, so the loss adds a / 5 × Σ_k -log p_k.
        let a = 0.5f32;
        let (s1, s2) = (5.0 * log_z1 - 2.0, 5.0 * log_z2 - 1.0);
        let expect = ((1.0 - a) * l1 + a / 5.0 * s1 + 3.0 * ((1.0 - a) * l2 + a / 5.0 * s2)) / 4.0;
        assert!((loss(a) - expect).abs() < 1e-5, "{} vs {expect}", loss(a));
    }

    /// Without early stopping every epoch runs, nothing needs to validate, and the last epoch is
    /// kept; an L2 penalty keeps the linear model's weights, hence its confidence, smaller.
    #[test]
    fn without_early_stopping_all_epochs_run_and_a_penalty_shrinks_the_weights() {
        let (rows, labels) = separable(64);
        let examples = Examples {
            weights: weights(&labels, &vec![""; labels.len()], true, false),
            rows: rows.iter().map(Vec::as_slice).collect(),
            labels,
        };
        let none = Examples {
            rows: Vec::new(),
            labels: Vec::new(),
            weights: Vec::new(),
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
