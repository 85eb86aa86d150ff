//! The CNN of the reference work, in burn: two blocks of Conv1d → ReLU → MaxPool → BatchNorm →
//! spatial dropout, then global average pooling and a 5-way linear output. With fewer blocks
//! ([`CnnConfig::blocks`]) the same module is shallower, down to the output layer alone: a linear
//! model of the standardised features.
//!
//! The standardised feature vector is read, as the reference's Keras code literally does, as
//! `n_features` channels of length 1 (`Layout::Channels`, the default: better figures here and
//! about 10x faster), or as a 1-channel sequence (`Layout::Sequence`: convolutions slide along
//! the feature axis, as in the reference's intent). Layer sizes live in [`CnnConfig`], saved next to the weights: it is the
//! contract between training and inference.

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
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CnnConfig {
    /// Length of the feature vector (88 for eGeMAPS, 6373 for ComParE).
    pub n_features: usize,
    pub layout: Layout,
    /// Filters of each convolution.
    pub filters: usize,
    pub kernel: usize,
    pub stride: usize,
    pub pool: usize,
    /// Probability of dropping a whole channel after each block (spatial dropout).
    pub dropout: f64,
    /// Convolution blocks before the output layer, 0 to 2. With none the network is its output
    /// layer alone: a linear map of the standardised features (multinomial logistic regression).
    /// Absent from model directories written before it existed, which all had two.
    #[serde(default = "two")]
    pub blocks: usize,
}

fn two() -> usize {
    2
}

impl CnnConfig {
    /// The reference's network for `n_features` inputs: channels layout, two blocks of 128
    /// filters (kernel 5, stride 2, pool 2), spatial dropout 0.5.
    pub fn new(n_features: usize) -> CnnConfig {
        CnnConfig {
            n_features,
            layout: Layout::Channels,
            filters: 128,
            kernel: 5,
            stride: 2,
            pool: 2,
            dropout: 0.5,
            blocks: 2,
        }
    }

    pub fn with_layout(self, layout: Layout) -> CnnConfig {
        CnnConfig { layout, ..self }
    }

    pub fn with_filters(self, filters: usize) -> CnnConfig {
        CnnConfig { filters, ..self }
    }

    pub fn with_dropout(self, dropout: f64) -> CnnConfig {
        CnnConfig { dropout, ..self }
    }

    pub fn with_blocks(self, blocks: usize) -> CnnConfig {
        CnnConfig { blocks, ..self }
    }
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
    block1: Option<Block>,
    block2: Option<Block>,
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
        if self.blocks > 2 {
            return Some(format!("blocks must be 0, 1 or 2, not {}", self.blocks));
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
        let norm = 4 * f; // gamma, beta, running mean and variance
        let output = |inputs: usize| inputs * Emotion::COUNT + Emotion::COUNT;
        match self.blocks {
            0 => output(self.n_features),
            1 => conv1 + norm + output(f),
            _ => conv1 + conv2 + 2 * norm + output(f),
        }
    }

    /// A freshly initialised network on `device`.
    pub fn init(&self, device: &Device) -> Cnn {
        let channels_in = match self.layout {
            Layout::Sequence => 1,
            Layout::Channels => self.n_features,
        };
        let outputs_in = if self.blocks == 0 {
            self.n_features
        } else {
            self.filters
        };
        Cnn {
            block1: (self.blocks >= 1).then(|| Block::new(channels_in, self, device)),
            block2: (self.blocks >= 2).then(|| Block::new(self.filters, self, device)),
            output: LinearConfig::new(outputs_in, Emotion::COUNT).init(device),
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
        let Some(block1) = &self.block1 else {
            return self.output.forward(features); // no blocks: a linear map
        };
        let [batch, n] = features.dims();
        let x = match self.layout {
            Layout::Sequence => features.reshape([batch, 1, n]),
            Layout::Channels => features.reshape([batch, n, 1]),
        };
        let mut x = block1.forward(x); // [b, filters, len]
        if let Some(block2) = &self.block2 {
            x = block2.forward(x);
        }
        let x = x.mean_dim(2); // global average pooling: [b, filters, 1]
        let [batch, filters, _] = x.dims();
        self.output.forward(x.reshape([batch, filters])) // [b, 5]
    }
}

/// Rows of one length as a `[rows, length]` tensor on `device`: how networks read examples, in
/// training and in inference alike.
pub fn rows_tensor<'r>(rows: impl IntoIterator<Item = &'r [f32]>, device: &Device) -> Tensor<2> {
    let (mut data, mut count, mut length) = (Vec::new(), 0, 0);
    for row in rows {
        length = row.len();
        data.extend_from_slice(row);
        count += 1;
    }
    Tensor::<2>::from_data(TensorData::new(data, [count, length]), device)
}

