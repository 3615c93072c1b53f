//! Decoding an item's frames, with an optional cache kept across epochs.
//!
//! ```text
//! video:  filesrc ! decodebin ! videoconvert ! RGB ! appsink   (data::gst), every frame
//! frames: img_00001.jpg ... listed and sorted; only the sampled ones are decoded (GStreamer jpegdec)
//! ```
//!
//! A video is decoded whole: its frame count is only known at the end, and the sampler needs it
//! first. Without the `capture` feature decoding returns [`DataError::NoCapture`].

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use super::{DataError, Item, Layout};
use crate::preprocess::FrameRef;

/// An owned, packed RGB frame.
#[derive(Debug, Clone, PartialEq)]
pub struct Image {
    pub data: Vec<u8>,
    pub width: usize,
    pub height: usize,
}

impl Image {
    pub fn as_frame_ref(&self) -> FrameRef<'_> {
        FrameRef::rgb(&self.data, self.width, self.height)
    }
}

/// Decoded frames kept across epochs, so a small data set is decoded once. Holds at most
/// `max_bytes` of pixels: past that, new entries are not kept (what is kept stays; the content
/// of batches never depends on the cache). Videos that failed are remembered too, so a bad file
/// is not decoded again every epoch.
#[derive(Debug)]
pub struct DecodeCache {
    max_bytes: usize,
    inner: Mutex<CacheInner>,
}

#[derive(Debug, Default)]
struct CacheInner {
    videos: HashMap<PathBuf, Arc<Vec<Arc<Image>>>>,
    images: HashMap<PathBuf, Arc<Image>>,
    failed: HashMap<PathBuf, DataError>,
    bytes: usize,
}

impl DecodeCache {
    pub fn new(max_bytes: usize) -> Self {
        Self {
            max_bytes,
            inner: Mutex::new(CacheInner::default()),
        }
    }

    /// Bytes of pixels held.
    pub fn bytes(&self) -> usize {
        self.lock().bytes
    }

    /// Videos and images held.
    pub fn entries(&self) -> usize {
        let inner = self.lock();
        inner.videos.len() + inner.images.len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, CacheInner> {
        // A worker that panicked while holding the lock left plain maps behind: still usable.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn video(&self, path: &Path) -> Option<Result<Arc<Vec<Arc<Image>>>, DataError>> {
        let inner = self.lock();
        if let Some(err) = inner.failed.get(path) {
            return Some(Err(err.clone()));
        }
        inner.videos.get(path).cloned().map(Ok)
    }

    fn keep_video(&self, path: &Path, frames: &Arc<Vec<Arc<Image>>>) {
        let size: usize = frames.iter().map(|f| f.data.len()).sum();
        let mut inner = self.lock();
        if inner.bytes + size <= self.max_bytes && !inner.videos.contains_key(path) {
            inner.bytes += size;
            inner.videos.insert(path.to_path_buf(), frames.clone());
        }
    }

    fn keep_failure(&self, path: &Path, err: &DataError) {
        self.lock().failed.insert(path.to_path_buf(), err.clone());
    }

    fn image(&self, path: &Path) -> Option<Arc<Image>> {
        self.lock().images.get(path).cloned()
    }

    fn keep_image(&self, path: &Path, image: &Arc<Image>) {
        let mut inner = self.lock();
        if inner.bytes + image.data.len() <= self.max_bytes && !inner.images.contains_key(path) {
            inner.bytes += image.data.len();
            inner.images.insert(path.to_path_buf(), image.clone());
        }
    }
}

/// An item ready to be sampled: its frame count is known, frames are fetched by index.
pub(crate) enum Opened {
    Video(Arc<Vec<Arc<Image>>>),
    Frames(Vec<PathBuf>),
}

impl Opened {
    pub(crate) fn open(item: &Item, cache: Option<&DecodeCache>) -> Result<Self, DataError> {
        match item.layout {
            Layout::Video => {
                if let Some(hit) = cache.and_then(|c| c.video(&item.path)) {
                    return hit.map(Opened::Video);
                }
                match decode_video(&item.path) {
                    Ok(frames) => {
                        let frames = Arc::new(frames.into_iter().map(Arc::new).collect::<Vec<_>>());
                        if let Some(c) = cache {
                            c.keep_video(&item.path, &frames);
                        }
                        Ok(Opened::Video(frames))
                    }
                    Err(err) => {
                        if let Some(c) = cache {
                            c.keep_failure(&item.path, &err);
                        }
                        Err(err)
                    }
                }
            }
            Layout::Frames => list_frames(&item.path).map(Opened::Frames),
        }
    }

