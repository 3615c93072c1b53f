//! The one way shiftlive writes a file: through a temporary file beside the target and a rename,
//! so a reader never sees half a file and a failure leaves the old file (if any) in place.
//!
//! Every writer of the project (checkpoints, imports, metrics, plots, lists, screenshots, exports)
//! goes through [`write_atomic`] or [`AtomicFile`]. Before anything is written the target is
//! checked: it must be a new path or a regular file (never a symlink, fifo, directory or device
//! node, which a rename would silently replace), and never one of the command's input files. The
//! new file takes the old file's permissions when it replaces one, else `0666` less the umask (as
//! `open(2)` would); the temporary file is removed on every error.

use std::fs::{self, File, Permissions};
use std::io::{self, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Why a file could not be written. Cloneable (the I/O cause is shared) so that the data layer's
/// cloneable errors can carry it.
#[derive(Debug, Clone, thiserror::Error)]
pub enum WriteError {
    // The cause is the source, not part of the message: `{:#}` prints it once.
    #[error("cannot write {}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: Arc<io::Error>,
    },
    #[error("refusing to write {}: it is {what}, not a regular file", path.display())]
    NotRegular { path: PathBuf, what: &'static str },
    #[error("refusing to write {}: it is the input file {}", path.display(), input.display())]
    IsInput { path: PathBuf, input: PathBuf },
}

impl WriteError {
    fn io(path: &Path, source: io::Error) -> Self {
        Self::Io {
            path: path.to_path_buf(),
            source: Arc::new(source),
        }
    }

    /// The file the write was meant for.
    pub fn path(&self) -> &Path {
        match self {
            Self::Io { path, .. } | Self::NotRegular { path, .. } | Self::IsInput { path, .. } => {
                path
            }
        }
    }
}

/// What a path that is not a regular file is, for messages.
pub fn kind_of(meta: &fs::Metadata) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    let t = meta.file_type();
    if t.is_symlink() {
        "a symbolic link"
    } else if t.is_dir() {
        "a directory"
    } else if t.is_fifo() {
        "a fifo"
    } else if t.is_char_device() || t.is_block_device() {
        "a device"
    } else if t.is_socket() {
        "a socket"
    } else {
        "not a regular file"
    }
}

/// Why a small text input (labels, lists) could not be read. Cloneable, as [`WriteError`].
#[derive(Debug, Clone, thiserror::Error)]
pub enum ReadError {
    #[error("cannot read {}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: Arc<io::Error>,
    },
    #[error("refusing to read {}: it is {what}, not a regular file", path.display())]
    NotRegular { path: PathBuf, what: &'static str },
    #[error("refusing to read {}: larger than {max_bytes} bytes", path.display())]
    TooLarge { path: PathBuf, max_bytes: u64 },
    #[error("{}: not UTF-8 text", path.display())]
    NotText { path: PathBuf },
}

/// Reads a small text file: a regular file (a fifo or `/dev/zero` would block or never end) of at
/// most `max_bytes`, in UTF-8.
pub fn read_text_file(path: &Path, max_bytes: u64) -> Result<String, ReadError> {
    use std::io::Read;
    let io = |source| ReadError::Io {
        path: path.to_path_buf(),
        source: Arc::new(source),
    };
    let meta = fs::metadata(path).map_err(io)?;
    if !meta.is_file() {
        return Err(ReadError::NotRegular {
            path: path.to_path_buf(),
            what: kind_of(&meta),
        });
    }
    let mut bytes = Vec::new();
    File::open(path)
        .map_err(io)?
        .take(max_bytes + 1)
        .read_to_end(&mut bytes)
        .map_err(io)?;
    if bytes.len() as u64 > max_bytes {
        return Err(ReadError::TooLarge {
            path: path.to_path_buf(),
            max_bytes,
        });
    }
    String::from_utf8(bytes).map_err(|_| ReadError::NotText {
        path: path.to_path_buf(),
    })
}

/// Checks that `path` may be written: a new path, or an existing regular file that is none of
/// `inputs`. Returns the existing file's permissions, if any.
pub fn check_target(path: &Path, inputs: &[&Path]) -> Result<Option<Permissions>, WriteError> {
    let meta = match fs::symlink_metadata(path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(WriteError::io(path, e)),
    };
    if !meta.file_type().is_file() {
        return Err(WriteError::NotRegular {
            path: path.to_path_buf(),
            what: kind_of(&meta),
        });
    }
    for input in inputs {
        if let Ok(other) = fs::metadata(input)
            && other.dev() == meta.dev()
            && other.ino() == meta.ino()
        {
            return Err(WriteError::IsInput {
                path: path.to_path_buf(),
                input: input.to_path_buf(),
            });
        }
    }
    Ok(Some(meta.permissions()))
}

fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    }
}

