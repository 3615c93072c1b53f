//! The frame ring between the capture thread and the inference thread: bounded, single producer,
//! single consumer, lock-free (ringbuf), with the drop policy written down and every dropped frame
//! counted.
//!
//! - `Latest` (live sources): the producer never blocks and the consumer always gets a fresh frame.
//!   The producer holds the newest frame back until the consumer asks for one (it sets `wanted` when
//!   it waits), then hands it over; a held frame replaced by a newer one is dropped and counted. So
//!   a frame never ages in the ring while the model is busy: what the model sees is at most one frame
//!   interval old. Dropped frames widen the time step the shift cache sees; the counters say by how
//!   much. What a dropped frame must not take with it (the discontinuity mark of the first frame
//!   after a reopening) passes to the frame that replaced it (`ring_with`'s `Carry`).
//! - `Backpressure` (files replayed as fast as possible): the producer waits while the ring is full,
//!   so no frame is lost and results are deterministic.
//!
//! Waiting uses thread parking with a short timeout, so a missed wake-up costs at most a millisecond.

use std::sync::Arc;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::Thread;
use std::time::{Duration, Instant};

use ringbuf::traits::{Consumer, Observer, Producer, Split};
use ringbuf::{HeapCons, HeapProd, HeapRb};

/// What happens when the consumer falls behind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DropPolicy {
    Latest,
    Backpressure,
}

/// Counters shared by both ends.
#[derive(Debug, Default)]
pub struct RingCounters {
    /// Frames the producer offered.
    pub offered: AtomicU64,
    /// Held by the producer and replaced by a newer frame before the consumer asked (`Latest`).
    pub dropped_full: AtomicU64,
    /// Skipped by the consumer to reach the newest frame (`Latest` only).
    pub skipped_stale: AtomicU64,
}

impl RingCounters {
    /// Every frame that was captured but never processed.
    pub fn dropped(&self) -> u64 {
        self.dropped_full.load(Ordering::Relaxed) + self.skipped_stale.load(Ordering::Relaxed)
    }
}

#[derive(Debug, Default)]
struct Shared {
    counters: RingCounters,
    /// The consumer is waiting for a frame (`Latest`).
    wanted: AtomicBool,
    finished: AtomicBool,
    closed: AtomicBool,
    producer: OnceLock<Thread>,
    consumer: OnceLock<Thread>,
}

const WAIT: Duration = Duration::from_millis(1);

/// Hands what must survive from a frame dropped under `Latest` to the newer frame that replaced
/// it: `carry(newer, dropped)`.
pub type Carry<T> = fn(&mut T, &T);

/// The producing end (the capture thread).
pub struct RingProducer<T> {
    inner: HeapProd<T>,
    policy: DropPolicy,
    shared: Arc<Shared>,
    /// The newest frame not handed over yet (`Latest`).
    held: Option<T>,
    carry: Carry<T>,
}

/// The consuming end (the inference thread).
pub struct RingConsumer<T> {
    inner: HeapCons<T>,
    policy: DropPolicy,
    shared: Arc<Shared>,
    carry: Carry<T>,
}

/// A new ring of `capacity` frames; a dropped frame hands nothing on.
pub fn ring<T>(capacity: usize, policy: DropPolicy) -> (RingProducer<T>, RingConsumer<T>) {
    ring_with(capacity, policy, |_, _| {})
}

/// A new ring of `capacity` frames whose dropped frames hand on what `carry` takes from them.
pub fn ring_with<T>(
    capacity: usize,
    policy: DropPolicy,
    carry: Carry<T>,
) -> (RingProducer<T>, RingConsumer<T>) {
    let (prod, cons) = HeapRb::new(capacity.max(1)).split();
    let shared = Arc::new(Shared::default());
    (
        RingProducer {
            inner: prod,
            policy,
            shared: shared.clone(),
            held: None,
            carry,
        },
        RingConsumer {
            inner: cons,
            policy,
            shared,
            carry,
        },
    )
}

/// Result of a push.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pushed {
    Queued,
    /// Held back until the consumer asks (`Latest`); `flush` hands it over.
    Held,
    /// The consumer is gone.
    Closed,
}

impl<T> RingProducer<T> {
    pub fn counters(&self) -> &RingCounters {
        &self.shared.counters
    }

