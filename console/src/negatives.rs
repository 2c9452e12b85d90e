//! The negative list's file, `DATA_DIR/negatives.txt`, that every matcher follows: always the
//! whole list as the database holds it, rewritten when the console opens (so a lost or
//! edited file is restored) and after every negative review.
//!
//! A rewrite reads the list and replaces the file under a lock: this process's, then an
//! advisory lock (`flock`) on `negatives.txt.lock` that other consoles sharing the data dir
//! take too. A writer adds its hash to the database before it takes the lock, so whoever
//! writes last has read every hash added before it: two reviews at once cannot leave one
//! out. The file is replaced atomically (temp file in the same directory, fsync, rename,
//! fsync of the directory).

use std::fs::File;
use std::path::{Path, PathBuf};

use crate::store::{StateStore, StoreError};

/// Why the file was not rewritten.
#[derive(Debug, thiserror::Error)]
pub enum NegativesError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot lock {path}: {source}")]
    Lock {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the negative list could not be written: {0}")]
    Write(#[from] datadir::DataDirError),
    #[error("the negative list writer stopped: {0}")]
    Join(String),
}

/// The file, and the lock its writers in this process take turns on.
pub struct NegativesFile {
    data_dir: PathBuf,
    turn: tokio::sync::Mutex<()>,
}

impl NegativesFile {
    pub fn new(data_dir: &Path) -> NegativesFile {
        NegativesFile {
            data_dir: data_dir.to_path_buf(),
            turn: tokio::sync::Mutex::new(()),
        }
    }

    /// The file's path.
    pub fn path(&self) -> PathBuf {
        self.data_dir.join(alerts::negatives::NEGATIVES_FILE)
    }

    /// Writes the whole list from `store`; returns how many hashes it holds.
    pub async fn rewrite(&self, store: &StateStore) -> Result<usize, NegativesError> {
        let _turn = self.turn.lock().await;
        let lock = self.lock().await?;
        let all = store.negatives().await?;
        let dir = self.data_dir.clone();
        tokio::task::spawn_blocking(move || {
            let written = alerts::negatives::write(&dir, &all).map(|()| all.len());
            // Released only once the new file is in place.
            drop(lock);
            written
        })
        .await
        .map_err(|e| NegativesError::Join(e.to_string()))?
        .map_err(NegativesError::from)
    }

    /// Waits for the lock other processes sharing the data dir take.
    async fn lock(&self) -> Result<File, NegativesError> {
        let path = datadir::lock_path(&self.path());
        let at = path.clone();
        let err = move |source| NegativesError::Lock {
            path: at.clone(),
            source,
        };
        let dir = self.data_dir.clone();
        tokio::task::spawn_blocking(move || {
            datadir::create_private_dir_all(&dir)?;
            let mut opts = std::fs::OpenOptions::new();
            opts.create(true).truncate(false).write(true);
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
            let file = opts.open(&path)?;
            file.lock()?;
            Ok(file)
        })
        .await
        .map_err(|e| NegativesError::Join(e.to_string()))?
        .map_err(err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// A rewrite waits for another writer's lock and then writes what the database holds
    /// by then, including a hash added while it waited.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_rewrite_waits_for_the_lock_and_leaves_no_hash_out() {
        let dir = tempfile::tempdir().unwrap();
        let store = crate::store::open(None, dir.path()).await.unwrap();
        let (a, b) = ("aa".repeat(32), "bb".repeat(32));
        store.add_negative(&a, "alert-a", "ana").await.unwrap();
        let file = std::sync::Arc::new(NegativesFile::new(dir.path()));
        // Another console sharing the data dir is writing.
        let other = File::create(datadir::lock_path(&file.path())).unwrap();
        other.lock().unwrap();
        let store = std::sync::Arc::new(store);
        let writer = {
            let (file, store) = (file.clone(), store.clone());
            tokio::spawn(async move { file.rewrite(&store).await })
        };
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert!(
            !writer.is_finished(),
            "the rewrite did not wait for the lock"
        );
        assert!(!file.path().exists());
        // The other console's hash is committed before it lets go.
        store.add_negative(&b, "alert-b", "bob").await.unwrap();
        drop(other);
        assert_eq!(writer.await.unwrap().unwrap(), 2);
        let listed = std::fs::read_to_string(file.path()).unwrap();
        assert_eq!(listed, format!("{a}\n{b}\n"));
    }

    /// Many reviews at once: every hash ends up in the file.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_rewrites_leave_no_hash_out() {
        let dir = tempfile::tempdir().unwrap();
        let store = std::sync::Arc::new(crate::store::open(None, dir.path()).await.unwrap());
        let file = std::sync::Arc::new(NegativesFile::new(dir.path()));
        let tasks: Vec<_> = (0..16u8)
            .map(|i| {
                let (file, store) = (file.clone(), store.clone());
                tokio::spawn(async move {
                    let h = format!("{i:02x}").repeat(32);
                    store.add_negative(&h, "x", "ana").await.unwrap();
                    file.rewrite(&store).await.unwrap();
                })
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
        let listed = std::fs::read_to_string(file.path()).unwrap();
        assert_eq!(listed.lines().count(), 16, "{listed}");
    }
}
