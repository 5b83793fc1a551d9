//! The lattice a render marches through: the field's values at voxel centres,
//! held as f32 in memory (the renderer's cache, bounded by a budget), with a
//! min/max macro-cell grid for empty-space skipping.
//!
//! Filling it reads each storage chunk once, in chunk order (slabs of chunk
//! rows in parallel); a neural model decodes whole rows with its coherent row
//! decoder. Between voxel centres values are trilinear, as a linear
//! `map_coordinates` gives; at centres they are the voxels themselves, so an
//! axis-aligned MIP equals `numpy.max` exactly.

use rayon::prelude::*;
use voxfield_core::work::Watch;
use voxfield_core::{Affine, Error, Field, Result, VolumeSource};

type V3 = [f64; 3];

/// Voxels per macro cell edge (a cell spans `CELL + 1` voxel centres, so every
/// trilinear sample inside it is bounded by its min and max).
pub const CELL: usize = 8;

/// Where lattice values come from: boxes of values at voxel centres.
pub trait LatticeSource: Sync {
    fn shape(&self) -> [usize; 3];
    /// Box shape that reads each stored chunk once (chunk-aligned boxes).
    fn block(&self) -> [usize; 3];
    /// Values of the box `[start, start + size)`, C order, into `out`.
    fn read(&self, start: [usize; 3], size: [usize; 3], out: &mut [f32]) -> Result<()>;
}

/// Stored voxels (any format; a neural model's decoded voxels), scaled by the
/// source's `value_scale`.
pub struct VolumeLattice<'a>(pub &'a dyn VolumeSource);

impl LatticeSource for VolumeLattice<'_> {
    fn shape(&self) -> [usize; 3] {
        self.0.info().shape
    }
    fn block(&self) -> [usize; 3] {
        let info = self.0.info();
        if self.0.contiguous().is_some() {
            // Memory-mapped: thin slabs of whole rows keep the scratch small.
            return [4.min(info.shape[0]), 256.min(info.shape[1]), info.shape[2]];
        }
        info.chunk_shape
    }
    fn read(&self, start: [usize; 3], size: [usize; 3], out: &mut [f32]) -> Result<()> {
        let mut buf = vec![0f64; out.len()];
        self.0.read_box(start, size, &mut buf)?;
        let (slope, inter) = self.0.info().value_scale.unwrap_or((1.0, 0.0));
        for (o, v) in out.iter_mut().zip(&buf) {
            *o = (v * slope + inter) as f32;
        }
        Ok(())
    }
}

/// Any field sampled at the voxel centres of a grid: `to_field` maps grid
/// indices to the field's coordinates (an RBF model over its samples' box).
pub struct FieldLattice<'a> {
    pub field: &'a dyn Field,
    pub shape: [usize; 3],
    pub to_field: Affine,
}

impl LatticeSource for FieldLattice<'_> {
    fn shape(&self) -> [usize; 3] {
        self.shape
    }
    fn block(&self) -> [usize; 3] {
        [1, self.shape[1].min(64), self.shape[2]]
    }
    fn read(&self, start: [usize; 3], size: [usize; 3], out: &mut [f32]) -> Result<()> {
        let mut pts = Vec::with_capacity(out.len());
        for i in 0..size[0] {
            for j in 0..size[1] {
                for k in 0..size[2] {
                    let p = [start[0] + i, start[1] + j, start[2] + k].map(|x| x as f64);
                    pts.push(self.to_field.apply(p));
                }
            }
        }
        let mut vals = vec![0f64; pts.len()];
        self.field.sample_block(&pts, &mut vals)?;
        for (o, v) in out.iter_mut().zip(vals) {
            *o = v as f32;
        }
        Ok(())
    }
}

/// Values at voxel centres with their macro-cell ranges.
pub struct Lattice {
    shape: [usize; 3],
    values: Vec<f32>,
    stride: [usize; 2],
    cells: [usize; 3],
    cell_min: Vec<f32>,
    cell_max: Vec<f32>,
}

impl Lattice {
    /// Bytes a lattice of `shape` holds (values and cells), or None past usize.
    pub fn bytes_for(shape: [usize; 3]) -> Option<usize> {
        let n = shape.iter().try_fold(1usize, |a, &b| a.checked_mul(b))?;
        n.checked_mul(4)?
            .checked_add(n / (CELL * CELL * CELL / 8 + 1) + 64)
    }