/// tempfile's error names the temporary file ("... at path .../.shiftlive-XXXX.part"), and
/// messages name the target: keep the kind of error only (the folder was checked before).
fn without_temp_path(err: io::Error) -> io::Error {
    io::Error::from(err.kind())
}

/// A file being written: a temporary file in the target's folder, renamed onto the target by
/// [`AtomicFile::commit`]; dropped without a commit, it is removed.
pub struct AtomicFile {
    tmp: tempfile::NamedTempFile,
    target: PathBuf,
    keep: Option<Permissions>,
}

impl AtomicFile {
    /// Starts writing `target` (checked as [`check_target`] says, against `inputs`).
    pub fn create(target: &Path, inputs: &[&Path]) -> Result<Self, WriteError> {
        let keep = check_target(target, inputs)?;
        let dir = parent_dir(target);
        // A missing folder is said as such, before tempfile's error could name its own file.
        fs::metadata(dir).map_err(|e| WriteError::io(target, e))?;
        // Created with 0666: the kernel applies the umask, as for any new file.
        // The target's extension stays last: image encoders choose the format by it.
        let suffix = match target.extension().and_then(|e| e.to_str()) {
            Some(ext) => format!(".part.{ext}"),
            None => ".part".to_string(),
        };
        let tmp = tempfile::Builder::new()
            .prefix(".shiftlive-")
            .suffix(&suffix)
            .permissions(Permissions::from_mode(0o666))
            .tempfile_in(dir)
            .map_err(|e| WriteError::io(target, without_temp_path(e)))?;
        Ok(Self {
            tmp,
            target: target.to_path_buf(),
            keep,
        })
    }

    /// The temporary file's path, for writers that want a path (image encoders).
    pub fn temp_path(&self) -> &Path {
        self.tmp.path()
    }

    /// The temporary file, for writers that want a file.
    pub fn file(&mut self) -> &mut File {
        self.tmp.as_file_mut()
    }

    /// The target, for messages.
    pub fn target(&self) -> &Path {
        &self.target
    }

    /// Flushes to disk and renames onto the target (checked again: it may have changed since).
    pub fn commit(self) -> Result<(), WriteError> {
        let target = self.target;
        let current = check_target(&target, &[])?;
        let keep = current.or(self.keep);
        let file = self.tmp.as_file();
        if let Some(perm) = keep {
            file.set_permissions(perm)
                .map_err(|e| WriteError::io(&target, e))?;
        }
        file.sync_all().map_err(|e| WriteError::io(&target, e))?;
        self.tmp
            .persist(&target)
            .map_err(|e| WriteError::io(&target, without_temp_path(e.error)))?;
        Ok(())
    }
}

impl Write for AtomicFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.tmp.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.tmp.flush()
    }
}

/// Writes `contents` to `path` atomically (see the module docs), refusing `inputs` as targets.
pub fn write_atomic_checked(
    path: &Path,
    contents: &[u8],
    inputs: &[&Path],
) -> Result<(), WriteError> {
    let mut file = AtomicFile::create(path, inputs)?;
    file.write_all(contents)
        .map_err(|e| WriteError::io(path, e))?;
    file.commit()
}

/// Writes `contents` to `path` atomically (see the module docs).
pub fn write_atomic(path: &Path, contents: &[u8]) -> Result<(), WriteError> {
    write_atomic_checked(path, contents, &[])
}

