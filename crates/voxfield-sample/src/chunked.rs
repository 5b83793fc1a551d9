//! Sampling volumes stored in compressed chunks (Zarr, HDF5, sparse bricks).
//!
//! A request is grouped by the chunk holding each position's first tap (a counting
//! sort, O(N + chunks)); groups run in parallel. Each group decodes its chunk once
//! (through the shared byte-budgeted `ChunkCache`) and runs the same kernel as
//! memory-mapped volumes on the decoded buffer. Points whose taps cross into
//! neighbouring chunks, and points at the volume's edges, read their taps through
//! a per-group neighbourhood of decoded chunks, so crossing a chunk border costs a
//! few extra index computations, not a slow path.

use std::borrow::Cow;
use std::cell::RefCell;
use std::sync::Arc;

use rayon::prelude::*;
use voxfield_core::cache::{new_source_id, ChunkCache, ChunkKey};
use voxfield_core::voxel::Voxel;
use voxfield_core::{chunk_grid, with_voxel, Affine, Error, Field, Result, VolumeSource};

use crate::kernel::{Kernel, Strided};
use crate::{Method, SampleOptions};

/// A borrowed source, or one the field owns (spline coefficients of a source).
enum Src<'a> {
    Borrowed(&'a dyn VolumeSource),
    Owned(Box<dyn VolumeSource + 'a>),
}

impl<'a> std::ops::Deref for Src<'a> {
    type Target = dyn VolumeSource + 'a;
    fn deref(&self) -> &Self::Target {
        match self {
            Src::Borrowed(s) => *s,
            Src::Owned(s) => s.as_ref(),
        }
    }
}

/// A chunked volume seen as a continuous field.
pub struct ChunkedField<'a> {
    source: Src<'a>,
    id: u64,
    cache: Arc<ChunkCache>,
    method: Method,
    kernel: Kernel,
    chunk_shape: [usize; 3],
    grid: [usize; 3],
}

const NO_CHUNK: usize = usize::MAX;

/// A decoded chunk and its chunk-grid index.
type Decoded = ([usize; 3], Arc<[u8]>);

impl<'a> ChunkedField<'a> {
    /// `world_to_index` as for `VolumeField`. Decoded chunks go through `cache`.
    pub fn new(
        source: &'a dyn VolumeSource,
        opts: SampleOptions,
        world_to_index: Option<Affine>,
        cache: Arc<ChunkCache>,
    ) -> Self {
        let info = source.info();
        let kernel = Kernel::new(info.shape, &opts, info.value_scale, world_to_index);
        Self {
            source: Src::Borrowed(source),
            id: new_source_id(),
            cache,
            method: opts.method,
            kernel,
            chunk_shape: info.chunk_shape,
            grid: chunk_grid(info),
        }
    }

    /// Keys this field's chunks in the cache by `id` instead of a fresh id, so
    /// fields made one after another over the same source (one per request)
    /// share decoded chunks. `id` must name this source alone in `cache`.
    pub fn with_source_id(mut self, id: u64) -> Self {
        self.id = id;
        self
    }

    /// A prefiltered B-spline of `source` (orders 2 to 5, `opts.method` must be a
    /// `Spline`): coefficients are computed per brick with a halo and cached.
    pub fn spline(
        source: &'a dyn VolumeSource,
        opts: SampleOptions,
        world_to_index: Option<Affine>,
        cache: Arc<ChunkCache>,
    ) -> Result<Self> {
        let Method::Spline { order, .. } = opts.method else {
            return Err(Error::invalid(
                "ChunkedField::spline needs a B-spline method",
            ));
        };
        let coef = crate::spline::SplineCoefficients::new(source, order, opts.mode, opts.cval)?;
        let shift = coef.shift();
        let info = coef.info().clone();
        let unfiltered = SampleOptions {
            method: Method::Spline {
                order,
                prefilter: false,
            },
            ..opts
        };
        let mut kernel = Kernel::new(info.shape, &unfiltered, None, world_to_index);
        // Positions move by the padding; every padded axis is padded alike.
        kernel.shift = shift.iter().copied().max().unwrap_or(0) as f64;
        if shift.iter().any(|&p| p != 0 && p as f64 != kernel.shift) {
            return Err(Error::invalid("inconsistent spline padding"));
        }
        kernel.pad_axes = shift.map(|p| p > 0);
        Ok(Self {
            id: new_source_id(),
            cache,
            method: unfiltered.method,
            kernel,
            chunk_shape: info.chunk_shape,
            grid: chunk_grid(&info),
            source: Src::Owned(Box::new(coef)),
        })
    }