    /// Offers a frame according to the policy.
    pub fn push(&mut self, mut item: T) -> Pushed {
        let _ = self.shared.producer.set(std::thread::current());
        self.shared.counters.offered.fetch_add(1, Ordering::Relaxed);
        if self.policy == DropPolicy::Latest {
            if let Some(dropped) = self.held.take() {
                (self.carry)(&mut item, &dropped);
                self.shared
                    .counters
                    .dropped_full
                    .fetch_add(1, Ordering::Relaxed);
            }
            self.held = Some(item);
            return self.flush();
        }
        loop {
            if self.shared.closed.load(Ordering::Acquire) {
                return Pushed::Closed;
            }
            match self.inner.try_push(item) {
                Ok(()) => {
                    self.wake_consumer();
                    return Pushed::Queued;
                }
                Err(back) => {
                    item = back;
                    std::thread::park_timeout(WAIT);
                }
            }
        }
    }

    /// Hands the held frame over if the consumer is waiting for one (`Latest`). Call it often
    /// (the capture thread does between pulls) so a waiting consumer is served within milliseconds.
    pub fn flush(&mut self) -> Pushed {
        if self.shared.closed.load(Ordering::Acquire) {
            return Pushed::Closed;
        }
        if self.held.is_none()
            || !self.shared.wanted.load(Ordering::Acquire)
            || !self.inner.is_empty()
        {
            return Pushed::Held;
        }
        if let Some(item) = self.held.take() {
            if let Err(back) = self.inner.try_push(item) {
                self.held = Some(back);
                return Pushed::Held;
            }
            self.shared.wanted.store(false, Ordering::Release);
            self.wake_consumer();
        }
        Pushed::Queued
    }

    fn wake_consumer(&self) {
        if let Some(consumer) = self.shared.consumer.get() {
            consumer.unpark();
        }
    }

    /// True once the consumer has hung up.
    pub fn is_closed(&self) -> bool {
        self.shared.closed.load(Ordering::Acquire)
    }
}

impl<T> Drop for RingProducer<T> {
    /// The source ended: the consumer drains what is left and then sees `Popped::Finished`.
    fn drop(&mut self) {
        self.shared.finished.store(true, Ordering::Release);
        if let Some(consumer) = self.shared.consumer.get() {
            consumer.unpark();
        }
    }
}

/// Result of a pop.
#[derive(Debug)]
pub enum Popped<T> {
    Item(T),
    /// Nothing arrived within the timeout.
    Empty,
    /// The producer is gone and the ring is drained.
    Finished,
}

impl<T> RingConsumer<T> {
    pub fn counters(&self) -> &RingCounters {
        &self.shared.counters
    }

    /// Frames waiting.
    pub fn len(&self) -> usize {
        self.inner.occupied_len()
    }

    pub fn is_empty(&self) -> bool {
        self.inner.is_empty()
    }

    /// Takes the next frame (`Backpressure`) or the newest one (`Latest`, counting the skipped),
    /// waiting up to `timeout`.
    pub fn pop(&mut self, timeout: Duration) -> Popped<T> {
        let _ = self.shared.consumer.set(std::thread::current());
        let deadline = Instant::now() + timeout;
        if self.policy == DropPolicy::Latest {
            // Ask for a fresh frame: the producer hands its newest over at once.
            self.shared.wanted.store(true, Ordering::Release);
            if let Some(producer) = self.shared.producer.get() {
                producer.unpark();
            }
        }
        loop {
            let item = match self.policy {
                DropPolicy::Backpressure => self.inner.try_pop(),
                DropPolicy::Latest => {
                    let mut newest = self.inner.try_pop();
                    while let Some(mut next) = self.inner.try_pop() {
                        self.shared
                            .counters
                            .skipped_stale
                            .fetch_add(1, Ordering::Relaxed);
                        if let Some(dropped) = &newest {
                            (self.carry)(&mut next, dropped);
                        }
                        newest = Some(next);
                    }
                    newest
                }
            };
            if let Some(item) = item {
                if let Some(producer) = self.shared.producer.get() {
                    producer.unpark();
                }
                return Popped::Item(item);
            }
            if self.shared.finished.load(Ordering::Acquire) && self.inner.is_empty() {
                return Popped::Finished;
            }
            let now = Instant::now();
            if now >= deadline {
                return Popped::Empty;
            }
            std::thread::park_timeout(WAIT.min(deadline - now));
        }
    }
}

impl<T> Drop for RingConsumer<T> {
    fn drop(&mut self) {
        self.shared.closed.store(true, Ordering::Release);
        if let Some(producer) = self.shared.producer.get() {
            producer.unpark();
        }
    }
}
