//! The batch loader: worker threads decode, sample and augment; batches arrive in order.
//!
//! ```text
//! order = shuffle(items; seed, epoch)           batch b = order[b B .. (b + 1) B]
//! worker w builds batches w, w + W, w + 2W, ... -> its own bounded channel (queue / W batches)
//! next() reads batch b from worker b mod W      -> in order, blocking time reported as `wait`
//! ```
//!
//! Every random choice of an item (segment offsets, crop size and position, flip) comes from a
//! ChaCha8 stream keyed by (seed, epoch, item index), and the shuffle from (seed, epoch): a batch
//! depends only on (seed, epoch, batch index), never on the number of workers or on timing, so a
//! resumed run is bit-identical to an uninterrupted one. Dropping the loader stops and joins the
//! workers (their sends fail once the receivers are gone).
//!
//! A video that cannot be read is skipped (its batch is one item shorter, and a batch whose every
//! item failed is left out) and listed by [`Loader::skipped`]; with `strict` it ends the epoch
//! with the error instead.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender, bounded};
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use tch::Tensor;

use super::clip::ClipViews;
use super::decode::sample_item;
use super::options::LoaderOptions;
use super::{DataError, Dataset, Skipped};

/// A batch: `input` is `[B * V * T, 3, S, S]`, item-major, then view (clip-major:
/// `v = clip * crops + crop`), then frame.
#[derive(Debug)]
pub struct Batch {
    pub input: Tensor,
    /// `[B]` i64, after the flip label map.
    pub labels: Tensor,
    /// Data set indices of the items, in batch order.
    pub items: Vec<usize>,
    pub views: usize,
    pub frames: usize,
    /// How long `next()` blocked waiting for this batch.
    pub wait: Duration,
}

enum Outcome {
    Batch(Batch),
    /// Every item of the batch was skipped.
    Empty,
    Failed(DataError),
}

struct Shared {
    dataset: Arc<Dataset>,
    options: LoaderOptions,
    epoch: u64,
    order: Vec<usize>,
    batches: usize,
    stop: AtomicBool,
    skipped: Mutex<Vec<Skipped>>,
}

pub struct Loader {
    shared: Arc<Shared>,
    receivers: Vec<Receiver<Outcome>>,
    handles: Vec<JoinHandle<()>>,
    next: usize,
    done: bool,
}

/// A ChaCha8 stream for one purpose, keyed by (seed, epoch, index).
pub(crate) fn stream(seed: u64, epoch: u64, index: u64, purpose: u64) -> ChaCha8Rng {
    let mut key = [0u8; 32];
    for (k, v) in [seed, epoch, index, purpose].into_iter().enumerate() {
        key[k * 8..k * 8 + 8].copy_from_slice(&v.to_le_bytes());
    }
    ChaCha8Rng::from_seed(key)
}

const SHUFFLE: u64 = 1;

impl Loader {
    pub fn new(
        dataset: Arc<Dataset>,
        options: LoaderOptions,
        epoch: u64,
    ) -> Result<Loader, DataError> {
        options.validate(&dataset)?;
        let n = dataset.items.len();
        let mut order: Vec<usize> = (0..n).collect();
        if options.shuffle {
            order.shuffle(&mut stream(options.seed, epoch, 0, SHUFFLE));
        }
        let batches = if options.drop_last {
            n / options.batch_size
        } else {
            n.div_ceil(options.batch_size)
        };
        if batches == 0 {
            return Err(DataError::Options(format!(
                "{} has {n} items, fewer than one batch of {} (drop_last)",
                dataset.source, options.batch_size
            )));
        }
        let workers = options.workers.min(batches);
        let per_worker = options.queue.div_ceil(workers).max(1);
        let shared = Arc::new(Shared {
            dataset,
            options,
            epoch,
            order,
            batches,
            stop: AtomicBool::new(false),
            skipped: Mutex::new(Vec::new()),
        });
        let mut receivers = Vec::with_capacity(workers);
        let mut handles = Vec::with_capacity(workers);
        for w in 0..workers {
            let (tx, rx) = bounded(per_worker);
            let shared = shared.clone();
            let handle = std::thread::Builder::new()
                .name(format!("data-{w}"))
                .spawn(move || work(&shared, w, workers, &tx))
                .map_err(|e| DataError::Worker(format!("cannot start a data worker: {e}")))?;
            receivers.push(rx);
            handles.push(handle);
        }
        Ok(Loader {
            shared,
            receivers,
            handles,
            next: 0,
            done: false,
        })
    }

    /// Batches planned for this epoch (a batch whose every item failed is left out).
    pub fn len(&self) -> usize {
        self.shared.batches
    }

