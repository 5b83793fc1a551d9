//! A field as the server offers it: level 0 on its voxel grid and a pyramid of
//! coarser levels — the source's own OME-Zarr levels where it has them, else
//! computed on request (mean of 2×2×2 blocks of the level above for stored
//! voxels; a model evaluated at the coarse voxels' centres), chunk by chunk
//! through a bounded cache. Every read returns little-endian elements of the
//! served dtype in C order, so the Zarr and precomputed views only reorder
//! nothing and frame bytes.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rayon::prelude::*;
use voxfield::rbf::{RbfField, RbfModel};
use voxfield::{
    Affine, ChunkCache, ContiguousView, DType, Error, Field, Plane, Reduce, Result, VolumeSource,
};

/// Voxels one request may read or compute (a chunk, a slice, a box): 2^24.
pub const MAX_BOX_VOXELS: usize = 1 << 24;

/// What level 0 of a field reads.
pub enum Base {
    /// Stored voxels, or a neural model decoded by its row decoder (as f32).
    Volume(Arc<dyn VolumeSource>),
    /// An RBF model on a regular grid over its samples' bounding box: node `i`
    /// of axis `a` at `lo[a] + i·step[a]`.
    Rbf {
        model: Box<RbfModel>,
        shape: [usize; 3],
        lo: [f64; 3],
        step: [f64; 3],
    },
}

impl Base {
    /// Whether the base is a model (evaluated) rather than stored voxels.
    fn is_model(&self) -> bool {
        match self {
            Base::Volume(src) => src.model_kind().is_some(),
            Base::Rbf { .. } => true,
        }
    }
}

/// How a level's voxels are made.
pub enum LevelFrom {
    /// Level 0: the base itself.
    Base,
    /// A level the source stores (an OME-Zarr multiscale level).
    Stored(Box<dyn VolumeSource>),
    /// The mean of the level above's 2×2×2 blocks (fewer at the far edges;
    /// integers rounded half to even).
    Mean,
    /// A model evaluated at the centres of this level's voxels.
    Centres,
}

/// One level of the pyramid.
pub struct Level {
    pub shape: [usize; 3],
    /// Level-0 voxels per voxel of this level, per axis (computed levels).
    pub factor: [usize; 3],
    /// Index → world (the level-0 affine composed with this level's scaling).
    pub affine: Affine,
    pub from: LevelFrom,
}

/// A named field with its pyramid, shared by every request.
pub struct ServedField {
    pub name: String,
    /// "volume", "neural model" or "RBF model".
    pub kind: &'static str,
    pub path: PathBuf,
    pub dtype: DType,
    /// Whether level 0 had an affine (else index space, spacing 1).
    pub has_affine: bool,
    /// The spatial unit of the world coordinates, when the source names one.
    pub unit: Option<String>,
    /// Names of the three axes of the 3-D view (z, y, x unless the source names them).
    pub axis_names: [String; 3],
    /// The chunk shape every level is served in.
    pub chunk: [usize; 3],
    pub levels: Vec<Level>,
    /// Things to say at start-up (how the pyramid is made, approximations).
    pub notes: Vec<String>,
    base: Base,
    value_scale: Option<(f64, f64)>,
    cache: Arc<ChunkCache>,
    ids: Vec<u64>,
}

