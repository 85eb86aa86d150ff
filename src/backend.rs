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
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    /// wgpu when a hardware adapter exists, else the CPU.
    Auto,
    /// wgpu, or an error.
    Wgpu,
    /// burn's CPU backend (flex).
    Cpu,
}

impl crate::choice::Choice for Backend {
    const ALL: &'static [(Backend, &'static str, &'static str)] = &[
        (
            Backend::Auto,
            "auto",
            "wgpu when a hardware adapter exists, else the CPU",
        ),
        (Backend::Wgpu, "wgpu", "wgpu, or an error"),
        (Backend::Cpu, "cpu", "burn's CPU backend (flex)"),
    ];
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
        Backend::Auto if hardware_adapter() == Some(false) => {
            log::info!("no hardware wgpu adapter; using the CPU backend");
            Ok(cpu())
        }
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

/// Whether wgpu sees an adapter that is not a software one, asked without opening a device:
/// opening one on a software adapter starts its driver (lavapipe: its JIT compiler and worker
/// threads, about 70 MB) for nothing when `auto` then picks the CPU backend. `None` when the
/// answer is not at hand at once (never on native platforms); the caller then opens the device.
fn hardware_adapter() -> Option<bool> {
    use burn::tensor::wgpu::wgpu;
    use std::future::Future;
    use std::task::{Context, Poll, Waker};
    crate::quiet::quietly(|| {
        let instance =
            wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle_from_env());
        let adapters = std::pin::pin!(instance.enumerate_adapters(wgpu::Backends::all()));
        match adapters.poll(&mut Context::from_waker(Waker::noop())) {
            Poll::Ready(adapters) => Some(
                adapters
                    .iter()
                    .any(|a| a.get_info().device_type != wgpu::DeviceType::Cpu),
            ),
            Poll::Pending => None,
        }
    })
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

#[cfg(test)]
mod tests {
    use super::*;

    /// `auto` runs on wgpu exactly when the adapter wgpu opens is a hardware one (on CI, with
    /// only lavapipe, it must say `cpu`), and the cheap probe never hides a hardware adapter.
    #[test]
    fn auto_uses_wgpu_only_on_a_hardware_adapter() {
        let auto = select(Backend::Auto).expect("auto always has a device");
        let probe = hardware_adapter();
        match wgpu() {
            Ok(gpu) if !gpu.software => {
                assert_eq!(auto.name, gpu.name);
                assert_ne!(probe, Some(false), "the probe missed {}", gpu.name);
            }
            _ => assert_eq!(auto.name, "cpu"),
        }
    }
}
