//! Camera discovery: the `/dev/video*` devices that exist.

use std::path::{Path, PathBuf};

use super::CaptureError;

/// `/dev/video*`, sorted by number.
pub fn camera_devices() -> Vec<PathBuf> {
    let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir("/dev")
        .map(|entries| {
            entries
                .flatten()
                .filter_map(|e| {
                    let name = e.file_name().to_string_lossy().into_owned();
                    let n = name.strip_prefix("video")?.parse::<u32>().ok()?;
                    Some((n, e.path()))
                })
                .collect()
        })
        .unwrap_or_default();
    found.sort();
    found.into_iter().map(|(_, p)| p).collect()
}

/// `auto` picks the first device; a path must exist. The error lists the devices there are.
pub fn resolve_camera(spec: &str) -> Result<PathBuf, CaptureError> {
    let devices = camera_devices();
    let listing = || {
        if devices.is_empty() {
            "no /dev/video* devices exist on this machine".to_string()
        } else {
            format!(
                "devices present: {}",
                devices
                    .iter()
                    .map(|d| d.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        }
    };
    if spec == "auto" {
        return devices
            .first()
            .cloned()
            .ok_or_else(|| CaptureError::Camera {
                device: spec.to_string(),
                why: listing(),
            });
    }
    let path = Path::new(spec);
    if !path.exists() {
        return Err(CaptureError::Camera {
            device: spec.to_string(),
            why: format!("not found; {}", listing()),
        });
    }
    Ok(path.to_path_buf())
}
