//! The Temporal Shift Module (Lin, Gan, Han, "TSM: Temporal Shift Module for Efficient Video
//! Understanding", ICCV 2019, arXiv 1811.08383): a zero-FLOP shift of part of the channels along time.
//!
//! Offline, a clip is a batch `[N*T, C, H, W]`; with `fold = C / shift_div`:
//! - bidirectional: channels `[0, fold)` take frame t+1 (zero at the last frame) and channels
//!   `[fold, 2*fold)` take frame t-1 (zero at the first);
//! - uni-directional: channels `[0, fold)` take frame t-1 (zero at the first); nothing comes from
//!   the future, so the network can run frame by frame.
//!
//! Online, one frame per stream arrives at a time, `[S, C, H, W]`, and each shifted block keeps the
//! previous frame's `[0, fold)` channels in a [`ShiftCache`] slot. The result equals the offline
//! uni-directional shift.

use tch::{TchError, Tensor};

use super::config::ShiftDirection;

/// How the frames of a batch relate in time.
pub enum TimeAxis<'a> {
    /// Whole clips: the batch is `[N*T, C, H, W]` with `t` consecutive frames per clip.
    Clip { t: i64 },
    /// One new frame per stream: the batch is `[S, C, H, W]`; the past lives in the cache.
    Stream(&'a mut ShiftCache),
}

impl TimeAxis<'_> {
    /// Frames per clip (1 for streams: each stream advances by one frame).
    pub fn frames(&self) -> i64 {
        match self {
            TimeAxis::Clip { t } => *t,
            TimeAxis::Stream(_) => 1,
        }
    }
}

/// The streaming state of an online network: per shifted block, the previous frame's first `fold`
/// channels at that block (`[S, fold, H, W]`), kept outside the weights.
#[derive(Debug, Default)]
pub struct ShiftCache {
    slots: Vec<Option<Slot>>,
}

/// One block's past, and a buffer of the same shape to swap with (no allocation per frame).
#[derive(Debug)]
struct Slot {
    past: Tensor,
    stash: Tensor,
}

impl ShiftCache {
    /// An empty cache for a network with `slots` shifted blocks; each slot takes its shape from the
    /// first frame that reaches it and starts as zeros.
    pub fn new(slots: usize) -> Self {
        Self {
            slots: (0..slots).map(|_| None).collect(),
        }
    }

    /// Forgets the past: the next frame is treated as the first of a new stream.
    pub fn reset(&mut self) {
        for slot in self.slots.iter_mut().flatten() {
            let _ = slot.past.zero_();
        }
    }

    pub fn len(&self) -> usize {
        self.slots.len()
    }

    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// Forgets the past of some streams only (rows of every slot): the other streams run on.
    pub fn reset_rows(&mut self, rows: &[usize]) {
        for slot in self.slots.iter_mut().flatten() {
            for &row in rows {
                if (row as i64) < slot.past.size()[0] {
                    let _ = slot.past.narrow(0, row as i64, 1).zero_();
                }
            }
        }
    }

    /// The past of the streams `rows` (a `[k]` int64 index), as a cache of k streams: row i is
    /// stream `rows[i]`. A slot not filled yet stays empty (zeros at its first frame).
    pub fn select_rows(&self, rows: &Tensor) -> Result<ShiftCache, TchError> {
        let slots = self
            .slots
            .iter()
            .map(|slot| {
                slot.as_ref()
                    .map(|s| {
                        let past = s.past.f_index_select(0, rows)?;
                        let stash = past.f_zeros_like()?;
                        Ok(Slot { past, stash })
                    })
                    .transpose()
            })
            .collect::<Result<_, TchError>>()?;
        Ok(ShiftCache { slots })
    }

