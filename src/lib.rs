//! shiftlive names human actions in live video, frame by frame, with an online Temporal Shift
//! Module network, and trains and evaluates the offline models of the field (TSN, TSM, MVF).
//!
//! The core (`model`) builds and tests without GStreamer or a window
//! (`cargo test --no-default-features`).

pub mod bench;
pub mod device;
pub mod model;
pub mod online;
pub mod preprocess;
pub mod profile;
