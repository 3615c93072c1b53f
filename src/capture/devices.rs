//! Camera discovery: the `/dev/video*` devices that exist.

use std::path::{Path, PathBuf};

use super::CaptureError;

/// `/dev/video*`, sorted by number.
pub fn camera_devices() -> std::io::Result<Vec<PathBuf>> {
    let mut found: Vec<(u32, PathBuf)> = Vec::new();
    for entry in std::fs::read_dir("/dev")? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if let Some(n) = name
            .strip_prefix("video")
            .and_then(|n| n.parse::<u32>().ok())
        {
            found.push((n, entry.path()));
        }
    }
    found.sort();
    Ok(found.into_iter().map(|(_, p)| p).collect())
}

/// `auto` picks the first device; a path must exist. The error lists the devices there are.
pub fn resolve_camera(spec: &str) -> Result<PathBuf, CaptureError> {
    let present = camera_devices().map_err(CaptureError::Devices)?;
    if spec == "auto" {
        return present
            .first()
            .cloned()
            .ok_or_else(|| CaptureError::NoCamera {
                device: spec.to_string(),
                present: Vec::new(),
            });
    }
    let path = Path::new(spec);
    if !path.exists() {
        return Err(CaptureError::CameraNotFound {
            device: spec.to_string(),
            present,
        });
    }
    Ok(path.to_path_buf())
}
