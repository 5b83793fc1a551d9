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
use voxfield_core::odometer::{flat3, unflat3};
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
        let dtype = self.0.info().dtype;
        let mut bytes = vec![0u8; out.len() * dtype.size()];
        self.0.read_box_native(start, size, &mut bytes)?;
        let scale = self.0.info().value_scale;
        voxfield_core::voxel::convert_native(&bytes, dtype, out, |v| match scale {
            Some((slope, inter)) => (v * slope + inter) as f32,
            None => v as f32,
        });
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

/// A 3-D DDA over the macro cells: the current cell, and the ray distance
/// (from the walk's start) at which the ray leaves it.
pub(crate) struct CellWalk {
    start: V3,
    dir: V3,
    supers: [usize; 3],
    cell: [isize; 3],
    dims: [usize; 3],
    step: [isize; 3],
    next: [f64; 3],
    delta: [f64; 3],
}

impl CellWalk {
    /// The current cell's index and exit distance (infinite in the last cell
    /// on the ray's way out, which keeps the ray's remaining samples).
    #[inline]
    pub(crate) fn current(&self) -> (usize, f64) {
        let [i, j, k] = self.cell.map(|c| c as usize);
        let c = flat3([i, j, k], self.dims);
        let a = self.axis();
        let n = self.cell[a] + self.step[a];
        let exit = if n < 0 || n >= self.dims[a] as isize {
            f64::INFINITY
        } else {
            self.next[a]
        };
        (c, exit)
    }

    /// The super cell holding the current cell.
    #[inline]
    pub(crate) fn super_index(&self) -> usize {
        flat3(self.cell.map(|c| c as usize / SUPER), self.supers)
    }

    /// The distance from the walk's start at which the ray leaves the current
    /// super cell.
    pub(crate) fn super_exit(&self) -> f64 {
        let mut t = f64::INFINITY;
        for a in 0..3 {
            let s = self.cell[a] as usize / SUPER;
            let bound = if self.dir[a] > 0.0 {
                (s + 1) * SUPER * CELL
            } else if self.dir[a] < 0.0 {
                s * SUPER * CELL
            } else {
                continue;
            };
            t = t.min((bound as f64 - self.start[a]) / self.dir[a]);
        }
        t.max(0.0)
    }

    #[inline]
    fn axis(&self) -> usize {
        let n = self.next;
        if n[0] <= n[1] && n[0] <= n[2] {
            0
        } else if n[1] <= n[2] {
            1
        } else {
            2
        }
    }

    /// Moves into the next cell along the ray (stays in the last one).
    #[inline]
    pub(crate) fn advance(&mut self) {
        let a = self.axis();
        let n = self.cell[a] + self.step[a];
        if n >= 0 && n < self.dims[a] as isize {
            self.cell[a] = n;
            self.next[a] += self.delta[a];
        }
    }
}

/// Values at voxel centres, stored as bricks: one per macro cell, holding the
/// cell's `(CELL + 1)³` voxels (its upper faces repeat the next cell's first
/// ones, clamped at the volume's edge). A ray then reads one small block of
/// memory per cell, whatever its direction, instead of planes far apart.
pub struct Lattice {
    shape: [usize; 3],
    bricks: Vec<f32>,
    cells: [usize; 3],
    cell_min: Vec<f32>,
    cell_max: Vec<f32>,
    /// The coarse level: `SUPER³` cells each, with their ranges.
    supers: [usize; 3],
    super_min: Vec<f32>,
    super_max: Vec<f32>,
}

/// Cells per super cell edge: a ray leaves a large empty region in one jump.
pub const SUPER: usize = 4;

/// Voxels along a brick's edge, and in a brick.
const EDGE: usize = CELL + 1;
const BRICK: usize = EDGE * EDGE * EDGE;

