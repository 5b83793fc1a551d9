//! Writing an OME-NGFF 0.5 multiscale image (Zarr v3): level 0 from any source,
//! each coarser level from the one before it, chunk by chunk, so memory is a few
//! chunks per worker (an output chunk and the 2ᵈ-times larger box it is reduced
//! from) whatever the volume's size. The source's affine (scale and translation;
//! a rotation is refused) becomes each level's `coordinateTransformations`, its
//! axis names and units the `axes`. The store is built under a temporary name and
//! renamed into place when every level is written.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use serde_json::{json, Value};
use voxfield_core::voxel::{read_f64, store_f64};
use voxfield_core::work::Watch;
use voxfield_core::{DType, Endian, Error, Result, VolumeSource};
use zarrs::array::{Array, ArrayBytes, ArraySubset};
use zarrs::filesystem::FilesystemStore;

use crate::write::{publish, start_store, write_array, ArraySpec, WriteOptions, CHUNKS};

/// How a coarser level's voxel is made from the 2×2(×2) block below it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Downsample {
    /// The mean of the block's voxels inside the volume (integers rounded half to even).
    Mean,
    /// The most frequent value (ties: the smallest), for label images.
    Mode,
    /// The block's first voxel (index 2i): a plain subsample.
    Nearest,
}

impl std::str::FromStr for Downsample {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "mean" => Ok(Downsample::Mean),
            "mode" => Ok(Downsample::Mode),
            "nearest" => Ok(Downsample::Nearest),
            o => Err(Error::invalid(format!(
                "downsample '{o}': expected mean, mode or nearest"
            ))),
        }
    }
}

#[derive(Clone, Copy, Debug)]
pub struct PyramidOptions {
    /// Number of levels, level 0 included (None: until a level fits in one chunk).
    pub levels: Option<usize>,
    pub downsample: Downsample,
}

/// Levels beyond this are never written (a 2⁶⁴-voxel axis needs fewer).
const MAX_LEVELS: usize = 32;

/// Shapes of the levels: each halves (rounding up) every axis longer than 1.
fn level_shapes(
    shape: &[usize],
    chunks: &[usize],
    levels: Option<usize>,
) -> Result<Vec<Vec<usize>>> {
    let mut out = vec![shape.to_vec()];
    loop {
        let last = out.last().expect("level 0");
        let fits = last.iter().zip(chunks).all(|(&n, &c)| n <= c);
        let enough = match levels {
            Some(n) => out.len() >= n,
            None => fits,
        };
        if enough {
            break;
        }
        if last.iter().all(|&n| n == 1) || out.len() >= MAX_LEVELS {
            if let Some(n) = levels {
                return Err(Error::invalid(format!(
                    "--levels {n}: a volume of shape {shape:?} has only {} levels before every axis is 1",
                    out.len()
                )));
            }
            break;
        }
        out.push(last.iter().map(|&n| n.div_ceil(2)).collect());
    }
    Ok(out)
}

/// Scale and translation of the source's affine over the written (spatial) axes;
/// a rotation or shear is refused.
fn scale_translation(src: &dyn VolumeSource, dims: usize) -> Result<(Vec<f64>, Vec<f64>)> {
    let info = src.info();
    let Some(a) = info.affine else {
        return Ok((vec![1.0; dims], vec![0.0; dims]));
    };
    let rows = a.rows();
    for r in 0..3 {
        for c in 0..3 {
            if r != c && rows[r][c].abs() > 1e-12 * (rows[r][r].abs() + rows[c][c].abs()) {
                return Err(Error::format(
                    &info.path,
                    "its affine rotates or shears the axes; OME-NGFF 0.5 stores only scale and \
                     translation: resample it onto an axis-aligned grid first (voxfield slice/grid), \
                     or write a plain .zarr, which keeps the full affine",
                ));
            }
        }
    }
    let pad = 3 - dims;
    Ok((
        (pad..3).map(|a| rows[a][a]).collect(),
        (pad..3).map(|a| rows[a][3]).collect(),
    ))
}

/// The mean of each 2×2×2 block of a native-endian 3-D box of `T`, for the types
/// volumes mostly hold (the general `reduce` handles the rest).
fn mean3<T: Copy + Into<f64>, const N: usize>(
    prev: &[u8],
    ps: &[usize],
    size: &[usize],
    dtype: DType,
    from: fn([u8; N]) -> T,
    out: &mut [u8],
) {
    let at = |i: usize, j: usize, k: usize| -> f64 {
        let o = ((i * ps[1] + j) * ps[2] + k) * N;
        from(prev[o..o + N].try_into().expect("N bytes")).into()
    };
    let mut o = 0;
    for i in 0..size[0] {
        let (i0, i1) = (2 * i, (2 * i + 1).min(ps[0] - 1));
        for j in 0..size[1] {
            let (j0, j1) = (2 * j, (2 * j + 1).min(ps[1] - 1));
            for k in 0..size[2] {
                let (k0, k1) = (2 * k, (2 * k + 1).min(ps[2] - 1));
                let mut s = 0.0;
                let mut n = 0.0;
                for ii in [i0, i1].into_iter().take(if i1 > i0 { 2 } else { 1 }) {
                    for jj in [j0, j1].into_iter().take(if j1 > j0 { 2 } else { 1 }) {
                        s += at(ii, jj, k0);
                        n += 1.0;
                        if k1 > k0 {
                            s += at(ii, jj, k1);
                            n += 1.0;
                        }
                    }
                }
                store_f64(s / n, dtype, &mut out[o..o + N]);
                o += N;
            }
        }
    }
}

