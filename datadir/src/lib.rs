//! The data dir's discipline, shared by every crate that writes into it.
//!
//! Several leakwatch processes may run on one data dir (an indexer, matchers, `alerts`,
//! `search`, an operator's `retrohunt` or `fingerprints import`). Readers need nothing, but
//! each store has exactly one writer at a time:
//!
//! - [`WriterLock`]: an advisory lock (`flock`) on `<store>.lock` beside the store, held for
//!   as long as the writer lives. A second writer is refused with an error naming the store
//!   and the process that holds it (its pid and command line, written into the lock file).
//!   The kernel releases the lock when its holder exits, `kill -9` included.
//! - [`create_private_dir_all`]: directories created owner-only (0700).
//! - [`replace`]: temp file, fsync, rename, fsync of the directory, so a crash leaves the
//!   old or the new file and the rename itself survives a power loss.
//! - [`create_once`]: a file that is written once and never replaced (the watchlist key):
//!   whoever links it into place first wins, everyone else reads the winner's bytes.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// Errors of the data dir.
#[derive(Debug, thiserror::Error)]
pub enum DataDirError {
    /// Another process (or another handle in this one) writes this store.
    #[error(
        "the {what} {path} is in use by another writer ({holder}); stop that process first, \
         or send the work through the running one (--amqp)"
    )]
    Busy {
        what: String,
        path: PathBuf,
        holder: String,
    },
    #[error("cannot access {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

fn io_at(path: &Path) -> impl Fn(std::io::Error) -> DataDirError + '_ {
    move |source| DataDirError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// The exclusive right to write one store; released when dropped (or when the process dies).
#[derive(Debug)]
pub struct WriterLock {
    _file: File,
    path: PathBuf,
}

impl WriterLock {
    /// Takes the writer lock of the store at `store` (a file or directory), described as
    /// `what` in errors, e.g. "alert store". Never waits: a held lock is an error.
    pub fn acquire(store: &Path, what: &str) -> Result<WriterLock, DataDirError> {
        let path = lock_path(store);
        if let Some(dir) = path.parent() {
            create_private_dir_all(dir).map_err(io_at(dir))?;
        }
        let mut file = private_options()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(io_at(&path))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                let mut holder = String::new();
                let _ = file.read_to_string(&mut holder);
                let holder = holder.trim();
                return Err(DataDirError::Busy {
                    what: what.to_string(),
                    path: store.to_path_buf(),
                    holder: if holder.is_empty() {
                        "a process that is starting".to_string()
                    } else {
                        holder.to_string()
                    },
                });
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(io_at(&path)(e)),
        }
        // Who holds it, for the error a second writer gets.
        let note = holder_note();
        file.set_len(0).map_err(io_at(&path))?;
        file.rewind().map_err(io_at(&path))?;
        file.write_all(note.as_bytes()).map_err(io_at(&path))?;
        Ok(WriterLock { _file: file, path })
    }

    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// `<store>.lock`, beside the store.
pub fn lock_path(store: &Path) -> PathBuf {
    let mut name = store.file_name().unwrap_or_default().to_os_string();
    name.push(".lock");
    store.with_file_name(name)
}

/// "pid N: the command line" of this process, URLs left out (they may carry passwords or
/// tokens, and the note is shown to whoever is refused).
fn holder_note() -> String {
    let args: Vec<String> = std::env::args()
        .map(|a| if a.contains("://") { "<url>".into() } else { a })
        .collect();
    format!("pid {}: {}\n", std::process::id(), args.join(" "))
}

/// File options that create owner-only (0600) files.
fn private_options() -> OpenOptions {
    let mut opts = OpenOptions::new();
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    opts
}

/// Creates `dir` and any missing parents owner-only (0700); existing ones are left as they are.
pub fn create_private_dir_all(dir: &Path) -> std::io::Result<()> {
    let mut b = std::fs::DirBuilder::new();
    b.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut b, 0o700);
    b.create(dir)
}

/// Makes the entries of `dir` (a rename, a new file) durable.
pub fn sync_dir(dir: &Path) -> std::io::Result<()> {
    File::open(dir)?.sync_all()
}