impl Lattice {
    /// Bytes a lattice of `shape` holds (its bricks and cell ranges), or None
    /// past usize. Reading adds one storage block of scratch per thread.
    pub fn bytes_for(shape: [usize; 3]) -> Option<usize> {
        let cells = shape.iter().try_fold(1usize, |a, &b| {
            a.checked_mul(b.saturating_sub(1).div_ceil(CELL).max(1))
        })?;
        cells.checked_mul(BRICK * 4 + 8)
    }

    /// Reads the whole lattice of `src` (refused beyond `budget` bytes, before
    /// allocating) straight into its bricks, then builds the macro cells.
    /// Progress per slab; `watch` stops it between slabs.
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
                "rendering holds the field's {} voxels as f32 bricks ({:.1} GiB), over the memory \
                 budget of {:.1} GiB: render a coarser level (--scale-level, or a --size that lets \
                 the level be chosen) or raise the budget (--memory-mb)",
                shape.iter().map(|&n| n as u128).product::<u128>(),
                shape.iter().map(|&n| n as f64).product::<f64>() * 4.0 * (BRICK as f64 / 512.0)
                    / (1u64 << 30) as f64,
                budget as f64 / (1u64 << 30) as f64
            )));
        };
        let cells = cells_of(shape);
        let len = cells.iter().product::<usize>() * BRICK;
        let mut bricks = zeroed(len)?;
        let block = src.block().map(|b| b.max(1));
        let block = [0, 1, 2].map(|a| block[a].min(shape[a]));
        let slabs = shape[0].div_ceil(block[0]);
        let done = std::sync::atomic::AtomicU64::new(0);
        let target = Bricks {
            ptr: bricks.as_mut_ptr(),
            len,
            shape,
            cells,
        };
        (0..slabs).into_par_iter().try_for_each(|s| -> Result<()> {
            watch.check()?;
            let i0 = s * block[0];
            let h = block[0].min(shape[0] - i0);
            let mut buf = Vec::new();
            for j0 in (0..shape[1]).step_by(block[1]) {
                for k0 in (0..shape[2]).step_by(block[2]) {
                    let size = [h, block[1].min(shape[1] - j0), block[2].min(shape[2] - k0)];
                    buf.resize(size[0] * size[1] * size[2], 0f32);
                    src.read([i0, j0, k0], size, &mut buf)?;
                    for (r, row) in buf.chunks_exact(size[2]).enumerate() {
                        target.scatter_row(i0 + r / size[1], j0 + r % size[1], k0, row);
                    }
                }
            }
            let d = done.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
            watch.report("reading the field", d, slabs as u64);
            Ok(())
        })?;
        let ranges: Vec<(f32, f32)> = bricks
            .par_chunks_mut(BRICK)
            .enumerate()
            .map(|(c, brick)| {
                clamp_brick(brick, unflat3(c, cells), shape);
                brick_range(brick)
            })
            .collect();
        Ok(Lattice::from_bricks(shape, bricks, ranges))
    }

    /// A lattice over values already in memory (C order).
    pub fn from_values(shape: [usize; 3], values: Vec<f32>) -> Lattice {
        assert_eq!(values.len(), shape.iter().product::<usize>());
        let cells = cells_of(shape);
        let mut bricks = vec![0f32; cells.iter().product::<usize>() * BRICK];
        let ranges: Vec<(f32, f32)> = bricks
            .par_chunks_mut(BRICK)
            .enumerate()
            .map(|(c, brick)| {
                fill_brick(&values, shape, cells, c, brick);
                brick_range(brick)
            })
            .collect();
        Lattice::from_bricks(shape, bricks, ranges)
    }

    /// The lattice of filled `bricks` and their value ranges: the super cells.
    fn from_bricks(shape: [usize; 3], bricks: Vec<f32>, ranges: Vec<(f32, f32)>) -> Lattice {
        let cells = cells_of(shape);
        let (cell_min, cell_max): (Vec<f32>, Vec<f32>) = ranges.into_iter().unzip();
        let supers = cells.map(|n| n.div_ceil(SUPER));
        let (super_min, super_max) = (0..supers.iter().product::<usize>())
            .into_par_iter()
            .map(|s| {
                let idx = unflat3(s, supers);
                let (mut mn, mut mx) = (f32::INFINITY, f32::NEG_INFINITY);
                for i in idx[0] * SUPER..((idx[0] + 1) * SUPER).min(cells[0]) {
                    for j in idx[1] * SUPER..((idx[1] + 1) * SUPER).min(cells[1]) {
                        for k in idx[2] * SUPER..((idx[2] + 1) * SUPER).min(cells[2]) {
                            let c = flat3([i, j, k], cells);
                            mn = mn.min(cell_min[c]);
                            mx = mx.max(cell_max[c]);
                        }
                    }
                }
                if mn > mx {
                    (f32::NAN, f32::NAN)
                } else {
                    (mn, mx)
                }
            })
            .unzip();
        Lattice {
            shape,
            bricks,
            cells,
            cell_min,
            cell_max,
            supers,
            super_min,
            super_max,
        }
    }

    /// The lattice box covering the cells `keep` selects (lo and hi corners,
    /// index space), or None when it selects none.
    pub(crate) fn cell_box(&self, keep: impl Fn(usize) -> bool) -> Option<(V3, V3)> {
        let (mut lo, mut hi) = ([usize::MAX; 3], [0usize; 3]);
        for c in (0..self.cell_count()).filter(|&c| keep(c)) {
            let idx = unflat3(c, self.cells);
            for a in 0..3 {
                lo[a] = lo[a].min(idx[a]);
                hi[a] = hi[a].max(idx[a]);
            }
        }
        (lo[0] != usize::MAX).then(|| {
            let top = [0, 1, 2].map(|a| (((hi[a] + 1) * CELL).min(self.shape[a] - 1)) as f64);
            (lo.map(|c| (c * CELL) as f64), top)
        })
    }

    /// Every super cell's min and max.
    pub(crate) fn super_ranges(&self) -> (&[f32], &[f32]) {
        (&self.super_min, &self.super_max)
    }

    /// Min and max of super cell `s` (NaN when all its voxels are NaN).
    #[inline]
    pub(crate) fn super_range(&self, s: usize) -> (f32, f32) {
        (self.super_min[s], self.super_max[s])
    }

    pub fn shape(&self) -> [usize; 3] {
        self.shape
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

    /// Every macro cell's min and max.
    pub(crate) fn cell_ranges(&self) -> (&[f32], &[f32]) {
        (&self.cell_min, &self.cell_max)
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
    #[cfg(test)]
    pub(crate) fn cell_of(&self, p: V3) -> usize {
        let c = [0, 1, 2].map(|a| ((p[a].max(0.0) as usize) / CELL).min(self.cells[a] - 1));
        flat3(c, self.cells)
    }

    /// The macro cells a ray from `p` (inside) along unit `d` passes, in order.
    pub(crate) fn walk(&self, p: V3, d: V3) -> CellWalk {
        let mut w = CellWalk {
            start: p,
            dir: d,
            supers: self.supers,
            cell: [0; 3],
            dims: self.cells,
            step: [0; 3],
            next: [f64::INFINITY; 3],
            delta: [f64::INFINITY; 3],
        };
        for a in 0..3 {
            let c = ((p[a].max(0.0) as usize) / CELL).min(self.cells[a] - 1);
            w.cell[a] = c as isize;
            if d[a] > 0.0 {
                w.step[a] = 1;
                w.next[a] = (((c + 1) * CELL) as f64 - p[a]) / d[a];
                w.delta[a] = CELL as f64 / d[a];
            } else if d[a] < 0.0 {
                w.step[a] = -1;
                w.next[a] = ((c * CELL) as f64 - p[a]) / d[a];
                w.delta[a] = -(CELL as f64) / d[a];
            }
        }
        w
    }

    /// Cell `c`'s brick, the index position of its first voxel, and the
    /// largest local coordinate inside the volume on each axis.
    #[inline]
    pub(crate) fn brick(&self, c: usize) -> (&[f32], V3, [f32; 3]) {
        let idx = unflat3(c, self.cells);
        let origin = idx.map(|i| (i * CELL) as f64);
        let lim = [0, 1, 2].map(|a| (self.shape[a] - 1 - idx[a] * CELL).min(CELL) as f32);
        (&self.bricks[c * BRICK..(c + 1) * BRICK], origin, lim)
    }

    /// Trilinear value at `p` (clamped into the lattice); exactly the voxel at a centre.
    #[inline]
    pub fn sample(&self, p: V3) -> f32 {
        let mut c = [0usize; 3];
        let mut l = [0f32; 3];
        for a in 0..3 {
            // x >= 0 (NaN becomes 0): truncation is floor, without the libm
            // call `floor` is on targets without SSE4.1.
            let x = p[a].clamp(0.0, (self.shape[a] - 1) as f64);
            c[a] = (x as usize / CELL).min(self.cells[a] - 1);
            l[a] = (x - (c[a] * CELL) as f64) as f32;
        }
        let brick = flat3(c, self.cells);
        trilinear(&self.bricks[brick * BRICK..(brick + 1) * BRICK], l)
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

/// Trilinear value in `brick` at local coordinates `l` (each in `[0, CELL]`);
/// exactly the voxel at a centre (a weight of 0 takes the voxel itself).
/// Written out by hand: this is the renderer's innermost loop.
#[inline(always)]
pub(crate) fn trilinear(brick: &[f32], l: [f32; 3]) -> f32 {
    let (i0, i1, i2) = (l[0] as usize, l[1] as usize, l[2] as usize);
    let (f0, f1, f2) = (l[0] - i0 as f32, l[1] - i1 as f32, l[2] - i2 as f32);
    let o = (i0 * EDGE + i1) * EDGE + i2;
    // A neighbour is used only where its weight is above 0, which needs a
    // local index below CELL: then it is inside the brick.
    let d0 = if f0 > 0.0 { EDGE * EDGE } else { 0 };
    let d1 = if f1 > 0.0 { EDGE } else { 0 };
    let d2 = if f2 > 0.0 { 1 } else { 0 };
    let v = &brick[o..=o + d0 + d1 + d2];
    let c = |x: usize| v[x];
    let r00 = lerp(c(0), c(d2), f2);
    let r01 = lerp(c(d1), c(d1 + d2), f2);
    let r10 = lerp(c(d0), c(d0 + d2), f2);
    let r11 = lerp(c(d0 + d1), c(d0 + d1 + d2), f2);
    lerp(lerp(r00, r01, f1), lerp(r10, r11, f1), f0)
}

/// `a` where `t` is 0 (exactly, whatever `b` is), else `a + t (b - a)`.
#[inline(always)]
fn lerp(a: f32, b: f32, t: f32) -> f32 {
    if t == 0.0 {
        a
    } else {
        a + t * (b - a)
    }
}

/// `len` zeros, allocated as zeroed memory (fresh pages are zero already: no
/// second pass writes them) and, on Linux, backed by huge pages where the
/// system allows (a 1 GiB lattice otherwise takes 260 000 page faults).
fn zeroed(len: usize) -> Result<Vec<f32>> {
    let fail = || Error::invalid(format!("cannot allocate {len} lattice values to render"));
    let layout = std::alloc::Layout::array::<f32>(len.max(1)).map_err(|_| fail())?;
    // SAFETY: the layout is non-zero in size.
    let ptr = unsafe { std::alloc::alloc_zeroed(layout) } as *mut f32;
    if ptr.is_null() {
        return Err(fail());
    }
    #[cfg(target_os = "linux")]
    {
        const PAGE: usize = 4096;
        let start = (ptr as usize).next_multiple_of(PAGE);
        let end = (ptr as usize + layout.size()) / PAGE * PAGE;
        if end > start {
            // SAFETY: advice over pages of our own allocation; failure only
            // means no huge pages.
            unsafe { libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_HUGEPAGE) };
        }
    }
    // SAFETY: allocated by the global allocator with the layout of `len.max(1)`
    // f32s, all zero (a valid f32); length `len` ≤ capacity.
    Ok(unsafe { Vec::from_raw_parts(ptr, len, len.max(1)) })
}

/// Macro cells along each axis of a lattice of `shape`.
fn cells_of(shape: [usize; 3]) -> [usize; 3] {
    shape.map(|n| (n.saturating_sub(1)).div_ceil(CELL).max(1))
}

/// Copies cell `c`'s voxels (clamped at the volume's edge) into `brick`.
fn fill_brick(values: &[f32], shape: [usize; 3], cells: [usize; 3], c: usize, brick: &mut [f32]) {
    let idx = unflat3(c, cells);
    let mut o = 0;
    for i in 0..EDGE {
        let gi = (idx[0] * CELL + i).min(shape[0] - 1);
        for j in 0..EDGE {
            let gj = (idx[1] * CELL + j).min(shape[1] - 1);
            let row = (gi * shape[1] + gj) * shape[2];
            for k in 0..EDGE {
                let gk = (idx[2] * CELL + k).min(shape[2] - 1);
                brick[o] = values[row + gk];
                o += 1;
            }
        }
    }
}

/// The min and max of a brick (NaN for a brick of NaN voxels).
fn brick_range(brick: &[f32]) -> (f32, f32) {
    // NaN compares false: a brick of only NaN keeps (inf, -inf).
    let (mn, mx) = brick
        .iter()
        .fold((f32::INFINITY, f32::NEG_INFINITY), |(mn, mx), &v| {
            (mn.min(v), mx.max(v))
        });
    if mn > mx {
        (f32::NAN, f32::NAN)
    } else {
        (mn, mx)
    }
}

/// Fills the places of a brick at cell `idx` that lie past the volume's last
/// voxel with that voxel's value, axis by axis (as `fill_brick` clamps).
fn clamp_brick(brick: &mut [f32], idx: [usize; 3], shape: [usize; 3]) {
    let valid = [0, 1, 2].map(|a| (shape[a] - idx[a] * CELL).min(EDGE));
    let at = |i: usize, j: usize, k: usize| (i * EDGE + j) * EDGE + k;
    for i in 0..valid[0] {
        for j in 0..valid[1] {
            for k in valid[2]..EDGE {
                brick[at(i, j, k)] = brick[at(i, j, valid[2] - 1)];
            }
        }
        for j in valid[1]..EDGE {
            for k in 0..EDGE {
                brick[at(i, j, k)] = brick[at(i, valid[1] - 1, k)];
            }
        }
    }
    for i in valid[0]..EDGE {
        for j in 0..EDGE {
            for k in 0..EDGE {
                brick[at(i, j, k)] = brick[at(valid[0] - 1, j, k)];
            }
        }
    }
}

/// The bricks being filled by parallel slabs. Every brick element holds one
/// voxel (or is a clamped copy, filled afterwards), and each voxel is read by
/// exactly one slab, so no two threads write the same element.
struct Bricks {
    ptr: *mut f32,
    len: usize,
    shape: [usize; 3],
    cells: [usize; 3],
}

// SAFETY: see the type's comment: writes through `ptr` from different threads
// go to disjoint elements, and the vector outlives the parallel loop.
unsafe impl Sync for Bricks {}

impl Bricks {
    /// The cells along one axis holding voxel `i`, with its place in each:
    /// its own cell, and the previous one (as that cell's last place) when `i`
    /// is on a cell border.
    fn places(i: usize, cells: usize) -> impl Iterator<Item = (usize, usize)> {
        let own = (i / CELL < cells).then_some((i / CELL, i % CELL));
        let prev = (i.is_multiple_of(CELL) && i > 0).then(|| (i / CELL - 1, CELL));
        own.into_iter().chain(prev)
    }

    /// Writes the voxels `row` (global `(i, j, k0..)`) into every brick holding them.
    fn scatter_row(&self, i: usize, j: usize, k0: usize, row: &[f32]) {
        let k1 = k0 + row.len();
        for (ci, a) in Self::places(i, self.cells[0]) {
            for (cj, b) in Self::places(j, self.cells[1]) {
                // Cells whose 9 voxels along axis 2 meet [k0, k1).
                let first = k0.saturating_sub(1) / CELL;
                let last = ((k1 - 1) / CELL).min(self.cells[2] - 1);
                for ck in first..=last {
                    let lo = (ck * CELL).max(k0);
                    let hi = (ck * CELL + EDGE).min(k1).min(self.shape[2]);
                    if lo >= hi {
                        continue;
                    }
                    let c = flat3([ci, cj, ck], self.cells);
                    let at = c * BRICK + (a * EDGE + b) * EDGE + (lo - ck * CELL);
                    assert!(at + (hi - lo) <= self.len);
                    // SAFETY: in bounds (checked); disjoint across threads (see `Bricks`).
                    unsafe {
                        std::ptr::copy_nonoverlapping(
                            row[lo - k0..hi - k0].as_ptr(),
                            self.ptr.add(at),
                            hi - lo,
                        );
                    }
                }
            }
        }
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

    /// Values of `shape` read in boxes of `block` (as a chunked store gives them).
    struct Boxes {
        shape: [usize; 3],
        block: [usize; 3],
        values: Vec<f32>,
    }

    impl LatticeSource for Boxes {
        fn shape(&self) -> [usize; 3] {
            self.shape
        }
        fn block(&self) -> [usize; 3] {
            self.block
        }
        fn read(&self, start: [usize; 3], size: [usize; 3], out: &mut [f32]) -> Result<()> {
            let mut o = 0;
            for i in start[0]..start[0] + size[0] {
                for j in start[1]..start[1] + size[1] {
                    let row = (i * self.shape[1] + j) * self.shape[2];
                    for k in start[2]..start[2] + size[2] {
                        out[o] = self.values[row + k];
                        o += 1;
                    }
                }
            }
            Ok(())
        }
    }

    #[test]
    fn reading_into_bricks_equals_bricks_of_the_whole_array() {
        let mut rng = voxfield_core::rng::Rng(11);
        for shape in [
            [1, 1, 1],
            [1, 9, 2],
            [9, 8, 17],
            [17, 16, 9],
            [20, 9, 33],
            [8, 25, 1],
        ] {
            let n: usize = shape.iter().product();
            let values: Vec<f32> = (0..n)
                .map(|_| {
                    if rng.unit() < 0.05 {
                        f32::NAN
                    } else {
                        rng.unit() as f32
                    }
                })
                .collect();
            let want = Lattice::from_values(shape, values.clone());
            for block in [[1, 1, 1], [3, 5, 7], [8, 8, 8], [16, 3, 64], shape] {
                let src = Boxes {
                    shape,
                    block,
                    values: values.clone(),
                };
                let got = Lattice::load(&src, usize::MAX, &Watch::none()).unwrap();
                let same = |a: &[f32], b: &[f32]| {
                    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits())
                };
                assert!(same(&got.bricks, &want.bricks), "{shape:?} {block:?}");
                assert!(same(&got.cell_min, &want.cell_min), "{shape:?} {block:?}");
                assert!(same(&got.cell_max, &want.cell_max), "{shape:?} {block:?}");
                assert!(same(&got.super_max, &want.super_max), "{shape:?} {block:?}");
            }
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
