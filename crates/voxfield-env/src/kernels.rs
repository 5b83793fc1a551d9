//! Dense smoothing kernels kept for repeated smoothing — neurospatial's
//! `compute_kernel(cache=True)`: once a (bandwidth, mode, operator) kernel is
//! built and cached, `smooth` at that key is one dense product (n² per field)
//! instead of an exponential action; without one, smoothing stays matrix-free.
//! The cache holds at most [`KERNEL_CACHE_BYTES`] per environment (least
//! recently used first out); a kernel larger than that is returned uncached.

use std::sync::{Arc, Mutex};

use rayon::prelude::*;
use voxfield_core::dot::dot;

use crate::smooth::{Mode, Operator};

/// Bytes of dense kernels one environment keeps (1 GiB: an 11,585-bin kernel).
pub const KERNEL_CACHE_BYTES: usize = 1 << 30;

/// (bandwidth bits, mode, operator).
pub(crate) type KernelKey = (u64, Mode, Operator);

/// Kernels by key, least recently used first.
#[derive(Debug, Default)]
pub(crate) struct KernelCache(Mutex<Vec<(KernelKey, Arc<Vec<f64>>)>>);

impl KernelCache {
    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<(KernelKey, Arc<Vec<f64>>)>> {
        // Every update completes before unlocking: a poisoned lock is consistent.
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The cached kernel of `key` (now the most recently used).
    pub(crate) fn get(&self, key: KernelKey) -> Option<Arc<Vec<f64>>> {
        let mut v = self.lock();
        let i = v.iter().position(|(k, _)| *k == key)?;
        let entry = v.remove(i);
        let kernel = entry.1.clone();
        v.push(entry);
        Some(kernel)
    }

    /// Keeps `kernel` under `key`, evicting the least recently used past the budget.
    pub(crate) fn insert(&self, key: KernelKey, kernel: Arc<Vec<f64>>) {
        let bytes = |k: &Arc<Vec<f64>>| k.len() * 8;
        if bytes(&kernel) > KERNEL_CACHE_BYTES {
            return;
        }
        let mut v = self.lock();
        v.retain(|(k, _)| *k != key);
        while v.iter().map(|(_, k)| bytes(k)).sum::<usize>() + bytes(&kernel) > KERNEL_CACHE_BYTES {
            v.remove(0);
        }
        v.push((key, kernel));
    }

    pub(crate) fn clear(&self) {
        self.lock().clear();
    }

    /// How many kernels are cached (for tests and reports).
    pub(crate) fn len(&self) -> usize {
        self.lock().len()
    }
}

/// Products below this many multiply-adds run on the calling thread: a few
/// hundred thousand take tens of microseconds, less than waking a pool.
const SERIAL_WORK: usize = 1 << 18;

/// `kernel` (n × n, row-major) times `fields` (n × k, bin-major), rows in
/// parallel when the product is large.
pub(crate) fn apply(kernel: &[f64], fields: &[f64], n: usize, k: usize) -> Vec<f64> {
    let mut out = vec![0.0; n * k];
    let row = |(i, o): (usize, &mut [f64])| {
        let row = &kernel[i * n..(i + 1) * n];
        if k == 1 {
            o[0] = dot(row, fields);
            return;
        }
        for (j, &w) in row.iter().enumerate() {
            if w != 0.0 {
                for (o, f) in o.iter_mut().zip(&fields[j * k..(j + 1) * k]) {
                    *o += w * f;
                }
            }
        }
    };
    if n * n * k < SERIAL_WORK {
        out.chunks_mut(k).enumerate().for_each(row);
    } else {
        out.par_chunks_mut(k).enumerate().for_each(row);
    }
    out
}