    /// Reads the whole lattice of `src` (refused beyond `budget` bytes, before
    /// allocating), then builds the macro cells. Progress per slab; `watch`
    /// stops it between slabs.
    pub fn load(src: &dyn LatticeSource, budget: usize, watch: &Watch) -> Result<Lattice> {
        let shape = src.shape();
        if shape.contains(&0) {
            return Err(Error::invalid(format!(
                "the field has an empty axis (shape {shape:?}): nothing to render"
            )));
        }
        let bytes = Lattice::bytes_for(shape).filter(|&b| b <= budget);
        let Some(_) = bytes else {
            return Err(Error::invalid(format!(
                "rendering holds the field's {} voxels as f32 ({:.1} GiB), over the memory budget of \
                 {:.1} GiB: render a coarser level (--scale-level, or a --size that lets the level \
                 be chosen) or raise the budget (--memory-mb)",
                shape.iter().map(|&n| n as u128).product::<u128>(),
                shape.iter().map(|&n| n as f64).product::<f64>() * 4.0 / (1u64 << 30) as f64,
                budget as f64 / (1u64 << 30) as f64
            )));
        };
        let n = shape[0] * shape[1] * shape[2];
        let mut values = Vec::new();
        values
            .try_reserve_exact(n)
            .map_err(|_| Error::invalid(format!("cannot allocate {n} voxels to render")))?;
        values.resize(n, 0f32);
        let block = src.block().map(|b| b.max(1));
        let block = [0, 1, 2].map(|a| block[a].min(shape[a]));
        let plane = shape[1] * shape[2];
        let slabs = shape[0].div_ceil(block[0]) as u64;
        let done = std::sync::atomic::AtomicU64::new(0);
        values
            .par_chunks_mut(block[0] * plane)
            .enumerate()
            .try_for_each(|(s, slab)| -> Result<()> {
                watch.check()?;
                let i0 = s * block[0];
                let h = slab.len() / plane;
                let mut buf = Vec::new();
                for j0 in (0..shape[1]).step_by(block[1]) {
                    for k0 in (0..shape[2]).step_by(block[2]) {
                        let size = [h, block[1].min(shape[1] - j0), block[2].min(shape[2] - k0)];
                        buf.resize(size[0] * size[1] * size[2], 0f32);
                        src.read([i0, j0, k0], size, &mut buf)?;
                        for (r, row) in buf.chunks_exact(size[2]).enumerate() {
                            let (i, j) = (r / size[1], j0 + r % size[1]);
                            let o = i * plane + j * shape[2] + k0;
                            slab[o..o + size[2]].copy_from_slice(row);
                        }
                    }
                }
                let d = done.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
                watch.report("reading the field", d, slabs);
                Ok(())
            })?;
        Ok(Lattice::from_values(shape, values))
    }

    /// A lattice over values already in memory (C order).
    pub fn from_values(shape: [usize; 3], values: Vec<f32>) -> Lattice {
        assert_eq!(values.len(), shape.iter().product::<usize>());
        let cells = shape.map(|n| (n.saturating_sub(1)).div_ceil(CELL).max(1));
        let stride = [shape[1] * shape[2], shape[2]];
        let mut lat = Lattice {
            shape,
            values,
            stride,
            cells,
            cell_min: Vec::new(),
            cell_max: Vec::new(),
        };
        let ranges: Vec<(f32, f32)> = (0..cells.iter().product::<usize>())
            .into_par_iter()
            .map(|c| lat.scan_cell(c))
            .collect();
        (lat.cell_min, lat.cell_max) = ranges.into_iter().unzip();
        lat
    }

    fn scan_cell(&self, c: usize) -> (f32, f32) {
        let idx = [
            c / (self.cells[1] * self.cells[2]),
            c / self.cells[2] % self.cells[1],
            c % self.cells[2],
        ];
        let lo = idx.map(|i| i * CELL);
        let hi = [0, 1, 2].map(|a| (lo[a] + CELL).min(self.shape[a] - 1));
        let (mut mn, mut mx) = (f32::INFINITY, f32::NEG_INFINITY);
        for i in lo[0]..=hi[0] {
            for j in lo[1]..=hi[1] {
                let o = i * self.stride[0] + j * self.stride[1];
                for &v in &self.values[o + lo[2]..=o + hi[2]] {
                    // NaN compares false: a cell of only NaN keeps (inf, -inf).
                    mn = mn.min(v);
                    mx = mx.max(v);
                }
            }
        }
        if mn > mx {
            (f32::NAN, f32::NAN)
        } else {
            (mn, mx)
        }
    }

    pub fn shape(&self) -> [usize; 3] {
        self.shape
    }

    pub fn values(&self) -> &[f32] {
        &self.values
    }

    /// The finite min and max of all values (None if none is finite).
    pub fn value_range(&self) -> Option<[f64; 2]> {
        let mn = self
            .cell_min
            .iter()
            .copied()
            .filter(|v| !v.is_nan())
            .fold(f32::INFINITY, f32::min);
        let mx = self
            .cell_max
            .iter()
            .copied()
            .filter(|v| !v.is_nan())
            .fold(f32::NEG_INFINITY, f32::max);
        (mn.is_finite() && mx.is_finite()).then_some([mn as f64, mx as f64])
    }

    pub(crate) fn cell_count(&self) -> usize {
        self.cell_min.len()
    }

    /// Min and max of cell `c` (NaN for a cell of NaN voxels).
    #[inline]
    pub(crate) fn cell_range(&self, c: usize) -> (f32, f32) {
        (self.cell_min[c], self.cell_max[c])
    }