    /// Writes the past of `part` (made by `select_rows(rows)` and advanced since) back into rows
    /// `rows` of this cache of `streams` streams; the other rows are left as they were.
    pub fn put_rows(
        &mut self,
        rows: &Tensor,
        part: &ShiftCache,
        streams: i64,
    ) -> Result<(), TchError> {
        for (mine, theirs) in self.slots.iter_mut().zip(&part.slots) {
            let Some(theirs) = theirs else { continue };
            let (_, fold, h, w) = theirs.past.size4()?;
            let shape = [streams, fold, h, w];
            if mine.as_ref().is_none_or(|m| m.past.size() != shape) {
                let zeros = || Tensor::zeros(shape, (theirs.past.kind(), theirs.past.device()));
                *mine = Some(Slot {
                    past: zeros(),
                    stash: zeros(),
                });
            }
            if let Some(mine) = mine {
                let _ = mine.past.f_index_copy_(0, rows, &theirs.past)?;
            }
        }
        Ok(())
    }

    /// Shapes of the slots filled so far (`None` before the first frame).
    pub fn shapes(&self) -> Vec<Option<Vec<i64>>> {
        self.slots
            .iter()
            .map(|s| s.as_ref().map(|s| s.past.size()))
            .collect()
    }

    /// Bytes of past activations held (the swap buffers double it).
    pub fn bytes(&self) -> usize {
        self.slots
            .iter()
            .flatten()
            .map(|s| s.past.numel() * s.past.kind().elt_size_in_bytes())
            .sum()
    }

    fn slot(&mut self, slot: usize, x: &Tensor, fold: i64) -> Result<&mut Slot, TchError> {
        let (s, _, h, w) = x.size4()?;
        let fits =
            |state: &Slot| state.past.size() == [s, fold, h, w] && state.past.kind() == x.kind();
        // First frame, or the stream count or resolution changed: start again from zeros.
        if !self.slots[slot].as_ref().is_some_and(fits) {
            self.slots[slot] = None;
        }
        let zeros = || Tensor::zeros([s, fold, h, w], (x.kind(), x.device()));
        Ok(self.slots[slot].get_or_insert_with(|| Slot {
            past: zeros(),
            stash: zeros(),
        }))
    }

    /// Puts the cached past into channels `[0, fold)` of `x` in place and keeps this frame's
    /// channels `[0, fold)` as the new past. Only a fold of channels is copied, not the tensor.
    fn swap_in(&mut self, slot: usize, x: &Tensor, fold: i64) -> Result<(), TchError> {
        let state = self.slot(slot, x, fold)?;
        let mut head = x.narrow(1, 0, fold);
        state.stash.copy_(&head);
        head.copy_(&state.past);
        std::mem::swap(&mut state.past, &mut state.stash);
        Ok(())
    }

    /// Undoes `swap_in` on `x`: its channels `[0, fold)` become this frame's again.
    fn restore(&mut self, slot: usize, x: &Tensor, fold: i64) {
        if let Some(state) = &self.slots[slot] {
            x.narrow(1, 0, fold).copy_(&state.past);
        }
    }
}

/// One temporal shift, placed in a block. `slot` indexes the block's place in a [`ShiftCache`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TemporalShift {
    pub direction: ShiftDirection,
    pub shift_div: i64,
    pub slot: usize,
}

impl TemporalShift {
    /// A shift using the next free slot of a cache (`slots` counts the slots taken so far), so
    /// that the slots follow the forward order of the blocks.
    pub fn take_slot(direction: ShiftDirection, shift_div: i64, slots: &mut usize) -> Self {
        let shift = Self {
            direction,
            shift_div,
            slot: *slots,
        };
        *slots += 1;
        shift
    }

    /// Channels that move when `channels` are shifted.
    pub fn fold(&self, channels: i64) -> i64 {
        channels / self.shift_div
    }

    /// The shifted `x` as a new tensor (`x` is left as it is).
    pub fn forward(&self, x: &Tensor, time: &mut TimeAxis) -> Result<Tensor, TchError> {
        self.branch(x, time, |shifted| Ok(shifted.copy()))
    }