/// Class probabilities of standardised rows, in batches: the mean of the networks' (an ensemble).
pub fn ensemble_probs(
    models: &[Cnn],
    rows: &[&[f32]],
    device: &Device,
) -> Vec<[f32; Emotion::COUNT]> {
    let mut out = Vec::with_capacity(rows.len());
    for chunk in rows.chunks(256) {
        let x = rows_tensor(chunk.iter().copied(), device);
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

#[cfg(test)]
mod tests {
    use super::*;
    use burn::module::Param;

    /// Values of every parameter and batch-norm statistic of `model`.
    fn values(model: &Cnn) -> usize {
        let mut n = 0;
        model.visit(&mut Counter(&mut n));
        n
    }

    struct Counter<'a>(&'a mut usize);

    impl burn::module::ModuleVisitor for Counter<'_> {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            *self.0 += param.val().dims().iter().product::<usize>();
        }
    }

    /// `parameters()` is what the weight files' size is checked against, for every depth and
    /// layout; every depth maps a batch of rows to five logits.
    #[test]
    fn every_depth_has_the_stated_size_and_five_logits() {
        let device = Device::flex();
        for layout in [Layout::Channels, Layout::Sequence] {
            for blocks in 0..=2 {
                let config = CnnConfig::new(88)
                    .with_layout(layout)
                    .with_filters(8)
                    .with_blocks(blocks);
                assert_eq!(config.problem(), None);
                let model = config.init(&device);
                assert_eq!(values(&model), config.parameters(), "{layout:?} {blocks}");
                let logits = model.forward(Tensor::<2>::ones([3, 88], &device));
                assert_eq!(logits.dims(), [3, Emotion::COUNT], "{layout:?} {blocks}");
            }
        }
        assert!(CnnConfig::new(88).with_blocks(3).problem().is_some());
    }

    /// With no blocks the network is one linear map: logits of a sum are the sum of the logits,
    /// less the bias counted twice.
    #[test]
    fn no_blocks_is_a_linear_model() {
        let device = Device::flex();
        let model = CnnConfig::new(6).with_blocks(0).init(&device);
        let logits = |row: [f32; 6]| -> Vec<f32> {
            let x = Tensor::<2>::from_data(TensorData::new(row.to_vec(), [1, 6]), &device);
            model.forward(x).into_data().try_to_vec().unwrap()
        };
        let (a, b) = (
            [1.0, -2.0, 0.5, 3.0, 0.0, 1.0],
            [0.5, 1.0, -1.0, 0.0, 2.0, -3.0],
        );
        let sum: [f32; 6] = std::array::from_fn(|i| a[i] + b[i]);
        let (la, lb, ls, l0) = (logits(a), logits(b), logits(sum), logits([0.0; 6]));
        assert_eq!(ls.len(), Emotion::COUNT);
        for k in 0..Emotion::COUNT {
            let expected = la[k] + lb[k] - l0[k];
            assert!((ls[k] - expected).abs() < 1e-5, "class {k}: {ls:?}");
        }
    }

    /// Model directories written before `blocks` existed describe two-block networks.
    #[test]
    fn a_description_without_blocks_has_two() {
        let mut json = serde_json::to_value(CnnConfig::new(88).with_blocks(0)).unwrap();
        json.as_object_mut().unwrap().remove("blocks");
        let config: CnnConfig = serde_json::from_value(json).unwrap();
        assert_eq!(config, CnnConfig::new(88));
    }
}