    fn chunk(&self, c: [usize; 3]) -> Result<Arc<[u8]>> {
        let info = self.source.info();
        let bytes = voxfield_core::chunk_bytes(info, self.cache.budget().max(1 << 20))?;
        self.cache.get_or_load(
            ChunkKey {
                source: self.id,
                chunk: c,
            },
            || {
                let mut buf = vec![0u8; bytes];
                self.source.read_chunk(c, &mut buf)?;
                Ok(buf)
            },
        )
    }

    /// Loads the groups' chunks into the cache with `concurrency()` reads in
    /// flight (plain threads: each read blocks on the network, not a core).
    fn prefetch(&self, groups: &[(usize, usize, usize)]) -> Result<()> {
        let keys: Vec<[usize; 3]> = groups
            .iter()
            .filter(|g| g.0 != NO_CHUNK)
            .map(|g| self.unravel(g.0))
            .collect();
        let next = std::sync::atomic::AtomicUsize::new(0);
        let failed = std::sync::Mutex::new(None);
        let workers = self.source.concurrency().min(keys.len());
        std::thread::scope(|s| {
            for _ in 0..workers {
                s.spawn(|| loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    if i >= keys.len() {
                        break;
                    }
                    if let Err(e) = self.chunk(keys[i]) {
                        next.store(keys.len(), std::sync::atomic::Ordering::Relaxed);
                        failed
                            .lock()
                            .unwrap_or_else(|p| p.into_inner())
                            .get_or_insert(e);
                        break;
                    }
                });
            }
        });
        match failed.into_inner().unwrap_or_else(|p| p.into_inner()) {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    fn chunk_strides(&self) -> [isize; 3] {
        let s = self.source.info().dtype.size() as isize;
        let cs = self.chunk_shape.map(|n| n as isize);
        [cs[1] * cs[2] * s, cs[2] * s, s]
    }

    /// Linear id of the chunk holding `tap`.
    fn chunk_id(&self, tap: [usize; 3]) -> usize {
        let c = [0, 1, 2].map(|a| tap[a] / self.chunk_shape[a]);
        (c[0] * self.grid[1] + c[1]) * self.grid[2] + c[2]
    }

    fn unravel(&self, id: usize) -> [usize; 3] {
        [
            id / (self.grid[1] * self.grid[2]),
            (id / self.grid[2]) % self.grid[1],
            id % self.grid[2],
        ]
    }

    fn run<V: Voxel, const K: usize>(&self, points: &[[f64; 3]], out: &mut [f64]) -> Result<()> {
        let n = points.len();
        let idx: Cow<[[f64; 3]]> = match (&self.kernel.to_index, self.kernel.shift) {
            (None, 0.0) => Cow::Borrowed(points),
            _ => Cow::Owned(points.par_iter().map(|p| self.kernel.to_index(p)).collect()),
        };
        let keys: Vec<usize> = idx
            .par_iter()
            .map(|x| {
                self.kernel
                    .first_tap::<K>(x)
                    .map_or(NO_CHUNK, |t| self.chunk_id(t))
            })
            .collect();
        let (order, groups) = group_by_key(&keys, self.grid.iter().product());
        drop(keys);
        let mut sorted = vec![0.0; n];
        let mut slices = Vec::with_capacity(groups.len());
        let mut rest = sorted.as_mut_slice();
        for g in &groups {
            let (head, tail) = rest.split_at_mut(g.2 - g.1);
            slices.push(head);
            rest = tail;
        }
        // Remote sources: fetch each wave of chunks many at a time first (a
        // wave fills at most half the cache, so it is still there to be read).
        let remote = self.source.concurrency() > 1;
        let wave = match remote {
            true => {
                let bytes = voxfield_core::chunk_bytes(self.source.info(), usize::MAX)?.max(1);
                (self.cache.budget() / 2 / bytes).max(1)
            }
            false => groups.len().max(1),
        };
        let mut slices = slices.into_iter();
        for part in groups.chunks(wave) {
            let vals: Vec<&mut [f64]> = slices.by_ref().take(part.len()).collect();
            if remote {
                self.prefetch(part)?;
            }
            part.par_iter()
                .zip(vals)
                .try_for_each(|(&(key, start, end), vals)| {
                    self.run_group::<V, K>(key, &order[start..end], &idx, vals)
                })?;
        }
        for (k, &i) in order.iter().enumerate() {
            out[i as usize] = sorted[k];
        }
        Ok(())
    }

    fn run_group<V: Voxel, const K: usize>(
        &self,
        key: usize,
        members: &[u32],
        idx: &[[f64; 3]],
        vals: &mut [f64],
    ) -> Result<()> {
        let pts: Vec<[f64; 3]> = members.iter().map(|&i| idx[i as usize]).collect();
        if key == NO_CHUNK {
            vals.fill(self.kernel.cval); // non-finite positions
            return Ok(());
        }
        let c = self.unravel(key);
        let data = self.chunk(c)?;
        let shape = self.source.info().shape;
        let origin = [0, 1, 2].map(|a| c[a] * self.chunk_shape[a]);
        let strides = self.chunk_strides();
        let grid = Strided {
            base: data.as_ptr(),
            shape: [0, 1, 2].map(|a| self.chunk_shape[a].min(shape[a] - origin[a])),
            strides,
        };
        // Neighbouring chunks, decoded on first use by this group.
        let near: RefCell<Vec<Decoded>> = RefCell::new(vec![(c, data.clone())]);
        let failure: RefCell<Option<Error>> = RefCell::new(None);
        let load = |g: [usize; 3]| -> f64 {
            let cc = [0, 1, 2].map(|a| g[a] / self.chunk_shape[a]);
            let local = [0, 1, 2].map(|a| g[a] - cc[a] * self.chunk_shape[a]);
            let off = (0..3)
                .map(|a| local[a] as isize * strides[a])
                .sum::<isize>();
            let mut near = near.borrow_mut();
            let pos = match near.iter().position(|(k, _)| *k == cc) {
                Some(p) => p,
                None => match self.chunk(cc) {
                    Ok(d) => {
                        near.push((cc, d));
                        near.len() - 1
                    }
                    Err(e) => {
                        failure.borrow_mut().get_or_insert(e);
                        return f64::NAN;
                    }
                },
            };
            // SAFETY: `local` is inside the chunk's full shape, which the buffer holds.
            unsafe { V::load(near[pos].1.as_ptr().offset(off)) }
        };
        self.kernel
            .sample::<V, K>(&grid, origin, false, &pts, vals, &load);
        match failure.into_inner() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

/// Sorts point indices by key: returns the order and `(key, start, end)` groups.
/// A counting sort when the key space is small next to the request, else a sort.
fn group_by_key(keys: &[usize], nkeys: usize) -> (Vec<u32>, Vec<(usize, usize, usize)>) {
    let n = keys.len();
    let mut order = vec![0u32; n];
    let mut groups = Vec::new();
    if nkeys <= 8 * n + 4096 {
        let bucket = |k: usize| if k == NO_CHUNK { nkeys } else { k };
        let mut start = vec![0usize; nkeys + 2];
        for &k in keys {
            start[bucket(k) + 1] += 1;
        }
        for b in 0..=nkeys {
            start[b + 1] += start[b];
            if start[b + 1] > start[b] {
                groups.push((
                    if b == nkeys { NO_CHUNK } else { b },
                    start[b],
                    start[b + 1],
                ));
            }
        }
        let mut next = start;
        for (i, &k) in keys.iter().enumerate() {
            let b = bucket(k);
            order[next[b]] = i as u32;
            next[b] += 1;
        }
    } else {
        let mut pairs: Vec<(usize, u32)> = keys
            .iter()
            .enumerate()
            .map(|(i, &k)| (k, i as u32))
            .collect();
        pairs.par_sort_unstable();
        for (j, &(k, i)) in pairs.iter().enumerate() {
            order[j] = i;
            match groups.last_mut() {
                Some((gk, _, end)) if *gk == k => *end = j + 1,
                _ => groups.push((k, j, j + 1)),
            }
        }
    }
    (order, groups)
}

impl Field for ChunkedField<'_> {
    fn sample_block(&self, points: &[[f64; 3]], out: &mut [f64]) -> Result<()> {
        if points.len() > u32::MAX as usize {
            return Err(Error::invalid("more than 2^32 positions in one batch"));
        }
        crate::check_unfiltered(self.method)?;
        let dtype = self.source.info().dtype;
        with_voxel!(dtype, Endian::NATIVE, |V| with_taps!(self.method, |K| self
            .run::<V, K>(points, out)))
    }

    fn batch_hint(&self) -> usize {
        usize::MAX
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grouping_is_a_stable_partition() {
        let keys = [3, 1, NO_CHUNK, 3, 0, 1, 3];
        for nkeys in [4, 1 << 30] {
            let (order, groups) = group_by_key(&keys, nkeys);
            let mut seen = vec![];
            for (k, s, e) in &groups {
                for &i in &order[*s..*e] {
                    assert_eq!(keys[i as usize], *k);
                    seen.push(i);
                }
            }
            seen.sort();
            assert_eq!(seen, (0..7).collect::<Vec<u32>>());
        }
    }
}