    /// Runs a residual `branch` on the shifted `x`, leaving `x` as it was for the identity path.
    /// On a stream (inference only) the shift happens in place on `x` and is undone after the
    /// branch: a fold of channels is copied instead of the whole activation.
    pub fn branch(
        &self,
        x: &Tensor,
        time: &mut TimeAxis,
        branch: impl FnOnce(&Tensor) -> Result<Tensor, TchError>,
    ) -> Result<Tensor, TchError> {
        let fold = self.fold(x.size()[1]);
        if fold == 0 {
            return branch(x);
        }
        match time {
            TimeAxis::Clip { t } => match self.direction {
                ShiftDirection::Bi => branch(&shift_bi(x, *t, fold)?),
                ShiftDirection::Uni => branch(&shift_uni(x, *t, fold)?),
            },
            // Only causal networks run as streams (checked before), so the shift is uni-directional.
            TimeAxis::Stream(cache) => {
                cache.swap_in(self.slot, x, fold)?;
                let y = branch(x);
                // Restored even when the branch failed: `x` is the caller's activation.
                cache.restore(self.slot, x, fold);
                y
            }
        }
    }
}

/// `fold` channels from `channel` on of a `[N, T, C, H, W]` clip, moved one frame along time:
/// forward (frame `i` gets frame `i - 1`'s, the first frame zeros) or backward (frame `i` gets
/// frame `i + 1`'s, the last frame zeros).
fn moved(x5: &Tensor, t: i64, channel: i64, fold: i64, forward: bool) -> Tensor {
    // Padding spec runs from the last dim backwards: (w0, w1, h0, h1, c0, c1, t0, t1).
    let (first, pad) = if forward {
        (0, [0, 0, 0, 0, 0, 0, 1, 0])
    } else {
        (1, [0, 0, 0, 0, 0, 0, 0, 1])
    };
    x5.narrow(1, first, t - 1)
        .narrow(2, channel, fold)
        .constant_pad_nd(pad)
}

/// Bidirectional shift of a `[N*T, C, H, W]` batch: the first `fold` channels come from the next
/// frame, the next `fold` from the previous one.
pub fn shift_bi(x: &Tensor, t: i64, fold: i64) -> Result<Tensor, TchError> {
    let (nt, c, h, w) = x.size4()?;
    let x5 = x.view([nt / t, t, c, h, w]);
    let rest = x5.narrow(2, 2 * fold, c - 2 * fold);
    let parts = [
        moved(&x5, t, 0, fold, false),
        moved(&x5, t, fold, fold, true),
        rest,
    ];
    Ok(Tensor::cat(&parts, 2).view([nt, c, h, w]))
}

/// Uni-directional (past to present) shift of a `[N*T, C, H, W]` batch: the first `fold`
/// channels come from the previous frame.
pub fn shift_uni(x: &Tensor, t: i64, fold: i64) -> Result<Tensor, TchError> {
    let (nt, c, h, w) = x.size4()?;
    let x5 = x.view([nt / t, t, c, h, w]);
    let rest = x5.narrow(2, fold, c - fold);
    Ok(Tensor::cat(&[moved(&x5, t, 0, fold, true), rest], 2).view([nt, c, h, w]))
}

/// TSM's temporal pool: max over time with kernel 3, stride 2, padding 1, halving T.
pub fn temporal_pool(x: &Tensor, t: i64) -> Result<Tensor, TchError> {
    let (nt, c, h, w) = x.size4()?;
    let n = nt / t;
    let x5 = x.view([n, t, c, h, w]).transpose(1, 2); // [N, C, T, H, W]
    let pooled = x5.max_pool3d([3, 1, 1], [2, 1, 1], [1, 0, 0], [1, 1, 1], false);
    let t_out = pooled.size()[2];
    Ok(pooled
        .transpose(1, 2)
        .contiguous()
        .view([n * t_out, c, h, w])) // [N*T/2, C, H, W]
}
