//! Choosing where the network runs: burn's wgpu backend when a GPU adapter exists, burn's CPU
//! backend (flex) otherwise. A software adapter (Mesa's lavapipe, which gives wgpu an adapter on
//! CPU-only machines) is used only when asked for (`wgpu`): `auto` prefers the CPU backend to it,
//! being faster on the same cores.
//!
//! burn's `Device::wgpu(..)` only fails later, in a worker thread, when there is no adapter;
//! `Device::wgpu_options().init()` fails at once with an error, which is what `auto` relies on.

use burn::tensor::Device;
use serde::{Deserialize, Serialize};

/// The `--backend` choice.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    /// wgpu when a hardware adapter exists, else the CPU.
    Auto,
    /// wgpu, or an error.
    Wgpu,
    /// burn's CPU backend (flex).
    Cpu,
}

/// A device and its name for reports: `wgpu:ADAPTER` or `cpu`.
#[derive(Clone, Debug)]
pub struct Selected {
    pub device: Device,
    pub name: String,
    /// A software adapter (lavapipe/llvmpipe): runs on the CPU, slower than burn's CPU backend.
    pub software: bool,
}

#[derive(Debug, thiserror::Error)]
#[error(
    "no wgpu adapter: {0} (use --backend cpu, or install a Vulkan driver such as Mesa's lavapipe)"
)]
pub struct NoAdapter(String);

/// The CPU device.
pub fn cpu() -> Selected {
    Selected {
        device: Device::flex(),
        name: "cpu".into(),
        software: false,
    }
}

/// The device for a `--backend` choice.
pub fn select(backend: Backend) -> Result<Selected, NoAdapter> {
    match backend {
        Backend::Cpu => Ok(cpu()),
        Backend::Wgpu => wgpu(),
        Backend::Auto => Ok(match wgpu() {
            Ok(gpu) if !gpu.software => gpu,
            Ok(gpu) => {
                log::info!(
                    "{} is a software adapter; using the CPU backend (faster)",
                    gpu.name
                );
                cpu()
            }
            Err(e) => {
                log::info!("{e}; using the CPU backend");
                cpu()
            }
        }),
    }
}

fn wgpu() -> Result<Selected, NoAdapter> {
    // Initialising twice (two commands in one process, tests) reports "already initialised":
    // the device is then the same one.
    static DEVICE: std::sync::OnceLock<Result<Selected, String>> = std::sync::OnceLock::new();
    DEVICE
        .get_or_init(|| {
            // Vulkan drivers print their own complaints (Mesa: "XDG_RUNTIME_DIR is invalid").
            crate::quiet::quietly(|| Device::wgpu_options().init_with_setup())
                .map(|(device, setup)| {
                    let info = setup.adapter.get_info();
                    Selected {
                        device,
                        name: format!("wgpu:{}", info.name),
                        software: info.device_type == burn::tensor::wgpu::wgpu::DeviceType::Cpu,
                    }
                })
                .map_err(|e| e.to_string())
        })
        .clone()
        .map_err(NoAdapter)
}
