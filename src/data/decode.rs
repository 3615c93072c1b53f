//! Decoding an item's frames, with an optional cache kept across epochs.
//!
//! ```text
//! video:  filesrc ! decodebin ! videoconvert ! RGB ! appsink   streamed, only the sampled frames
//!         kept (data::stream); decoded whole (data::gst) when a cache keeps it across epochs
//! frames: img_1.jpg ... listed in number order (data::frames); only the sampled ones decoded
//! ```
//!
//! A [`FrameSampler`] says which frames it takes once the count is known and gets them as they
//! are decoded. Without the `capture` feature decoding returns [`DataError::NoCapture`].

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use super::{DataError, FrameFolder, Item, Layout};
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

/// Takes the frames of one clip (or several) as they are decoded: first the frame count is
/// known and [`FrameSampler::plan`] says which frame each slot takes, then each planned frame is
/// handed to [`FrameSampler::take`], once per slot that takes it, in decoding order.
pub trait FrameSampler {
    /// The frame index of each slot, for an item of `frames` frames (every index below it).
    /// Called again, to start over, when a video turns out to hold another count than planned.
    fn plan(&mut self, frames: usize) -> Vec<usize>;
    /// Slot `slot` gets `image`; nothing keeps it after the call.
    fn take(&mut self, slot: usize, image: &Image) -> Result<(), DataError>;
}

/// The slots of a plan grouped by the frame they take, in frame order.
pub(crate) fn slots_by_frame(plan: &[usize]) -> BTreeMap<usize, Vec<usize>> {
    let mut by_frame: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
    for (slot, &frame) in plan.iter().enumerate() {
        by_frame.entry(frame).or_default().push(slot);
    }
    by_frame
}

/// Hands the planned frames of `item` to `sampler`. A frame folder's frames are decoded one by
/// one; a video is decoded whole when there is a cache to keep it in (training reads it again
/// every epoch), else streamed, only the planned frames kept ([`decode_sampled`]).
pub(crate) fn sample_item(
    item: &Item,
    cache: Option<&DecodeCache>,
    sampler: &mut dyn FrameSampler,
) -> Result<(), DataError> {
    match (item.layout, cache) {
        (Layout::Frames, _) => {
            let paths = list_frames(&item.path)?;
            hand_planned(sampler, paths.len(), |frame| {
                let path = &paths[frame];
                if let Some(hit) = cache.and_then(|c| c.image(path)) {
                    return Ok(hit);
                }
                let image = Arc::new(decode_image(path)?);
                if let Some(c) = cache {
                    c.keep_image(path, &image);
                }
                Ok(image)
            })
        }
        (Layout::Video, Some(cache)) => {
            let frames = cached_video(&item.path, cache)?;
            hand_planned(sampler, frames.len(), |frame| Ok(frames[frame].clone()))
        }
        (Layout::Video, None) => decode_sampled(&item.path, sampler).map(|_| ()),
    }
}

/// Plans an item of `frames` frames (at least one) and hands each planned frame, got from
/// `fetch`, to the slots that take it.
fn hand_planned(
    sampler: &mut dyn FrameSampler,
    frames: usize,
    mut fetch: impl FnMut(usize) -> Result<Arc<Image>, DataError>,
) -> Result<(), DataError> {
    for (frame, slots) in slots_by_frame(&sampler.plan(frames)) {
        let image = fetch(frame.min(frames.saturating_sub(1)))?;
        for slot in slots {
            sampler.take(slot, &image)?;
        }
    }
    Ok(())
}

/// A video's frames from the cache, else decoded whole and offered to it.
fn cached_video(path: &Path, cache: &DecodeCache) -> Result<Arc<Vec<Arc<Image>>>, DataError> {
    if let Some(hit) = cache.video(path) {
        return hit;
    }
    match decode_video(path) {
        Ok(frames) => {
            let frames = Arc::new(frames.into_iter().map(Arc::new).collect::<Vec<_>>());
            cache.keep_video(path, &frames);
            Ok(frames)
        }
        Err(err) => {
            cache.keep_failure(path, &err);
            Err(err)
        }
    }
}

/// The frames of a frame folder, in the order of their numbers (the rules: [`FrameFolder`]).
pub fn list_frames(dir: &Path) -> Result<Vec<PathBuf>, DataError> {
    if !dir.exists() {
        return Err(DataError::Missing {
            path: dir.to_path_buf(),
            what: "frame folder".into(),
        });
    }
    FrameFolder::read(dir)
        .map(|folder| folder.paths().to_vec())
        .map_err(|source| DataError::Frames {
            path: dir.to_path_buf(),
            source,
        })
}

/// How a streamed video was read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sampled {
    /// Frames the video decoded to.
    pub frames: usize,
    /// Passes over the video: 1 when the length its container states was right, 2 when it was
    /// wrong or not stated (a first pass counted the frames).
    pub passes: usize,
}

/// Decodes the video at `path`, handing `sampler` only the frames it plans; memory holds the
/// frames in flight, never the video (see `data::stream`).
#[cfg(feature = "capture")]
pub fn decode_sampled(path: &Path, sampler: &mut dyn FrameSampler) -> Result<Sampled, DataError> {
    super::gst::check_file(path, "video")?;
    super::stream::decode_sampled(path, sampler)
}

#[cfg(not(feature = "capture"))]
pub fn decode_sampled(path: &Path, _sampler: &mut dyn FrameSampler) -> Result<Sampled, DataError> {
    Err(DataError::NoCapture {
        path: path.to_path_buf(),
    })
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
    super::gst::check_file(path, what)?;
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
