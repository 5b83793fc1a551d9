//! A byte-budgeted, thread-safe LRU cache of decoded chunks, shared by every
//! request (and every source) that is given the same `Arc<ChunkCache>`.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use crate::{Error, Result};

/// Identifies one chunk of one source.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ChunkKey {
    pub source: u64,
    pub chunk: [usize; 3],
}

/// A fresh id for a source's chunks in a shared cache.
pub fn new_source_id() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

pub struct ChunkCache {
    budget: usize,
    inner: Mutex<Lru>,
}

/// A chunk being decoded: other requests for it wait instead of decoding it again.
type Pending = Arc<OnceLock<std::result::Result<Arc<[u8]>, String>>>;

#[derive(Default)]
struct Lru {
    map: HashMap<ChunkKey, (Arc<[u8]>, u64)>,
    pending: HashMap<ChunkKey, Pending>,
    order: BTreeMap<u64, ChunkKey>,
    bytes: usize,
    clock: u64,
    hits: u64,
    misses: u64,
}

/// Counters for reports and tests.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CacheStats {
    pub hits: u64,
    pub misses: u64,
    pub bytes: usize,
    pub chunks: usize,
}

impl ChunkCache {
    /// Default budget: 512 MiB.
    pub const DEFAULT_BYTES: usize = 512 << 20;

    pub fn new(budget_bytes: usize) -> Arc<Self> {
        Arc::new(Self {
            budget: budget_bytes,
            inner: Mutex::new(Lru::default()),
        })
    }

    pub fn budget(&self) -> usize {
        self.budget
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Lru> {
        // A panic while holding the lock leaves a consistent map (every update is
        // done before unlocking), so a poisoned lock is still usable.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Returns the cached chunk, or decodes it with `load` (outside the lock) and
    /// caches it, evicting least-recently-used chunks beyond the budget. Concurrent
    /// requests for a chunk being decoded wait for that decode instead of repeating
    /// it. A chunk larger than the whole budget is returned without being cached.
    pub fn get_or_load(
        &self,
        key: ChunkKey,
        load: impl FnOnce() -> Result<Vec<u8>>,
    ) -> Result<Arc<[u8]>> {
        let pending = {
            let mut l = self.lock();
            l.clock += 1;
            let now = l.clock;
            if let Some((data, stamp)) = l.map.get_mut(&key) {
                let (data, old) = (data.clone(), *stamp);
                *stamp = now;
                l.order.remove(&old);
                l.order.insert(now, key);
                l.hits += 1;
                return Ok(data);
            }
            l.misses += 1;
            l.pending.entry(key).or_default().clone()
        };
        let mut own_error = None;
        let outcome = pending.get_or_init(|| match load() {
            Ok(v) => Ok(v.into()),
            Err(e) => {
                let msg = e.to_string();
                own_error = Some(e);
                Err(msg)
            }
        });
        let mut l = self.lock();
        l.pending.remove(&key);
        let data = match (outcome, own_error) {
            (Ok(d), _) => d.clone(),
            (Err(_), Some(e)) => return Err(e),
            (Err(msg), None) => return Err(Error::invalid(msg.clone())),
        };
        if data.len() > self.budget || l.map.contains_key(&key) {
            return Ok(data);
        }
        while l.bytes + data.len() > self.budget {
            let Some((_, victim)) = l.order.pop_first() else {
                break;
            };
            if let Some((old, _)) = l.map.remove(&victim) {
                l.bytes -= old.len();
            }
        }
        l.clock += 1;
        let now = l.clock;
        l.bytes += data.len();
        l.order.insert(now, key);
        l.map.insert(key, (data.clone(), now));
        Ok(data)
    }

    pub fn stats(&self) -> CacheStats {
        let l = self.lock();
        CacheStats {
            hits: l.hits,
            misses: l.misses,
            bytes: l.bytes,
            chunks: l.map.len(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn evicts_least_recently_used_within_budget() {
        let c = ChunkCache::new(300);
        let key = |i| ChunkKey {
            source: 1,
            chunk: [i, 0, 0],
        };
        for i in 0..3 {
            c.get_or_load(key(i), || Ok(vec![i as u8; 100])).unwrap();
        }
        c.get_or_load(key(0), || panic!("0 is cached")).unwrap(); // 0 becomes recent
        c.get_or_load(key(3), || Ok(vec![3; 100])).unwrap(); // evicts 1
        assert_eq!(c.stats().bytes, 300);
        c.get_or_load(key(2), || panic!("2 is cached")).unwrap();
        let mut reloaded = false;
        c.get_or_load(key(1), || {
            reloaded = true;
            Ok(vec![1; 100])
        })
        .unwrap();
        assert!(reloaded);
        assert!(c.stats().bytes <= 300);
        // Larger than the budget: returned, not cached.
        assert_eq!(
            c.get_or_load(key(9), || Ok(vec![0; 1000])).unwrap().len(),
            1000
        );
        assert!(c.stats().bytes <= 300);
    }

    #[test]
    fn concurrent_misses_decode_once() {
        let c = ChunkCache::new(1 << 20);
        let loads = std::sync::atomic::AtomicUsize::new(0);
        let k = ChunkKey {
            source: 2,
            chunk: [1, 2, 3],
        };
        std::thread::scope(|s| {
            for _ in 0..8 {
                s.spawn(|| {
                    c.get_or_load(k, || {
                        loads.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                        std::thread::sleep(std::time::Duration::from_millis(50));
                        Ok(vec![9; 10])
                    })
                    .unwrap()
                });
            }
        });
        assert_eq!(loads.load(std::sync::atomic::Ordering::SeqCst), 1);
    }

    #[test]
    fn errors_are_not_cached() {
        let c = ChunkCache::new(1000);
        let k = ChunkKey {
            source: 1,
            chunk: [0; 3],
        };
        assert!(c
            .get_or_load(k, || Err(crate::Error::invalid("corrupt")))
            .is_err());
        assert_eq!(c.get_or_load(k, || Ok(vec![7])).unwrap()[0], 7);
    }
}
