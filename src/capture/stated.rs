//! What a file's container states about its length, where GStreamer does not keep it.
//!
//! avidemux replaces the duration of an AVI's main header (`avih`) with the length of the index it
//! scanned, so a truncated AVI looks complete by the time it ends. The header's `dwTotalFrames`
//! is read here, from the first bytes of the file:
//!
//! ```text
//! "RIFF" size "AVI " "LIST" size "hdrl" "avih" size(56) dwMicroSecPerFrame dwMaxBytesPerSec
//!  dwPaddingGranularity dwFlags dwTotalFrames ...
//! ```

use std::io::Read;
use std::path::Path;

/// How much of the file is searched for the header (it sits right after the RIFF header).
const HEAD_BYTES: u64 = 4096;

/// The frame count an AVI's main header states, or None (not an AVI, no header, unreadable).
pub fn avi_total_frames(path: &Path) -> Option<u64> {
    let mut head = Vec::new();
    std::fs::File::open(path)
        .ok()?
        .take(HEAD_BYTES)
        .read_to_end(&mut head)
        .ok()?;
    if head.get(0..4)? != b"RIFF" || head.get(8..12)? != b"AVI " {
        return None;
    }
    let at = head.windows(4).position(|w| w == b"avih")?;
    // The tag, its size, then four u32 fields before dwTotalFrames.
    let field = head.get(at + 8 + 16..at + 8 + 20)?;
    let frames = u32::from_le_bytes(field.try_into().ok()?);
    (frames > 0).then_some(u64::from(frames))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_total_frames_of_an_avi_header_are_read_and_other_files_give_none() {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut avi = b"RIFF\0\0\0\0AVI LIST\0\0\0\0hdrlavih\x38\0\0\0".to_vec();
        for field in [40_000u32, 0, 0, 16, 50] {
            avi.extend_from_slice(&field.to_le_bytes());
        }
        let path = dir.path().join("a.avi");
        std::fs::write(&path, &avi).expect("write");
        assert_eq!(avi_total_frames(&path), Some(50));
        let other = dir.path().join("b.mkv");
        std::fs::write(&other, b"\x1a\x45\xdf\xa3 not an avi").expect("write");
        assert_eq!(avi_total_frames(&other), None);
    }
}