    pub(crate) fn len(&self) -> usize {
        match self {
            Opened::Video(frames) => frames.len(),
            Opened::Frames(paths) => paths.len(),
        }
    }

    pub(crate) fn frame(
        &self,
        index: usize,
        cache: Option<&DecodeCache>,
    ) -> Result<Arc<Image>, DataError> {
        match self {
            Opened::Video(frames) => frames
                .get(index.min(frames.len().saturating_sub(1)))
                .cloned()
                .ok_or_else(|| DataError::Options("a video with no frames".into())),
            Opened::Frames(paths) => {
                let Some(path) = paths.get(index.min(paths.len().saturating_sub(1))) else {
                    return Err(DataError::Options("a frame folder with no frames".into()));
                };
                if let Some(hit) = cache.and_then(|c| c.image(path)) {
                    return Ok(hit);
                }
                let image = Arc::new(decode_image(path)?);
                if let Some(c) = cache {
                    c.keep_image(path, &image);
                }
                Ok(image)
            }
        }
    }
}

/// The `img_*.jpg` (or `.jpeg`, `.png`) files of a frame folder, sorted by name (`img_00001.jpg`
/// first).
pub fn list_frames(dir: &Path) -> Result<Vec<PathBuf>, DataError> {
    if !dir.exists() {
        return Err(DataError::Missing {
            path: dir.to_path_buf(),
            what: "frame folder".into(),
        });
    }
    let entries = std::fs::read_dir(dir).map_err(|e| DataError::io(dir, e))?;
    let mut frames = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| DataError::io(dir, e))?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        let lower = name.to_ascii_lowercase();
        let image = [".jpg", ".jpeg", ".png"]
            .iter()
            .any(|ext| lower.ends_with(ext));
        if lower.starts_with("img_") && image {
            frames.push(entry.path());
        }
    }
    if frames.is_empty() {
        return Err(DataError::decode(
            dir,
            "no img_*.jpg or img_*.png frames in this folder",
        ));
    }
    frames.sort();
    Ok(frames)
}

/// Every frame of a video file, as packed RGB.
#[cfg(feature = "capture")]
pub fn decode_video(path: &Path) -> Result<Vec<Image>, DataError> {
    decode_all(path, "video")
}

/// One image file (JPEG, PNG, ...) as packed RGB.
#[cfg(feature = "capture")]
pub fn decode_image(path: &Path) -> Result<Image, DataError> {
    let mut frames = decode_all(path, "image")?;
    frames
        .pop()
        .ok_or_else(|| DataError::decode(path, "no picture in the file"))
}

#[cfg(feature = "capture")]
fn decode_all(path: &Path, what: &str) -> Result<Vec<Image>, DataError> {
    if !path.exists() {
        return Err(DataError::Missing {
            path: path.to_path_buf(),
            what: what.to_string(),
        });
    }
    super::gst::decode_file(path)
}

#[cfg(not(feature = "capture"))]
pub fn decode_video(path: &Path) -> Result<Vec<Image>, DataError> {
    Err(DataError::NoCapture {
        path: path.to_path_buf(),
    })
}

#[cfg(not(feature = "capture"))]
pub fn decode_image(path: &Path) -> Result<Image, DataError> {
    Err(DataError::NoCapture {
        path: path.to_path_buf(),
    })
}
