//! Rebuilding an index written with an older schema.
//!
//! Tantivy cannot add fields to an existing index, and the derived fields (`key`, `fetched`,
//! `network`) must be on every document for filters to be right. So when `open` finds an
//! index whose schema differs from the current one, every stored document is read back, its
//! derived fields computed again, and the lot written into a fresh index beside it
//! (`index.new-<ts>`), which then takes the old one's place: `index` → `index.old-<ts>`,
//! `index.new-<ts>` → `index`, and the old one is removed.
//!
//! The old index's writer lock is held throughout, so no writer adds documents the copy would
//! miss and two processes never migrate at once; what a crash during an earlier rebuild left
//! (`index.new-*`) is removed first. A crash between the two renames leaves no
//! `index` but a complete `index.new-*`: [`recover_interrupted_swap`] puts it in place on the
//! next open.

use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use tantivy::directory::error::LockError;
use tantivy::directory::INDEX_WRITER_LOCK;
use tantivy::schema::{Field, Schema};
use tantivy::{
    Directory, Index, IndexReader, IndexSettings, IndexWriter, ReloadPolicy, TantivyDocument,
};

use super::{add_derived, mmap_dir, Fields, DERIVED_FIELDS};
use crate::IndexError;

/// Memory budget of the writer that fills the new index.
const MIGRATION_HEAP_BYTES: usize = 64 * 1024 * 1024;

/// Rebuilds the index at `path` (opened as `old`) with `schema` and swaps it into place.
pub(super) fn upgrade(
    old: Index,
    path: &Path,
    schema: &Schema,
    f: Fields,
) -> Result<(), IndexError> {
    let _lock = old
        .directory()
        .acquire_lock(&INDEX_WRITER_LOCK)
        .map_err(|e| match e {
            LockError::LockBusy => IndexError::Busy {
                path: path.to_path_buf(),
            },
            LockError::IoError(e) => io_error(path, e.to_string()),
        })?;
    // With the lock held nobody else is rebuilding: an `index.new-*` is from a crash.
    let (stale, _) = leftovers(path)?;
    for (_, dir) in stale {
        remove_leftover(&dir);
    }
    let stamp = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    let new_path = sibling(path, &format!("new-{stamp}"));
    let old_path = sibling(path, &format!("old-{stamp}"));
    datadir::create_private_dir_all(&new_path).map_err(|source| IndexError::Io {
        path: new_path.clone(),
        source,
    })?;
    let copied = copy_into(&old, path, &new_path, schema, f);
    drop(old);
    let migrated = match copied {
        Ok(n) => n,
        Err(e) => {
            let _ = std::fs::remove_dir_all(&new_path);
            return Err(e);
        }
    };
    rename(path, &old_path)?;
    rename(&new_path, path)?;
    if let Some(parent) = path.parent() {
        let _ = datadir::sync_dir(parent);
    }
    remove_leftover(&old_path);
    tracing::warn!(
        path = %path.display(),
        migrated,
        "the index had an older schema: rebuilt it with the current one"
    );
    Ok(())
}

/// Puts a completed `index.new-*` in place when a crash interrupted the swap (no `index`, an
/// `index.old-*` beside it), then removes the old one as the swap would have.
pub(super) fn recover_interrupted_swap(path: &Path) -> Result<(), IndexError> {
    if path.exists() || !path.parent().is_some_and(Path::is_dir) {
        return Ok(());
    }
    let (mut news, olds) = leftovers(path)?;
    if olds.is_empty() {
        return Ok(());
    }
    // Stamps are nanoseconds of the same width for centuries: the greatest is the newest.
    news.sort();
    let Some((_, newest)) = news.pop() else {
        return Ok(());
    };
    tracing::warn!(
        from = %newest.display(),
        "an index upgrade was interrupted: putting the rebuilt index in place"
    );
    rename(&newest, path)?;
    for old in olds {
        remove_leftover(&old);
    }
    Ok(())
}

