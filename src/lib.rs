//! shiftlive names human actions in live video, frame by frame, with an online Temporal Shift
//! Module network, and trains and evaluates the offline models of the field (TSN, TSM, MVF).
//!
//! The core (`model`) builds and tests without GStreamer or a window
//! (`cargo test --no-default-features`).

pub mod backend;
pub mod bench;
#[cfg(feature = "capture")]
pub mod capture;
pub mod data;
pub mod device;
pub mod dist;
pub mod errors;
pub mod export;
pub mod fsio;
#[cfg(feature = "capture")]
pub mod media;
pub mod model;
pub mod online;
#[cfg(feature = "capture")]
pub mod pipeline;
pub mod preprocess;
pub mod profile;
pub mod ring;
pub mod train;
#[cfg(feature = "ui")]
pub mod ui;