/// Reduces the box `[2·start, 2·start + 2·size)` ∩ the previous level into `out`.
fn reduce(
    prev: &[u8],
    prev_size: &[usize],
    size: &[usize],
    dtype: DType,
    how: Downsample,
    out: &mut [u8],
) {
    if how == Downsample::Mean && size.len() == 3 {
        match dtype {
            DType::F32 => return mean3(prev, prev_size, size, dtype, f32::from_ne_bytes, out),
            DType::F64 => return mean3(prev, prev_size, size, dtype, f64::from_ne_bytes, out),
            DType::U8 => return mean3(prev, prev_size, size, dtype, u8::from_ne_bytes, out),
            DType::U16 => return mean3(prev, prev_size, size, dtype, u16::from_ne_bytes, out),
            DType::I16 => return mean3(prev, prev_size, size, dtype, i16::from_ne_bytes, out),
            _ => {}
        }
    }
    let e = dtype.size();
    let rank = size.len();
    let n: usize = size.iter().product();
    let mut idx = vec![0usize; rank];
    let mut block: Vec<usize> = Vec::with_capacity(1 << rank);
    for o in 0..n {
        let mut r = o;
        for a in (0..rank).rev() {
            idx[a] = r % size[a];
            r /= size[a];
        }
        // The block's voxels inside the previous level, as element offsets.
        block.clear();
        for corner in 0..(1usize << rank) {
            let mut off = 0;
            let mut inside = true;
            for a in 0..rank {
                let i = 2 * idx[a] + ((corner >> (rank - 1 - a)) & 1);
                if i >= prev_size[a] {
                    inside = false;
                    break;
                }
                off = off * prev_size[a] + i;
            }
            if inside {
                block.push(off);
            }
        }
        let dst = &mut out[o * e..(o + 1) * e];
        let elem = |k: usize| &prev[k * e..(k + 1) * e];
        match how {
            Downsample::Nearest => dst.copy_from_slice(elem(block[0])),
            Downsample::Mean => {
                let s: f64 = block
                    .iter()
                    .map(|&k| read_f64(elem(k), dtype, Endian::NATIVE))
                    .sum();
                store_f64(s / block.len() as f64, dtype, dst);
            }
            Downsample::Mode => {
                let mut best = block[0];
                let mut best_count = 0;
                for &k in &block {
                    let count = block.iter().filter(|&&j| elem(j) == elem(k)).count();
                    let smaller = read_f64(elem(k), dtype, Endian::NATIVE)
                        < read_f64(elem(best), dtype, Endian::NATIVE);
                    if count > best_count || (count == best_count && smaller) {
                        best = k;
                        best_count = count;
                    }
                }
                dst.copy_from_slice(elem(best));
            }
        }
    }
}

fn axes_json(src: &dyn VolumeSource) -> Value {
    let info = src.info();
    let a = &info.axes;
    let names = ["z", "y", "x"];
    let dims = a.spatial_dims();
    Value::Array(
        a.spatial
            .iter()
            .enumerate()
            .map(|(k, &ax)| {
                let x = &a.axes[ax];
                // NGFF names space axes; arrays without names get z, y, x.
                let name = if x.name.starts_with("axis") || x.name.is_empty() {
                    names[3 - dims + k].to_string()
                } else {
                    x.name.clone()
                };
                let mut v = json!({"name": name, "type": "space"});
                if let Some(u) = &x.unit {
                    v["unit"] = json!(u);
                }
                v
            })
            .collect(),
    )
}