/// The `index.new-*` (with their stamps) and `index.old-*` directories beside `path`.
type Leftovers = (Vec<(String, PathBuf)>, Vec<PathBuf>);

fn leftovers(path: &Path) -> Result<Leftovers, IndexError> {
    let parent = path.parent().unwrap_or(Path::new("."));
    let entries = std::fs::read_dir(parent).map_err(|source| IndexError::Io {
        path: parent.to_path_buf(),
        source,
    })?;
    let base = path.file_name().unwrap_or_default().to_string_lossy();
    let (new_prefix, old_prefix) = (format!("{base}.new-"), format!("{base}.old-"));
    let (mut news, mut olds) = (Vec::new(), Vec::new());
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if let Some(stamp) = name.strip_prefix(&new_prefix) {
            news.push((stamp.to_string(), entry.path()));
        } else if name.starts_with(&old_prefix) {
            olds.push(entry.path());
        }
    }
    Ok((news, olds))
}

fn remove_leftover(dir: &Path) {
    if let Err(e) = std::fs::remove_dir_all(dir) {
        tracing::warn!(path = %dir.display(), error = %e, "cannot remove a leftover index");
    }
}

/// Writes every stored document of `old` (at `old_path`) into a new index at `new_path`;
/// returns how many.
fn copy_into(
    old: &Index,
    old_path: &Path,
    new_path: &Path,
    schema: &Schema,
    f: Fields,
) -> Result<usize, IndexError> {
    let new = Index::create(
        mmap_dir(new_path)?,
        schema.clone(),
        IndexSettings::default(),
    )?;
    let mut writer: IndexWriter = new.writer_with_num_threads(1, MIGRATION_HEAP_BYTES)?;
    let map = field_map(&old.schema(), schema);
    let reader: IndexReader = old
        .reader_builder()
        .reload_policy(ReloadPolicy::Manual)
        .try_into()?;
    let searcher = reader.searcher();
    let mut n = 0;
    for segment in searcher.segment_readers() {
        let store = segment.get_store_reader(64).map_err(|e| IndexError::Io {
            path: old_path.to_path_buf(),
            source: e,
        })?;
        for d in store.iter::<TantivyDocument>(segment.alive_bitset()) {
            writer.add_document(converted(&d?, &map, f))?;
            n += 1;
        }
    }
    writer.commit()?;
    writer.wait_merging_threads()?;
    Ok(n)
}

/// For each stored field of `old` that `new` has with the same name and value type (and is
/// not derived), the pair of fields.
fn field_map(old: &Schema, new: &Schema) -> Vec<(Field, Field)> {
    old.fields()
        .filter(|(_, e)| e.is_stored() && !DERIVED_FIELDS.contains(&e.name()))
        .filter_map(|(of, oe)| {
            let nf = new.get_field(oe.name()).ok()?;
            let ne = new.get_field_entry(nf);
            (ne.field_type().value_type() == oe.field_type().value_type()).then_some((of, nf))
        })
        .collect()
}

/// `d` in the new schema: its stored values, then the derived fields.
fn converted(d: &TantivyDocument, map: &[(Field, Field)], f: Fields) -> TantivyDocument {
    let mut out = TantivyDocument::new();
    for (field, value) in d.field_values() {
        if let Some((_, nf)) = map.iter().find(|(of, _)| *of == field) {
            out.add_field_value(*nf, value);
        }
    }
    add_derived(f, &mut out);
    out
}

/// `index.<suffix>` beside the index directory `path`.
fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".{suffix}"));
    path.with_file_name(name)
}

fn rename(from: &Path, to: &Path) -> Result<(), IndexError> {
    std::fs::rename(from, to).map_err(|source| IndexError::Io {
        path: from.to_path_buf(),
        source,
    })
}

fn io_error(path: &Path, msg: String) -> IndexError {
    IndexError::Io {
        path: path.to_path_buf(),
        source: std::io::Error::other(msg),
    }
}
