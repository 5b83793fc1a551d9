//! Exact axis projections straight from voxels in memory (a memory-mapped
//! `.npy`, a numpy array): MIP, MinIP and mean along an index axis, each voxel
//! read once where it lies, no lattice built. This is the picture users check
//! against `numpy.max(axis=K)` first, so it must be as cheap as numpy's.

use rayon::prelude::*;
use voxfield_core::voxel::Voxel;
use voxfield_core::work::Watch;
use voxfield_core::{with_voxel, ContiguousView, Error, Result, VolumeSource};

use crate::{other_axes, AxisView, Frame, Mode, Stats, MAX_PIXELS};

/// The projection of `src` along `view` for a scalar `mode`, and the finite
/// value range of all its voxels, when the source has voxels in memory;
/// `None` otherwise (the lattice path renders it).
pub fn project_axis(
    src: &dyn VolumeSource,
    view: AxisView,
    mode: Mode,
    watch: &Watch,
) -> Result<Option<(Frame, Option<[f64; 2]>)>> {
    if !mode.is_scalar() || src.model_kind().is_some() || src.sparse().is_some() {
        return Ok(None);
    }
    let Some(v) = src.contiguous() else {
        return Ok(None);
    };
    let start = std::time::Instant::now();
    let scale = src.info().value_scale;
    let (a, b) = other_axes(view.axis);
    let shape = v.shape();
    if shape[a].saturating_mul(shape[b]) > MAX_PIXELS {
        return Err(Error::invalid(format!(
            "a {}x{} picture is over the {MAX_PIXELS} pixels a frame may have: give a size",
            shape[b], shape[a]
        )));
    }
    let (mut pixels, mut range) = with_voxel!(v.dtype(), v.endian(), |V| reduce::<V>(
        &v, view.axis, mode, watch
    ))?;
    if let Some((slope, inter)) = scale {
        for p in &mut pixels {
            *p = (*p as f64 * slope + inter) as f32;
        }
        range = range
            .map(|r| r.map(|x| x * slope + inter))
            .map(|[x, y]| [x.min(y), x.max(y)]);
    }
    let n = shape[view.axis] as u64;
    let rays = (shape[a] * shape[b]) as u64;
    let frame = Frame {
        width: shape[b],
        height: shape[a],
        channels: 1,
        pixels,
        stats: Stats {
            rays,
            rays_hit: rays,
            samples: rays * n,
            skipped: 0,
            terminated: 0,
        },
        seconds: start.elapsed().as_secs_f64(),
    };
    // The range in f32, as a lattice of the same voxels would give it.
    Ok(Some((frame, range.map(|r| r.map(|x| x as f32 as f64)))))
}

/// Rows of the picture in parallel; each row's pixels reduce over the axis in
/// storage order. NaN voxels are skipped (a row of NaN gives NaN), as the
/// lattice path does; the mean sums in f64.
fn reduce<V: Voxel>(
    v: &ContiguousView,
    axis: usize,
    mode: Mode,
    watch: &Watch,
) -> Result<(Vec<f32>, Option<[f64; 2]>)> {
    let (a, b) = other_axes(axis);
    let shape = v.shape();
    let st = v.strides();
    let (h, w, n) = (shape[a], shape[b], shape[axis]);
    let base = v.bytes().as_ptr() as usize + v.origin();
    let mut out = vec![0f32; h * w];
    let ranges: Vec<(f64, f64)> = out
        .par_chunks_mut(w.max(1))
        .enumerate()
        .map(|(r, row)| -> Result<(f64, f64)> {
            watch.check()?;
            let mut acc = vec![0f64; w];
            let mut count = vec![0u32; w];
            let init = match mode {
                Mode::Mip => f64::NEG_INFINITY,
                Mode::Minip => f64::INFINITY,
                _ => 0.0,
            };
            acc.fill(init);
            let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
            let row0 = base as isize + r as isize * st[a];
            for k in 0..n {
                let plane = row0 + k as isize * st[axis];
                for (c, (s, m)) in acc.iter_mut().zip(count.iter_mut()).enumerate() {
                    // SAFETY: (r, c, k) is inside the view's shape, and
                    // ContiguousView::new checked that every voxel of the shape
                    // lies inside its buffer.
                    let x = unsafe { V::load((plane + c as isize * st[b]) as *const u8) };
                    if x.is_nan() {
                        continue;
                    }
                    lo = lo.min(x);
                    hi = hi.max(x);
                    *m += 1;
                    match mode {
                        Mode::Mip => {
                            if x > *s {
                                *s = x
                            }
                        }
                        Mode::Minip => {
                            if x < *s {
                                *s = x
                            }
                        }
                        _ => *s += x,
                    }
                }
            }
            for ((o, s), m) in row.iter_mut().zip(&acc).zip(&count) {
                *o = match (m, mode) {
                    (0, _) => f32::NAN,
                    (m, Mode::Mean) => (s / *m as f64) as f32,
                    _ => *s as f32,
                };
            }
            Ok((lo, hi))
        })
        .collect::<Result<_>>()?;
    let (lo, hi) = ranges
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &(l, h)| {
            (a.min(l), b.max(h))
        });
    let range = (lo.is_finite() && hi.is_finite()).then_some([lo, hi]);
    Ok((out, range))
}
