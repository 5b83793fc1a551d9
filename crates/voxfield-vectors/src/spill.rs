//! Records sorted into buckets, held in memory up to a budget and appended
//! to one file per bucket beyond it: how a write or a pyramid build sorts
//! out more records than memory holds.

use std::collections::HashMap;
use std::hash::Hash;
use std::io::Write;
use std::path::PathBuf;
use std::sync::Mutex;

use rayon::prelude::*;
use voxfield_core::{Error, Result};

/// Bytes of records held before they are appended to the bucket files
/// (`VOXFIELD_SPILL_MB` overrides it, e.g. to test spilling on small inputs).
pub const SPILL_BUDGET: usize = 128 << 20;

/// The spill budget in bytes, `VOXFIELD_SPILL_MB` if set.
pub(crate) fn spill_budget() -> usize {
    std::env::var("VOXFIELD_SPILL_MB")
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
        .map_or(SPILL_BUDGET, |mb| mb.clamp(1, 1 << 20) << 20)
}

/// Buckets of records, in the order pushed, spilled to files in `dir`
/// (created on the first spill) named by `name(key)`.
pub(crate) struct Spill<K> {
    dir: PathBuf,
    name: fn(&K) -> String,
    budget: usize,
    /// Records held per bucket (taken out by `take` under the lock).
    buffers: Mutex<HashMap<K, Vec<u8>>>,
    held: usize,
    /// Whether records have gone to files.
    flushed: bool,
}

impl<K: Hash + Eq + Clone + Send + Sync> Spill<K> {
    pub(crate) fn new(dir: PathBuf, budget: usize, name: fn(&K) -> String) -> Spill<K> {
        Spill {
            dir,
            name,
            budget,
            buffers: Mutex::new(HashMap::new()),
            held: 0,
            flushed: false,
        }
    }

    /// Appends `record` to bucket `key`, spilling every bucket held to its
    /// file once more than the budget is held.
    pub(crate) fn push(&mut self, key: K, record: &[u8]) -> Result<()> {
        self.buffers
            .get_mut()
            .expect("no panics while held")
            .entry(key)
            .or_default()
            .extend_from_slice(record);
        self.held += record.len();
        if self.held > self.budget {
            self.flush()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<()> {
        let (dir, name) = (&self.dir, self.name);
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        self.buffers
            .get_mut()
            .expect("no panics while held")
            .par_iter_mut()
            .filter(|(_, b)| !b.is_empty())
            .try_for_each(|(k, b)| -> Result<()> {
                let p = dir.join(name(k));
                let mut f = std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&p)
                    .map_err(|e| Error::io(&p, e))?;
                f.write_all(b).map_err(|e| Error::io(&p, e))?;
                b.clear();
                b.shrink_to(0);
                Ok(())
            })?;
        self.held = 0;
        self.flushed = true;
        Ok(())
    }

    /// The buckets that hold records.
    pub(crate) fn keys(&mut self) -> Vec<K> {
        self.buffers
            .get_mut()
            .expect("no panics while held")
            .keys()
            .cloned()
            .collect()
    }

    /// Every record of bucket `key` in the order pushed (its file, then what
    /// is held), removing both; callable from many threads at once.
    pub(crate) fn take(&self, key: &K) -> Result<Vec<u8>> {
        let held = self
            .buffers
            .lock()
            .expect("no panics while held")
            .remove(key)
            .unwrap_or_default();
        if !self.flushed {
            return Ok(held);
        }
        let p = self.dir.join((self.name)(key));
        let mut b = match std::fs::read(&p) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => vec![],
            Err(e) => return Err(Error::io(&p, e)),
        };
        if !b.is_empty() {
            std::fs::remove_file(&p).map_err(|e| Error::io(&p, e))?;
        }
        if b.is_empty() {
            return Ok(held);
        }
        b.reserve_exact(held.len());
        b.extend(held);
        Ok(b)
    }

    /// Removes the spill files' directory, if any were written.
    pub(crate) fn remove(self) -> Result<()> {
        match std::fs::remove_dir_all(&self.dir) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(Error::io(&self.dir, e)),
            _ => Ok(()),
        }
    }
}