impl ServedField {
    /// A field over `base` with level 0 described by `shape`, `affine` and
    /// `value_scale`; `stored` are the source's own coarser levels.
    pub fn new(
        name: String,
        kind: &'static str,
        path: &Path,
        base: Base,
        stored: Vec<Box<dyn VolumeSource>>,
        chunk: usize,
        cache: Arc<ChunkCache>,
    ) -> Result<ServedField> {
        let (shape, affine, dtype, value_scale, unit, axis_names) = describe(&base)?;
        let chunk_shape = shape.map(|n| n.min(chunk));
        let a0 = affine.unwrap_or(Affine::IDENTITY);
        let mut levels = vec![Level {
            shape,
            factor: [1; 3],
            affine: a0,
            from: LevelFrom::Base,
        }];
        let mut notes = Vec::new();
        for src in stored {
            let info = src.info();
            if info.dtype != dtype || value_scale.is_some() {
                // Served bytes are level 0's type: such a level is computed instead.
                notes.push(format!(
                    "the source's coarser levels hold {} where level 0 is served as {dtype}: computed instead",
                    info.dtype
                ));
                break;
            }
            let factor = [0, 1, 2].map(|a| shape[a].div_ceil(info.shape[a]).max(1));
            levels.push(Level {
                shape: info.shape,
                factor,
                affine: info.affine.unwrap_or(a0),
                from: LevelFrom::Stored(src),
            });
        }
        let own = levels.len();
        let centres = base.is_model() && own == 1;
        while let Some(last) = levels
            .last()
            .filter(|l| (0..3).any(|a| l.shape[a] > chunk_shape[a]))
        {
            let r = last.shape.map(|n| if n > 1 { 2 } else { 1 });
            let factor = [0, 1, 2].map(|a| last.factor[a] * r[a]);
            let shape = [0, 1, 2].map(|a| last.shape[a].div_ceil(r[a]));
            let (from, affine) = if centres {
                (LevelFrom::Centres, coarser(&a0, factor))
            } else {
                (LevelFrom::Mean, coarser(&last.affine, r))
            };
            levels.push(Level {
                shape,
                factor,
                affine,
                from,
            });
        }
        if own > 1 {
            notes.push(format!("{own} levels stored in the source"));
        }
        if levels.len() > own {
            notes.push(format!(
                "{} coarser level(s) computed on request: {}",
                levels.len() - own,
                if centres {
                    "the model evaluated at the coarse voxels' centres"
                } else {
                    "mean of 2x2x2 blocks of the level above"
                }
            ));
        }
        if value_scale.is_some() {
            notes.push("values scaled by the file's slope and intercept, served as float".into());
        }
        let ids = levels.iter().map(|_| voxfield::new_source_id()).collect();
        Ok(ServedField {
            name,
            kind,
            path: path.to_path_buf(),
            dtype,
            has_affine: affine.is_some(),
            unit,
            axis_names,
            chunk: chunk_shape,
            levels,
            notes,
            base,
            value_scale,
            cache,
            ids,
        })
    }

    /// World length of one voxel step along each axis of `level` (the
    /// affine's column norms: right under rotations and flips too).
    pub fn spacing(&self, level: usize) -> [f64; 3] {
        let m = self.levels[level].affine.rows();
        [0, 1, 2].map(|a| (0..3).map(|r| m[r][a] * m[r][a]).sum::<f64>().sqrt())
    }

    /// The field sampled on the oblique `plane` (level-0 index coordinates;
    /// pixel (j, i) at `origin + i·u + j·v`, row-major nv × nu): a volume
    /// interpolated linearly (NaN outside), a model evaluated directly.
    pub fn sample_plane(&self, plane: &Plane, out: &mut [f32]) -> Result<()> {
        match &self.base {
            Base::Volume(src) => {
                let opts = voxfield::FieldOptions::default();
                let field =
                    voxfield::field_of_source(src.as_ref(), &opts, &self.cache, self.ids[0])?;
                voxfield::evaluate_plane(field.as_ref(), plane, &[0.0], Reduce::Mean, out)
            }
            Base::Rbf {
                model, lo, step, ..
            } => {
                // Grid indices to the model's coordinates (a linear map: a plane stays a plane).
                let at = |p: [f64; 3]| [0, 1, 2].map(|a| lo[a] + p[a] * step[a]);
                let along = |v: [f64; 3]| [0, 1, 2].map(|a| v[a] * step[a]);
                let (o, u, v) = (at(plane.origin), along(plane.u), along(plane.v));
                let in_model = Plane::new(o, u, v, plane.nu, plane.nv)?;
                let field = RbfField { model, channel: 0 };
                voxfield::evaluate_plane(&field, &in_model, &[0.0], Reduce::Mean, out)
            }
        }
    }

    /// The chunk grid of `level`.
    pub fn grid(&self, level: usize) -> [usize; 3] {
        let s = self.levels[level].shape;
        [0, 1, 2].map(|a| s[a].div_ceil(self.chunk[a]))
    }