    pub fn is_empty(&self) -> bool {
        self.shared.batches == 0
    }

    /// Frames per clip (T).
    pub fn frames(&self) -> usize {
        self.shared.options.sampling.frames()
    }

    /// Views per item (V).
    pub fn views(&self) -> usize {
        self.shared.options.mode.views()
    }

    /// The items skipped so far (unreadable, missing or truncated videos), sorted by path.
    pub fn skipped(&self) -> Vec<Skipped> {
        let mut list = self
            .shared
            .skipped
            .lock()
            .map(|s| s.clone())
            .unwrap_or_else(|e| e.into_inner().clone());
        list.sort();
        list.dedup();
        list
    }
}

impl Iterator for Loader {
    type Item = Result<Batch, DataError>;

    fn next(&mut self) -> Option<Self::Item> {
        let mut waited = Duration::ZERO;
        while !self.done && self.next < self.shared.batches {
            let rx = &self.receivers[self.next % self.receivers.len()];
            let start = Instant::now();
            let outcome = rx.recv();
            waited += start.elapsed();
            self.next += 1;
            match outcome {
                Ok(Outcome::Batch(mut batch)) => {
                    batch.wait = waited;
                    return Some(Ok(batch));
                }
                Ok(Outcome::Empty) => {}
                Ok(Outcome::Failed(err)) => {
                    self.done = true;
                    return Some(Err(err));
                }
                Err(_) => {
                    self.done = true;
                    return Some(Err(DataError::Worker(format!(
                        "the worker building batch {} stopped",
                        self.next - 1
                    ))));
                }
            }
        }
        None
    }
}

impl Drop for Loader {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Relaxed);
        // Closing the channels unblocks workers waiting to send.
        self.receivers.clear();
        for handle in self.handles.drain(..) {
            let _ = handle.join();
        }
    }
}

fn work(shared: &Shared, first: usize, step: usize, tx: &Sender<Outcome>) {
    let mut b = first;
    while b < shared.batches && !shared.stop.load(Ordering::Relaxed) {
        let outcome = build(shared, b);
        let failed = matches!(outcome, Outcome::Failed(_));
        if tx.send(outcome).is_err() || failed {
            return;
        }
        b += step;
    }
}

fn build(shared: &Shared, b: usize) -> Outcome {
    let o = &shared.options;
    let (t, v, s) = (o.sampling.frames(), o.mode.views(), o.input_size);
    let per_item = v * t * 3 * s * s;
    let end = ((b + 1) * o.batch_size).min(shared.order.len());
    let indices = &shared.order[b * o.batch_size..end];
    let mut input: Vec<f32> = Vec::with_capacity(indices.len() * per_item);
    let mut labels = Vec::with_capacity(indices.len());
    let mut items = Vec::with_capacity(indices.len());
    for &i in indices {
        if shared.stop.load(Ordering::Relaxed) {
            return Outcome::Empty;
        }
        let start = input.len();
        input.resize(start + per_item, 0.0);
        match fill(shared, i, &mut input[start..]) {
            Ok(label) => {
                labels.push(label as i64);
                items.push(i);
            }
            Err(err) => {
                input.truncate(start);
                if o.strict {
                    return Outcome::Failed(err);
                }
                let path = shared.dataset.items[i].path.clone();
                tracing::warn!("skipping {}: {err}", path.display());
                if let Ok(mut list) = shared.skipped.lock() {
                    list.push(Skipped {
                        path,
                        reason: crate::errors::chain(&err),
                    });
                }
            }
        }
    }
    if items.is_empty() {
        return Outcome::Empty;
    }
    let rows = (items.len() * v * t) as i64;
    let tensors = Tensor::f_from_slice(&input)
        .and_then(|x| x.f_reshape([rows, 3, s as i64, s as i64]))
        .and_then(|x| Tensor::f_from_slice(&labels).map(|l| (x, l)));
    match tensors {
        Ok((input, labels)) => Outcome::Batch(Batch {
            input,
            labels,
            items,
            views: v,
            frames: t,
            wait: Duration::ZERO,
        }),
        Err(e) => Outcome::Failed(DataError::Tensor(e.to_string())),
    }
}

/// Decodes, samples and augments item `i` into `out` (`[V, T, 3, S, S]`); returns its label.
fn fill(shared: &Shared, i: usize, out: &mut [f32]) -> Result<usize, DataError> {
    let item = &shared.dataset.items[i];
    let mut views = ClipViews::new(&shared.options, &item.path, shared.epoch, i, out);
    sample_item(item, shared.options.cache.as_deref(), &mut views)?;
    Ok(views.label(item.label))
}
