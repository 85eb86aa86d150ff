//! The CNN of the reference work, in burn: two blocks of Conv1d → ReLU → MaxPool → BatchNorm →
//! spatial dropout, then global average pooling and a 5-way linear output.
//!
//! The standardised feature vector is read, as the reference's Keras code literally does, as
//! `n_features` channels of length 1 (`Layout::Channels`, the default: better figures here and
//! about 10x faster), or as a 1-channel sequence (`Layout::Sequence`: convolutions slide along
//! the feature axis, as in the reference's intent). Layer sizes live in [`CnnConfig`], saved next to the weights: it is the
//! contract between training and inference.

use burn::config::Config;
use burn::module::Module;
use burn::nn::conv::{Conv1d, Conv1dConfig};
use burn::nn::pool::{MaxPool1d, MaxPool1dConfig};
use burn::nn::{BatchNorm, BatchNormConfig, Linear, LinearConfig, PaddingConfig1d};
use burn::tensor::activation::relu;
use burn::tensor::activation::softmax;
use burn::tensor::{Device, Distribution, Tensor, TensorData};
use serde::{Deserialize, Serialize};

use crate::labels::Emotion;

/// How the feature vector is presented to the first convolution.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Layout {
    /// `[batch, 1, n_features]`: one channel, the features as a sequence.
    Sequence,
    /// `[batch, n_features, 1]`: the reference's literal layout, features as channels.
    Channels,
}

impl crate::choice::Choice for Layout {
    const ALL: &'static [(Layout, &'static str, &'static str)] = &[
        (
            Layout::Sequence,
            "sequence",
            "`[batch, 1, n_features]`: one channel, the features as a sequence",
        ),
        (
            Layout::Channels,
            "channels",
            "`[batch, n_features, 1]`: the reference's literal layout, features as channels",
        ),
    ];
}

/// Layer sizes of [`Cnn`].
#[derive(Config, Debug, PartialEq)]
pub struct CnnConfig {
    /// Length of the feature vector (88 for eGeMAPS, 6373 for ComParE).
    pub n_features: usize,
    #[config(default = "Layout::Channels")]
    pub layout: Layout,
    /// Filters of each convolution.
    #[config(default = 128)]
    pub filters: usize,
    #[config(default = 5)]
    pub kernel: usize,
    #[config(default = 2)]
    pub stride: usize,
    #[config(default = 2)]
    pub pool: usize,
    /// Probability of dropping a whole channel after each block (spatial dropout).
    #[config(default = 0.5)]
    pub dropout: f64,
}

/// One convolution block: Conv1d → ReLU → MaxPool → BatchNorm → spatial dropout.
#[derive(Module, Debug)]
pub struct Block {
    conv: Conv1d,
    pool: MaxPool1d,
    norm: BatchNorm,
    dropout: f64,
}

impl Block {
    fn new(channels_in: usize, config: &CnnConfig, device: &Device) -> Block {
        // In the channels layout the sequence has length 1: with `same` padding only the centre
        // tap of a kernel ever meets data, so a kernel of 1 is the same function, 5x cheaper.
        let kernel = match config.layout {
            Layout::Sequence => config.kernel,
            Layout::Channels => 1,
        };
        Block {
            conv: Conv1dConfig::new(channels_in, config.filters, kernel)
                .with_stride(config.stride)
                .with_padding(PaddingConfig1d::Same)
                .init(device),
            // `Same` padding keeps length-1 inputs (the channels layout) valid.
            pool: MaxPool1dConfig::new(config.pool)
                .with_padding(PaddingConfig1d::Same)
                .init(),
            norm: BatchNormConfig::new(config.filters).init(device),
            dropout: config.dropout,
        }
    }

    /// # Shapes
    /// - input: `[batch, channels_in, length]`
    /// - output: `[batch, filters, ceil(ceil(length / stride) / pool)]`
    fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        let x = relu(self.conv.forward(x)); // [b, filters, ceil(len / stride)]
        let x = self.pool.forward(x); // [b, filters, ceil(len / stride / pool)]
        let x = self.norm.forward(x);
        spatial_dropout(x, self.dropout)
    }
}

/// Drops whole channels with probability `p` while training (on an autodiff device), scaling the
/// rest by 1 / (1 - p), as Keras' SpatialDropout1D; the identity at inference.
fn spatial_dropout(x: Tensor<3>, p: f64) -> Tensor<3> {
    if p <= 0.0 || !x.device().is_autodiff() {
        return x;
    }
    let [batch, channels, _] = x.dims();
    let keep = 1.0 - p;
    let mask = Tensor::<3>::random(
        [batch, channels, 1],
        Distribution::Bernoulli(keep),
        &x.device(),
    );
    x * mask / keep
}