    /// Checks that the box lies in `level` and is small enough to compute.
    pub fn check_box(&self, level: usize, start: [usize; 3], size: [usize; 3]) -> Result<()> {
        let Some(l) = self.levels.get(level) else {
            return Err(Error::invalid(format!(
                "{}: no level {level} (it has {})",
                self.name,
                self.levels.len()
            )));
        };
        if (0..3).any(|a| start[a].checked_add(size[a]).is_none_or(|e| e > l.shape[a])) {
            return Err(Error::invalid(format!(
                "{}: box at {start:?} of {size:?} voxels is outside level {level} ({:?})",
                self.name, l.shape
            )));
        }
        let n = size
            .iter()
            .try_fold(1usize, |p, &s| p.checked_mul(s))
            .unwrap_or(usize::MAX);
        if n > MAX_BOX_VOXELS {
            return Err(Error::invalid(format!(
                "{}: a box of {size:?} voxels is over the {MAX_BOX_VOXELS} voxels one request may read",
                self.name
            )));
        }
        Ok(())
    }

    /// The box `[start, start + size)` of `level` as little-endian elements of
    /// `self.dtype`, C order.
    pub fn read(&self, level: usize, start: [usize; 3], size: [usize; 3]) -> Result<Vec<u8>> {
        self.check_box(level, start, size)?;
        let n: usize = size.iter().product();
        if let (LevelFrom::Base, Base::Volume(src), None) =
            (&self.levels[level].from, &self.base, self.value_scale)
        {
            if let Some(mut rows) = src.contiguous().and_then(|v| copy_rows(&v, start, size)) {
                to_little_endian(&mut rows, self.dtype);
                return Ok(rows);
            }
        }
        let mut out = vec![0u8; n * self.dtype.size()];
        if n == 0 {
            return Ok(out);
        }
        match &self.levels[level].from {
            LevelFrom::Base => self.read_base(start, size, &mut out)?,
            LevelFrom::Stored(src) => src.read_box_native(start, size, &mut out)?,
            LevelFrom::Mean | LevelFrom::Centres => {
                self.read_cached(level, start, size, &mut out)?
            }
        }
        to_little_endian(&mut out, self.dtype);
        Ok(out)
    }

    /// The values of the box as f64 (for slices and the value under a cursor).
    pub fn read_values(
        &self,
        level: usize,
        start: [usize; 3],
        size: [usize; 3],
    ) -> Result<Vec<f64>> {
        let mut bytes = self.read(level, start, size)?;
        from_little_endian(&mut bytes, self.dtype);
        let mut v = vec![0.0; bytes.len() / self.dtype.size()];
        voxfield::convert_native(&bytes, self.dtype, &mut v, |x| x);
        Ok(v)
    }

    fn read_base(&self, start: [usize; 3], size: [usize; 3], out: &mut [u8]) -> Result<()> {
        match &self.base {
            Base::Volume(src) => match self.value_scale {
                None => src.read_box_native(start, size, out),
                Some((slope, inter)) => {
                    let mut v = vec![0.0; size.iter().product()];
                    src.read_box(start, size, &mut v)?;
                    store(v.iter().map(|x| x * slope + inter), self.dtype, out);
                    Ok(())
                }
            },
            Base::Rbf { .. } => {
                let v = self.evaluate(start, size, [1; 3])?;
                store(v.into_iter(), self.dtype, out);
                Ok(())
            }
        }
    }

    /// A computed level's box, assembled from its chunks (each computed once
    /// and kept in the bounded cache).
    fn read_cached(
        &self,
        level: usize,
        start: [usize; 3],
        size: [usize; 3],
        out: &mut [u8],
    ) -> Result<()> {
        let cs = self.chunk;
        let e = self.dtype.size();
        let first = [0, 1, 2].map(|a| start[a] / cs[a]);
        let last = [0, 1, 2].map(|a| (start[a] + size[a] - 1) / cs[a]);
        for ci in first[0]..=last[0] {
            for cj in first[1]..=last[1] {
                for ck in first[2]..=last[2] {
                    let c = [ci, cj, ck];
                    let (c0, csize) = self.chunk_box(level, c);
                    let key = voxfield::ChunkKey {
                        source: self.ids[level],
                        chunk: c,
                    };
                    let data = self
                        .cache
                        .get_or_load(key, || self.compute(level, c0, csize))?;
                    let lo = [0, 1, 2].map(|a| c0[a].max(start[a]));
                    let hi = [0, 1, 2].map(|a| (c0[a] + csize[a]).min(start[a] + size[a]));
                    let row = (hi[2] - lo[2]) * e;
                    for i in lo[0]..hi[0] {
                        for j in lo[1]..hi[1] {
                            let from = (((i - c0[0]) * csize[1] + (j - c0[1])) * csize[2]
                                + (lo[2] - c0[2]))
                                * e;
                            let to = (((i - start[0]) * size[1] + (j - start[1])) * size[2]
                                + (lo[2] - start[2]))
                                * e;
                            out[to..to + row].copy_from_slice(&data[from..from + row]);
                        }
                    }
                }
            }
        }
        Ok(())
    }