/// Writes `src` (its spatial view) as a new OME-Zarr 0.5 multiscale image at `dst`.
/// Returns the shapes of the levels written.
pub fn write_ome_zarr(
    src: &dyn VolumeSource,
    dst: &Path,
    opts: &WriteOptions,
    pyramid: &PyramidOptions,
    watch: &Watch,
) -> Result<Vec<Vec<usize>>> {
    let info = src.info();
    let dims = info.axes.spatial_dims();
    let pad = 3 - dims;
    let shape: Vec<usize> = info.shape[pad..].to_vec();
    let chunks: Vec<usize> = opts.chunks[pad..].to_vec();
    let (scale, trans) = scale_translation(src, dims)?;
    let shapes = level_shapes(&shape, &chunks, pyramid.levels)?;
    let tmp = start_store(dst, &chunks, info.dtype.size())?;
    let store = Arc::new(
        FilesystemStore::new(tmp.path()).map_err(|e| Error::format(tmp.path(), e.to_string()))?,
    );
    let total: u64 = shapes
        .iter()
        .map(|s| {
            s.iter()
                .zip(&chunks)
                .map(|(&n, &c)| n.div_ceil(c) as u64)
                .product::<u64>()
        })
        .sum();
    let n = AtomicU64::new(0);
    let done = || watch.report(CHUNKS, n.fetch_add(1, Ordering::Relaxed) + 1, total);
    let mut datasets = vec![];
    for (k, lshape) in shapes.iter().enumerate() {
        let node = format!("/{k}");
        let spec = ArraySpec {
            node: &node,
            shape: lshape,
            chunks: &chunks,
            dtype: info.dtype,
            attributes: Default::default(),
        };
        if k == 0 {
            let read = |start: &[usize], size: &[usize], out: &mut [u8]| {
                let mut s3 = [0; 3];
                let mut z3 = [1; 3];
                s3[pad..].copy_from_slice(start);
                z3[pad..].copy_from_slice(size);
                src.read_box_native(s3, z3, out)
            };
            write_array(&store, dst, &spec, opts, &read, &done, watch)?;
        } else {
            let prev = Array::open(store.clone(), &format!("/{}", k - 1))
                .map_err(|e| Error::format(dst, format!("level {}: {e}", k - 1)))?;
            let pshape = &shapes[k - 1];
            let read = |start: &[usize], size: &[usize], out: &mut [u8]| {
                let ranges: Vec<std::ops::Range<u64>> = (0..dims)
                    .map(|a| {
                        let lo = 2 * start[a];
                        (lo as u64)..((lo + 2 * size[a]).min(pshape[a]) as u64)
                    })
                    .collect();
                let psize: Vec<usize> = ranges.iter().map(|r| (r.end - r.start) as usize).collect();
                let bytes: ArrayBytes<'static> = prev
                    .retrieve_array_subset(&ArraySubset::new_with_ranges(&ranges))
                    .map_err(|e| Error::format(dst, format!("reading level {}: {e}", k - 1)))?;
                let raw = bytes
                    .into_fixed()
                    .map_err(|e| Error::format(dst, format!("reading level {}: {e}", k - 1)))?;
                reduce(&raw, &psize, size, info.dtype, pyramid.downsample, out);
                Ok(())
            };
            write_array(&store, dst, &spec, opts, &read, &done, watch)?;
        }
        // Voxel k of level l covers level-0 voxels [2ˡ·k, 2ˡ·(k+1)): a mean sits at
        // their centre, a subsample at the first.
        // An axis is halved from one level to the next while it is longer than 1.
        let factor: Vec<f64> = (0..dims)
            .map(|a| {
                (1..=k)
                    .filter(|&j| shapes[j - 1][a] > 1)
                    .fold(1.0, |f, _| f * 2.0)
            })
            .collect();
        let shift = |a: usize| match pyramid.downsample {
            Downsample::Nearest => 0.0,
            _ => (factor[a] - 1.0) / 2.0,
        };
        datasets.push(json!({
            "path": k.to_string(),
            "coordinateTransformations": [
                {"type": "scale", "scale": (0..dims).map(|a| scale[a] * factor[a]).collect::<Vec<_>>()},
                {"type": "translation", "translation": (0..dims).map(|a| trans[a] + scale[a] * shift(a)).collect::<Vec<_>>()},
            ],
        }));
    }
    let name = dst
        .file_name()
        .map(|n| {
            n.to_string_lossy()
                .trim_end_matches(".zarr")
                .trim_end_matches(".ome")
                .to_string()
        })
        .unwrap_or_default();
    let group = json!({
        "zarr_format": 3,
        "node_type": "group",
        "attributes": {"ome": {"version": "0.5", "multiscales": [{
            "name": name,
            "axes": axes_json(src),
            "datasets": datasets,
            "type": match pyramid.downsample {
                Downsample::Mean => "mean",
                Downsample::Mode => "mode",
                Downsample::Nearest => "nearest",
            },
            "metadata": {"written_by": "voxfield", "source": info.path.to_string_lossy()},
        }]}},
    });
    std::fs::write(
        tmp.path().join("zarr.json"),
        serde_json::to_vec_pretty(&group).map_err(|e| Error::invalid(e.to_string()))?,
    )
    .map_err(|e| Error::io(tmp.path(), e))?;
    publish(tmp, dst)?;
    Ok(shapes)
}