/// The emotion classifier.
#[derive(Module, Debug)]
pub struct Cnn {
    block1: Block,
    block2: Block,
    output: Linear,
    #[module(skip)]
    layout: Layout,
}

impl CnnConfig {
    /// Why this configuration cannot make a network (read from a damaged `model.json`), if so.
    pub fn problem(&self) -> Option<String> {
        let sizes = [self.filters, self.kernel, self.stride, self.pool];
        if sizes.contains(&0) {
            return Some(format!(
                "filters, kernel, stride and pool must be at least 1, not {sizes:?}"
            ));
        }
        if !(0.0..1.0).contains(&self.dropout) {
            return Some(format!("dropout {} is not a share below 1", self.dropout));
        }
        // Beyond these a damaged or hostile model.json would ask for absurd memory before any
        // weight is read; serd never trains anything near them.
        let limits = [
            ("n_features", self.n_features, 100_000),
            ("filters", self.filters, 4096),
            ("kernel", self.kernel, 64),
            ("stride", self.stride, 64),
            ("pool", self.pool, 64),
        ];
        for (name, value, limit) in limits {
            if value > limit {
                return Some(format!("{name} {value} is above {limit}"));
            }
        }
        None
    }

    /// Number of values the network's weights hold (parameters and batch-norm statistics); call
    /// on a config without a [`CnnConfig::problem`].
    pub fn parameters(&self) -> usize {
        let (channels_in, kernel) = match self.layout {
            Layout::Sequence => (1, self.kernel),
            Layout::Channels => (self.n_features, 1), // see Block::new
        };
        let f = self.filters;
        let conv1 = channels_in * f * kernel + f;
        let conv2 = f * f * kernel + f;
        let norms = 2 * 4 * f; // gamma, beta, running mean and variance per block
        let output = f * Emotion::COUNT + Emotion::COUNT;
        conv1 + conv2 + norms + output
    }

    /// A freshly initialised network on `device`.
    pub fn init(&self, device: &Device) -> Cnn {
        let channels_in = match self.layout {
            Layout::Sequence => 1,
            Layout::Channels => self.n_features,
        };
        Cnn {
            block1: Block::new(channels_in, self, device),
            block2: Block::new(self.filters, self, device),
            output: LinearConfig::new(self.filters, Emotion::COUNT).init(device),
            layout: self.layout,
        }
    }
}

impl Cnn {
    /// Class logits of standardised feature vectors.
    ///
    /// # Shapes
    /// - input: `[batch, n_features]`
    /// - output: `[batch, 5]` (logits, in [`Emotion`] order)
    pub fn forward(&self, features: Tensor<2>) -> Tensor<2> {
        let [batch, n] = features.dims();
        let x = match self.layout {
            Layout::Sequence => features.reshape([batch, 1, n]),
            Layout::Channels => features.reshape([batch, n, 1]),
        };
        let x = self.block2.forward(self.block1.forward(x)); // [b, filters, len]
        let x = x.mean_dim(2); // global average pooling: [b, filters, 1]
        let [batch, filters, _] = x.dims();
        self.output.forward(x.reshape([batch, filters])) // [b, 5]
    }
}

/// Class probabilities of standardised rows, in batches: the mean of the networks' (an ensemble).
pub fn ensemble_probs(
    models: &[Cnn],
    rows: &[&[f32]],
    device: &Device,
) -> Vec<[f32; Emotion::COUNT]> {
    let mut out = Vec::with_capacity(rows.len());
    for chunk in rows.chunks(256) {
        let n = chunk[0].len();
        let data: Vec<f32> = chunk.iter().flat_map(|r| r.iter().copied()).collect();
        let x = Tensor::<2>::from_data(TensorData::new(data, [chunk.len(), n]), device);
        // One upload, every member on the device, one read back: on a GPU each transfer is a
        // synchronisation, which costs more than the small networks themselves.
        let sum = models
            .iter()
            .map(|m| softmax(m.forward(x.clone()), 1))
            .reduce(|a, b| a + b)
            .expect("at least one network");
        let probs = (sum / models.len() as f32).into_data();
        let values: Vec<f32> = probs.try_to_vec().expect("f32 probabilities");
        out.extend(
            values
                .chunks_exact(Emotion::COUNT)
                .map(|p| <[f32; Emotion::COUNT]>::try_from(p).expect("5 classes")),
        );
    }
    out
}
