//! The run's scalars as a TensorBoard event file (`OUT/tb/events.out.tfevents.shiftlive`), so
//! `tensorboard --logdir runs` shows every run. No maintained crate writes these files (the
//! crates.io candidates, tensorboard-rs and syntaxdot-summary, had their last releases in 2022 and
//! pin old protobuf stacks), and the format is small, so it is written here:
//!
//! - the file is a TFRecord stream: per record, its length (u64 LE), the masked CRC-32C of the
//!   length, the bytes, the masked CRC-32C of the bytes (mask: rotate right 15, add 0xa282ead8);
//! - each record is a `tensorflow.Event` protobuf: `wall_time` (1, double), `step` (2, int64),
//!   `file_version` (3, string, the first record: "brain.Event:2") or `summary` (5), a `Summary`
//!   of `Value`s with `tag` (1, string) and `simple_value` (2, float).
//!
//! The whole file is rewritten from the run's history after each epoch (through `fsio`, like the
//! other metric files), so a resumed run's file holds exactly its epochs.

use std::path::Path;

use super::TrainError;
use super::report::EpochRecord;

/// CRC-32C (Castagnoli, reflected polynomial 0x82f63b78), bitwise.
fn crc32c(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0x82f6_3b78
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

fn masked_crc(bytes: &[u8]) -> u32 {
    crc32c(bytes).rotate_right(15).wrapping_add(0xa282_ead8)
}

fn varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// A length-delimited field (wire type 2).
fn bytes_field(out: &mut Vec<u8>, field: u64, bytes: &[u8]) {
    varint(out, field << 3 | 2);
    varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

/// An `Event` with its wall time, step, and either a file version or scalars.
fn event(wall_time: f64, step: i64, version: Option<&str>, scalars: &[(&str, f32)]) -> Vec<u8> {
    let mut out = Vec::new();
    varint(&mut out, 1 << 3 | 1);
    out.extend_from_slice(&wall_time.to_le_bytes());
    varint(&mut out, 2 << 3);
    varint(&mut out, step as u64);
    if let Some(version) = version {
        bytes_field(&mut out, 3, version.as_bytes());
    }
    if !scalars.is_empty() {
        let mut summary = Vec::new();
        for (tag, value) in scalars {
            let mut v = Vec::new();
            bytes_field(&mut v, 1, tag.as_bytes());
            varint(&mut v, 2 << 3 | 5);
            v.extend_from_slice(&value.to_le_bytes());
            bytes_field(&mut summary, 1, &v);
        }
        bytes_field(&mut out, 5, &summary);
    }
    out
}

/// Appends one TFRecord holding `data`.
fn record(out: &mut Vec<u8>, data: &[u8]) {
    let len = (data.len() as u64).to_le_bytes();
    out.extend_from_slice(&len);
    out.extend_from_slice(&masked_crc(&len).to_le_bytes());
    out.extend_from_slice(data);
    out.extend_from_slice(&masked_crc(data).to_le_bytes());
}

/// The event file of `history`: a version record, then one event per epoch (step = epoch) with
/// its scalars; wall times are `start` plus the epochs' seconds.
pub fn events(history: &[EpochRecord], start: f64) -> Vec<u8> {
    let mut out = Vec::new();
    record(&mut out, &event(start, 0, Some("brain.Event:2"), &[]));
    let mut wall = start;
    for r in history {
        wall += r.epoch_seconds;
        let mut scalars = vec![
            ("train/loss", r.train_loss as f32),
            ("train/top1", r.train_top1 as f32),
            ("lr", r.lr as f32),
        ];
        let val = [
            ("val/loss", r.val_loss),
            ("val/top1", r.val_top1),
            ("val/top5", r.val_top5),
            ("val/mean_class_acc", r.val_mean_class_acc),
        ];
        scalars.extend(val.iter().filter_map(|(t, v)| v.map(|v| (*t, v as f32))));
        record(&mut out, &event(wall, i64::from(r.epoch), None, &scalars));
    }
    out
}

/// Writes `out/tb/events.out.tfevents.shiftlive` for `history`.
pub fn write(out: &Path, history: &[EpochRecord], start: f64) -> Result<(), TrainError> {
    let dir = out.join("tb");
    std::fs::create_dir_all(&dir).map_err(|source| TrainError::Io {
        path: dir.clone(),
        source,
    })?;
    let path = dir.join("events.out.tfevents.shiftlive");
    crate::fsio::write_atomic(&path, &events(history, start))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32c_matches_the_standard_check_value() {
        assert_eq!(crc32c(b"123456789"), 0xe306_9283);
        assert_eq!(crc32c(b""), 0);
    }

    /// Reads the records back: lengths and CRCs check, the scalars are where protobuf puts them.
    #[test]
    fn records_frame_the_events_with_their_crcs() {
        let record_of = |epoch, val: Option<f64>| EpochRecord {
            epoch,
            lr: 0.003,
            train_loss: 2.5,
            train_top1: 0.25,
            val_loss: val,
            val_top1: val,
            val_top5: None,
            val_mean_class_acc: None,
            clips_per_second: 1.0,
            data_wait_seconds: 0.0,
            epoch_seconds: 10.0,
            skipped_videos: 0,
        };
        let bytes = events(&[record_of(1, None), record_of(2, Some(0.5))], 1000.0);
        let mut at = 0;
        let mut records = Vec::new();
        while at < bytes.len() {
            let len = u64::from_le_bytes(bytes[at..at + 8].try_into().unwrap_or_default());
            let crc = u32::from_le_bytes(bytes[at + 8..at + 12].try_into().unwrap_or_default());
            assert_eq!(crc, masked_crc(&bytes[at..at + 8]));
            let data = &bytes[at + 12..at + 12 + len as usize];
            let end = at + 12 + len as usize;
            let crc = u32::from_le_bytes(bytes[end..end + 4].try_into().unwrap_or_default());
            assert_eq!(crc, masked_crc(data));
            records.push(data.to_vec());
            at = end + 4;
        }
        assert_eq!(records.len(), 3);
        // Version record: wall time 1000, step 0, "brain.Event:2".
        assert_eq!(records[0][0], 0x09);
        assert_eq!(
            f64::from_le_bytes(records[0][1..9].try_into().unwrap_or_default()),
            1000.0
        );
        assert_eq!(&records[0][9..11], &[0x10, 0]);
        assert_eq!(records[0][11], 0x1a);
        assert_eq!(&records[0][13..], b"brain.Event:2");
        // Epoch 2 at wall time 1020 with 5 values, val/top1 = 0.5 among them.
        let e = &records[2];
        assert_eq!(
            f64::from_le_bytes(e[1..9].try_into().unwrap_or_default()),
            1020.0
        );
        assert_eq!(&e[9..11], &[0x10, 2]);
        let tag = b"val/top1";
        let pos = e.windows(tag.len()).position(|w| w == tag).unwrap_or(0);
        assert!(pos > 0);
        assert_eq!(e[pos + tag.len()], 0x15);
        let v = &e[pos + tag.len() + 1..pos + tag.len() + 5];
        assert_eq!(f32::from_le_bytes(v.try_into().unwrap_or_default()), 0.5);
        let has = |tag: &str| e.windows(tag.len()).any(|w| w == tag.as_bytes());
        for tag in ["train/loss", "train/top1", "lr", "val/loss", "val/top1"] {
            assert!(has(tag), "{tag}");
        }
        assert!(!has("val/top5") && !has("val/mean_class_acc"));
        assert!(!records[1].windows(3).any(|w| w == b"val"));
    }
}