/// Writes a directory of `files` (paths relative to `target`, contents) at `target` at once:
/// everything goes into a temporary directory beside it, renamed onto `target` at the end. An
/// existing `target` must be a directory (never a link) holding none of `inputs`; it is moved
/// aside before the rename and removed after it.
pub fn write_dir_atomic(
    target: &Path,
    files: &[(PathBuf, Vec<u8>)],
    inputs: &[&Path],
) -> Result<(), WriteError> {
    let old = match fs::symlink_metadata(target) {
        Ok(meta) if meta.file_type().is_dir() => true,
        Ok(meta) => {
            let what = kind_of(&meta);
            return Err(WriteError::NotRegular {
                path: target.to_path_buf(),
                what,
            });
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => false,
        Err(e) => return Err(WriteError::io(target, e)),
    };
    let canonical = |p: &Path| fs::canonicalize(p).ok();
    if let Some(dir) = canonical(target) {
        for input in inputs {
            if canonical(input).is_some_and(|i| i.starts_with(&dir)) {
                let (path, input) = (target.to_path_buf(), input.to_path_buf());
                return Err(WriteError::IsInput { path, input });
            }
        }
    }
    let parent = parent_dir(target);
    let temp = |suffix: &str| {
        tempfile::Builder::new()
            .prefix(".shiftlive-")
            .suffix(suffix)
            .tempdir_in(parent)
    };
    let staging = temp(".part").map_err(|e| WriteError::io(target, without_temp_path(e)))?;
    for (relative, contents) in files {
        let path = staging.path().join(relative);
        if let Some(dir) = path.parent() {
            fs::create_dir_all(dir).map_err(|e| WriteError::io(target, e))?;
        }
        let mut file = File::create(&path).map_err(|e| WriteError::io(target, e))?;
        file.write_all(contents)
            .and_then(|()| file.sync_all())
            .map_err(|e| WriteError::io(target, e))?;
    }
    // The old directory goes into a temporary one (removed when it drops) before the rename.
    let aside = if old {
        let aside = temp(".old").map_err(|e| WriteError::io(target, without_temp_path(e)))?;
        fs::rename(target, aside.path().join("old")).map_err(|e| WriteError::io(target, e))?;
        Some(aside)
    } else {
        None
    };
    let staged = staging.keep();
    if let Err(e) = fs::rename(&staged, target) {
        let _ = fs::remove_dir_all(&staged);
        if let Some(aside) = &aside {
            let _ = fs::rename(aside.path().join("old"), target);
        }
        return Err(WriteError::io(target, e));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(path: &Path) -> u32 {
        fs::metadata(path).map(|m| m.mode() & 0o777).unwrap_or(0)
    }

    #[test]
    fn writes_new_and_replaces_regular_files_keeping_their_mode() -> Result<(), WriteError> {
        let dir = tempfile::tempdir().map_err(|e| WriteError::io(Path::new("tmp"), e))?;
        let path = dir.path().join("a.txt");
        write_atomic(&path, b"one")?;
        assert_eq!(fs::read(&path).ok().as_deref(), Some(&b"one"[..]));
        // A new file is not the 0600 of a temporary file: 0666 less a umask that leaves the
        // owner's read and write bits.
        assert_eq!(mode(&path) & 0o600, 0o600);
        assert_ne!(
            mode(&path),
            0o600,
            "umask ignored (a 0600 temporary file kept)"
        );
        fs::set_permissions(&path, Permissions::from_mode(0o640)).ok();
        write_atomic(&path, b"two")?;
        assert_eq!(fs::read(&path).ok().as_deref(), Some(&b"two"[..]));
        assert_eq!(mode(&path), 0o640);
        let left: Vec<_> = fs::read_dir(dir.path())
            .map(|d| d.flatten().map(|e| e.file_name()).collect())
            .unwrap_or_default();
        assert_eq!(left.len(), 1, "temporary files left: {left:?}");
        Ok(())
    }

    #[test]
    fn refuses_links_dirs_devices_and_inputs_leaving_them_untouched() {
        let dir = tempfile::tempdir().expect("temp dir");
        let real = dir.path().join("real.txt");
        fs::write(&real, b"keep").expect("write");
        let link = dir.path().join("link.txt");
        std::os::unix::fs::symlink(&real, &link).expect("symlink");
        let err = write_atomic(&link, b"x").expect_err("symlink refused");
        assert!(err.to_string().contains("symbolic link"), "{err}");
        assert!(
            fs::symlink_metadata(&link)
                .expect("meta")
                .file_type()
                .is_symlink()
        );
        let err = write_atomic(dir.path(), b"x").expect_err("dir refused");
        assert!(err.to_string().contains("directory"), "{err}");
        let err = write_atomic(Path::new("/dev/null"), b"x").expect_err("device refused");
        assert!(err.to_string().contains("device"), "{err}");
        let err = write_atomic_checked(&real, b"x", &[&link]).expect_err("input refused");
        assert!(matches!(err, WriteError::IsInput { .. }), "{err}");
        assert_eq!(fs::read(&real).expect("read"), b"keep");
    }

    #[test]
    fn a_text_read_refuses_devices_dirs_and_files_over_its_cap() {
        let dir = tempfile::tempdir().expect("temp dir");
        let small = dir.path().join("labels.txt");
        fs::write(&small, "a\nb\n").expect("write");
        assert_eq!(read_text_file(&small, 4).expect("read"), "a\nb\n");
        let err = read_text_file(&small, 3).expect_err("over the cap");
        assert!(matches!(err, ReadError::TooLarge { .. }), "{err}");
        let err = read_text_file(Path::new("/dev/zero"), 16).expect_err("device");
        assert!(err.to_string().contains("a device"), "{err}");
        let err = read_text_file(dir.path(), 16).expect_err("dir");
        assert!(err.to_string().contains("a directory"), "{err}");
    }

    #[test]
    fn an_uncommitted_file_leaves_nothing_behind() {
        let dir = tempfile::tempdir().expect("temp dir");
        let target = dir.path().join("x.bin");
        {
            let mut f = AtomicFile::create(&target, &[]).expect("create");
            f.write_all(b"half").expect("write");
        }
        assert_eq!(fs::read_dir(dir.path()).expect("read dir").count(), 0);
    }
}