    /// The box of chunk `c` of `level`, clipped to the level.
    pub fn chunk_box(&self, level: usize, c: [usize; 3]) -> ([usize; 3], [usize; 3]) {
        let shape = self.levels[level].shape;
        let start = [0, 1, 2].map(|a| c[a] * self.chunk[a]);
        let size = [0, 1, 2].map(|a| self.chunk[a].min(shape[a] - start[a]));
        (start, size)
    }

    /// Computes a box of a computed level (native elements of the served dtype).
    fn compute(&self, level: usize, start: [usize; 3], size: [usize; 3]) -> Result<Vec<u8>> {
        let l = &self.levels[level];
        let values = match l.from {
            LevelFrom::Centres => self.evaluate(start, size, l.factor)?,
            _ => self.mean_of_above(level, start, size)?,
        };
        let mut out = vec![0u8; values.len() * self.dtype.size()];
        store(values.into_iter(), self.dtype, &mut out);
        Ok(out)
    }

    /// The mean of the level above's blocks under the box.
    fn mean_of_above(&self, level: usize, start: [usize; 3], size: [usize; 3]) -> Result<Vec<f64>> {
        let above = self.levels[level - 1].shape;
        let r = above.map(|n| if n > 1 { 2 } else { 1 });
        let s0 = [0, 1, 2].map(|a| start[a] * r[a]);
        let n0 = [0, 1, 2].map(|a| (size[a] * r[a]).min(above[a] - s0[a]));
        let v = self.read_values(level - 1, s0, n0)?;
        let mut out = vec![0.0; size.iter().product()];
        out.par_chunks_mut(size[2])
            .enumerate()
            .for_each(|(row, o)| {
                let (i, j) = (row / size[1], row % size[1]);
                for (k, o) in o.iter_mut().enumerate() {
                    let (mut sum, mut n) = (0.0, 0usize);
                    for di in 0..r[0] {
                        for dj in 0..r[1] {
                            for dk in 0..r[2] {
                                let (x, y, z) = (i * r[0] + di, j * r[1] + dj, k * r[2] + dk);
                                if x < n0[0] && y < n0[1] && z < n0[2] {
                                    sum += v[(x * n0[1] + y) * n0[2] + z];
                                    n += 1;
                                }
                            }
                        }
                    }
                    *o = sum / n as f64;
                }
            });
        Ok(out)
    }

    /// A model evaluated at the centres of the voxels of a level with `factor`
    /// level-0 voxels per voxel (level-0 index `f·i + (f − 1)/2`).
    fn evaluate(
        &self,
        start: [usize; 3],
        size: [usize; 3],
        factor: [usize; 3],
    ) -> Result<Vec<f64>> {
        let n: usize = size.iter().product();
        let centre = |idx: [usize; 3]| {
            [0, 1, 2].map(|a| (idx[a] * factor[a]) as f64 + (factor[a] - 1) as f64 / 2.0)
        };
        let mut out = vec![0.0; n];
        let field: Box<dyn Field + '_> = match &self.base {
            Base::Volume(src) => src.model_field(None).ok_or_else(|| {
                Error::format(
                    &self.path,
                    "is stored voxels, not a model: nothing to evaluate",
                )
            })?,
            Base::Rbf { model, .. } => Box::new(RbfField { model, channel: 0 }),
        };
        let to_field = |p: [f64; 3]| match &self.base {
            Base::Rbf { lo, step, .. } => [0, 1, 2].map(|a| lo[a] + p[a] * step[a]),
            Base::Volume(_) => p,
        };
        out.par_chunks_mut(size[2].max(1) * 16)
            .enumerate()
            .try_for_each(|(b, o)| {
                let first = b * size[2] * 16;
                let pts: Vec<[f64; 3]> = (first..first + o.len())
                    .map(|q| {
                        let idx = [
                            start[0] + q / (size[1] * size[2]),
                            start[1] + q / size[2] % size[1],
                            start[2] + q % size[2],
                        ];
                        to_field(centre(idx))
                    })
                    .collect();
                field.sample_block(&pts, o)
            })?;
        Ok(out)
    }
}