    /// The cell holding position `p` (inside the lattice).
    #[inline]
    pub(crate) fn cell_of(&self, p: V3) -> usize {
        let c = [0, 1, 2].map(|a| ((p[a].max(0.0) as usize) / CELL).min(self.cells[a] - 1));
        (c[0] * self.cells[1] + c[1]) * self.cells[2] + c[2]
    }

    /// How far along unit direction `d` from `p` the ray leaves cell `c`.
    #[inline]
    pub(crate) fn cell_exit(&self, c: usize, p: V3, d: V3) -> f64 {
        let idx = [
            c / (self.cells[1] * self.cells[2]),
            c / self.cells[2] % self.cells[1],
            c % self.cells[2],
        ];
        let mut t = f64::INFINITY;
        for a in 0..3 {
            let bound = if d[a] > 0.0 {
                (idx[a] + 1) * CELL
            } else if d[a] < 0.0 {
                idx[a] * CELL
            } else {
                continue;
            };
            t = t.min((bound as f64 - p[a]) / d[a]);
        }
        t.max(0.0)
    }

    /// Trilinear value at `p` (clamped into the lattice); exactly the voxel at a centre.
    #[inline]
    pub fn sample(&self, p: V3) -> f32 {
        let mut base = 0;
        let mut f = [0f32; 3];
        let mut next = [0usize; 3];
        let strides = [self.stride[0], self.stride[1], 1];
        for a in 0..3 {
            let hi = (self.shape[a] - 1) as f64;
            let x = p[a].clamp(0.0, hi);
            let fl = x.floor();
            let i = fl as usize;
            f[a] = (x - fl) as f32;
            next[a] = if i + 1 < self.shape[a] { strides[a] } else { 0 };
            base += i * strides[a];
        }
        let v = &self.values;
        let lerp = |a: f32, b: f32, t: f32| a + t * (b - a);
        let row = |o: usize| {
            if f[2] == 0.0 {
                v[o]
            } else {
                lerp(v[o], v[o + next[2]], f[2])
            }
        };
        let plane = |o: usize| {
            if f[1] == 0.0 {
                row(o)
            } else {
                lerp(row(o), row(o + next[1]), f[1])
            }
        };
        if f[0] == 0.0 {
            plane(base)
        } else {
            lerp(plane(base), plane(base + next[0]), f[0])
        }
    }

    /// Central-difference gradient of the trilinear field at `p` (per voxel).
    pub fn gradient(&self, p: V3) -> V3 {
        [0, 1, 2].map(|a| {
            let (mut lo, mut hi) = (p, p);
            lo[a] -= 0.5;
            hi[a] += 0.5;
            (self.sample(hi) - self.sample(lo)) as f64
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ramp(shape: [usize; 3]) -> Lattice {
        let n = shape.iter().product();
        Lattice::from_values(shape, (0..n).map(|i| i as f32).collect())
    }

    #[test]
    fn centres_are_voxels_and_between_is_trilinear() {
        let lat = ramp([3, 4, 5]);
        assert_eq!(lat.sample([2.0, 3.0, 4.0]), 59.0);
        assert_eq!(lat.sample([1.0, 1.0, 1.0]), 26.0);
        // Linear in every axis: the value is the index formula.
        let v = lat.sample([0.5, 1.25, 2.5]);
        assert!((v - (0.5 * 20.0 + 1.25 * 5.0 + 2.5)).abs() < 1e-5);
        assert_eq!(lat.value_range(), Some([0.0, 59.0]));
        let g = lat.gradient([1.0, 1.5, 2.0]);
        assert!(
            (g[0] - 20.0).abs() < 1e-4 && (g[1] - 5.0).abs() < 1e-4 && (g[2] - 1.0).abs() < 1e-4
        );
    }

    #[test]
    fn cells_bound_their_samples() {
        let shape = [20, 9, 17];
        let n: usize = shape.iter().product();
        let vals: Vec<f32> = (0..n).map(|i| ((i * 7919) % 101) as f32).collect();
        let lat = Lattice::from_values(shape, vals);
        let mut rng = voxfield_core::rng::Rng(3);
        for _ in 0..2000 {
            let p = [0, 1, 2].map(|a| rng.unit() * (shape[a] - 1) as f64);
            let (mn, mx) = lat.cell_range(lat.cell_of(p));
            let v = lat.sample(p);
            assert!(mn <= v && v <= mx, "{p:?}: {v} outside [{mn}, {mx}]");
        }
    }

    #[test]
    fn over_budget_is_refused_before_reading() {
        struct Huge;
        impl LatticeSource for Huge {
            fn shape(&self) -> [usize; 3] {
                [1 << 20, 1 << 20, 1 << 20]
            }
            fn block(&self) -> [usize; 3] {
                [1, 1, 1]
            }
            fn read(&self, _: [usize; 3], _: [usize; 3], _: &mut [f32]) -> Result<()> {
                panic!("read before the budget check")
            }
        }
        let e = Lattice::load(&Huge, 1 << 30, &Watch::none()).err().unwrap();
        assert!(e.to_string().contains("memory budget"), "{e}");
    }
}
