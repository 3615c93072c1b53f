//! Screenshots of the window as PNG, written atomically: encoded into a temporary file beside the
//! target, then renamed over it, so a reader never sees half a file.

use std::io::Write;
use std::path::{Path, PathBuf};

use image::ImageEncoder;
use image::codecs::png::PngEncoder;

#[derive(Debug, thiserror::Error)]
pub enum ScreenshotError {
    #[error("screenshot {path}: the image is empty")]
    Empty { path: PathBuf },
    #[error("screenshot {path}: PNG encoding")]
    Encode {
        path: PathBuf,
        #[source]
        source: image::ImageError,
    },
    #[error("screenshot {path}: writing")]
    Flush {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Write(#[from] crate::fsio::WriteError),
}

/// Writes `image` (RGBA, as egui hands screenshots over) to `path` as PNG.
pub fn save_png(image: &egui::ColorImage, path: &Path) -> Result<(), ScreenshotError> {
    let [width, height] = image.size;
    if width == 0 || height == 0 {
        return Err(ScreenshotError::Empty {
            path: path.to_path_buf(),
        });
    }
    let rgba: Vec<u8> = image
        .pixels
        .iter()
        .flat_map(|p| p.to_srgba_unmultiplied())
        .collect();
    let mut file = crate::fsio::AtomicFile::create(path, &[])?;
    {
        let mut out = std::io::BufWriter::new(file.file());
        PngEncoder::new(&mut out)
            .write_image(
                &rgba,
                width as u32,
                height as u32,
                image::ExtendedColorType::Rgba8,
            )
            .map_err(|source| ScreenshotError::Encode {
                path: path.to_path_buf(),
                source,
            })?;
        out.flush().map_err(|source| ScreenshotError::Flush {
            path: path.to_path_buf(),
            source,
        })?;
    }
    file.commit()?;
    Ok(())
}

/// A name for the next screenshot in `dir`: `shiftlive-<unix seconds>-<n>.png`, the first free one.
pub fn next_screenshot_path(dir: &Path) -> PathBuf {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    (0u32..)
        .map(|n| dir.join(format!("shiftlive-{secs}-{n}.png")))
        .find(|p| !p.exists())
        .unwrap_or_else(|| dir.join(format!("shiftlive-{secs}.png")))
}