/// The box of a memory-mapped (or in-memory) volume whose rows are
/// contiguous native elements, appended row by row (no zero-fill first: the
/// copy is most of a stored chunk's cost); None for other layouts.
fn copy_rows(view: &ContiguousView<'_>, start: [usize; 3], size: [usize; 3]) -> Option<Vec<u8>> {
    let e = view.dtype().size();
    let st = view.strides();
    if st[2] != e as isize || !(view.endian() == voxfield::Endian::NATIVE || e == 1) {
        return None;
    }
    let row = size[2] * e;
    let mut out = Vec::with_capacity(size.iter().product::<usize>() * e);
    for i in start[0]..start[0] + size[0] {
        for j in start[1]..start[1] + size[1] {
            let from = view.origin() as isize
                + i as isize * st[0]
                + j as isize * st[1]
                + start[2] as isize * st[2];
            let from = usize::try_from(from).ok()?;
            out.extend_from_slice(view.bytes().get(from..from + row)?);
        }
    }
    Some(out)
}

/// Level-0 description: shape, affine, served dtype, value scale, unit, axis names.
#[allow(clippy::type_complexity)]
fn describe(
    base: &Base,
) -> Result<(
    [usize; 3],
    Option<Affine>,
    DType,
    Option<(f64, f64)>,
    Option<String>,
    [String; 3],
)> {
    let default_names = || ["z", "y", "x"].map(String::from);
    match base {
        Base::Volume(src) => {
            let info = src.info();
            let scale = info.value_scale.filter(|&(s, i)| (s, i) != (1.0, 0.0));
            let dtype = match (scale, info.dtype) {
                (None, d) => d,
                (Some(_), DType::F64) => DType::F64,
                (Some(_), _) => DType::F32,
            };
            let view = info.axes.view_axes();
            let mut names = default_names();
            let mut unit = None;
            for (v, a) in view.iter().enumerate() {
                if let Some(axis) = a.and_then(|a| info.axes.axes.get(a)) {
                    if !axis.name.is_empty() {
                        names[v] = axis.name.clone();
                    }
                    unit = unit.or_else(|| axis.unit.clone());
                }
            }
            let unique = names.iter().collect::<std::collections::HashSet<_>>().len() == 3;
            if !unique {
                names = default_names();
            }
            Ok((info.shape, info.affine, dtype, scale, unit, names))
        }
        Base::Rbf {
            shape, lo, step, ..
        } => {
            let spacing = step.map(|s| if s == 0.0 { 1.0 } else { s });
            let affine = Affine::from_spacing_origin(spacing, *lo);
            Ok((
                *shape,
                Some(affine),
                DType::F32,
                None,
                None,
                default_names(),
            ))
        }
    }
}

/// `a` composed with a scaling by `factor` about the centres of the blocks it
/// groups: index `i` of the coarse grid sits at fine index `f·i + (f − 1)/2`.
fn coarser(a: &Affine, factor: [usize; 3]) -> Affine {
    let f = factor.map(|f| f as f64);
    let s = Affine::from_spacing_origin(f, [0, 1, 2].map(|k| (f[k] - 1.0) / 2.0));
    a.after(&s)
}

/// Stores f64 values as native elements of `dtype` (integers rounded half to even).
fn store(values: impl Iterator<Item = f64>, dtype: DType, out: &mut [u8]) {
    let e = dtype.size();
    let round = !dtype.is_float();
    for (v, o) in values.zip(out.chunks_exact_mut(e)) {
        let v = if round { v.round_ties_even() } else { v };
        voxfield::store_f64(v, dtype, o);
    }
}

fn to_little_endian(bytes: &mut [u8], dtype: DType) {
    if cfg!(target_endian = "big") {
        for e in bytes.chunks_exact_mut(dtype.size()) {
            e.reverse();
        }
    }
}

fn from_little_endian(bytes: &mut [u8], dtype: DType) {
    to_little_endian(bytes, dtype);
}