/// The directory that holds `path` ("." for a bare file name).
fn parent_of(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// A temp file beside `path`, unique among processes and threads.
fn temp_beside(path: &Path) -> PathBuf {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let mut name = std::ffi::OsString::from(".");
    name.push(path.file_name().unwrap_or_default());
    name.push(format!(
        ".tmp.{}.{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    path.with_file_name(name)
}

/// Writes `bytes` to a new owner-only temp file beside `path` and fsyncs it.
fn write_temp(path: &Path, bytes: &[u8]) -> Result<PathBuf, DataDirError> {
    let dir = parent_of(path);
    create_private_dir_all(dir).map_err(io_at(dir))?;
    let tmp = temp_beside(path);
    let written = (|| {
        let mut f = private_options().write(true).create_new(true).open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()
    })();
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(io_at(&tmp)(e));
    }
    Ok(tmp)
}

/// Replaces `path` with `bytes` atomically and durably: temp file, fsync, rename, fsync of
/// the directory. A crash leaves either the old file or the new one.
pub fn replace(path: &Path, bytes: &[u8]) -> Result<(), DataDirError> {
    let tmp = write_temp(path, bytes)?;
    if let Err(e) = std::fs::rename(&tmp, path) {
        let _ = std::fs::remove_file(&tmp);
        return Err(io_at(path)(e));
    }
    sync_dir(parent_of(path)).map_err(io_at(parent_of(path)))
}

/// Creates `path` holding `bytes` unless it exists, atomically: the file appears whole or
/// not at all. When several processes or threads race, exactly one wins and every caller
/// gets the winner's bytes back.
pub fn create_once(path: &Path, bytes: &[u8]) -> Result<Vec<u8>, DataDirError> {
    match std::fs::read(path) {
        Ok(existing) => return Ok(existing),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(io_at(path)(e)),
    }
    let tmp = write_temp(path, bytes)?;
    // link(2) fails if the name exists, so only one racer's complete file gets it.
    let linked = std::fs::hard_link(&tmp, path);
    let _ = std::fs::remove_file(&tmp);
    match linked {
        Ok(()) => {
            sync_dir(parent_of(path)).map_err(io_at(parent_of(path)))?;
            Ok(bytes.to_vec())
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            std::fs::read(path).map_err(io_at(path))
        }
        Err(e) => Err(io_at(path)(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_writer_is_refused_naming_the_store_and_the_holder_until_the_first_drops() {
        let dir = tempfile::tempdir().unwrap();
        let store = dir.path().join("alerts.jsonl");
        let first = WriterLock::acquire(&store, "alert store").unwrap();
        let err = WriterLock::acquire(&store, "alert store").unwrap_err();
        let msg = err.to_string();
        assert!(matches!(err, DataDirError::Busy { .. }), "{msg}");
        assert!(msg.contains("alert store"), "{msg}");
        assert!(msg.contains(store.to_str().unwrap()), "{msg}");
        assert!(
            msg.contains(&format!("pid {}", std::process::id())),
            "{msg}"
        );
        drop(first);
        WriterLock::acquire(&store, "alert store").unwrap();
    }

    #[test]
    fn create_once_racing_threads_all_get_one_value() {
        for round in 0..20 {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("watchlist.key");
            let barrier = std::sync::Arc::new(std::sync::Barrier::new(8));
            let got: Vec<Vec<u8>> = std::thread::scope(|s| {
                let handles: Vec<_> = (0..8u8)
                    .map(|i| {
                        let (barrier, path) = (barrier.clone(), path.clone());
                        s.spawn(move || {
                            barrier.wait();
                            create_once(&path, &[i; 32]).unwrap()
                        })
                    })
                    .collect();
                handles.into_iter().map(|h| h.join().unwrap()).collect()
            });
            let on_disk = std::fs::read(&path).unwrap();
            assert!(got.iter().all(|k| *k == on_disk), "round {round}: {got:?}");
            let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
            assert_eq!(names.len(), 1, "temp files left behind");
        }
    }

    #[test]
    fn replace_and_private_dirs_are_owner_only() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let sub = dir.path().join("a/b");
        create_private_dir_all(&sub).unwrap();
        let f = sub.join("x.json");
        replace(&f, b"one").unwrap();
        replace(&f, b"two").unwrap();
        assert_eq!(std::fs::read(&f).unwrap(), b"two");
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&dir.path().join("a")), 0o700);
        assert_eq!(mode(&sub), 0o700);
        assert_eq!(mode(&f), 0o600);
    }
}
