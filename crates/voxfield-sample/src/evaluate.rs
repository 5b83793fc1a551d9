//! Drivers that evaluate any `Field` over generated positions, in parallel, with
//! fixed-size scratch per task (memory overhead independent of volume and request).

use rayon::prelude::*;
use voxfield_core::{Error, Field, Result};

use crate::{OutElem, Plane, Positions};

/// Positions per `Field::sample_block` call.
const BLOCK: usize = 256;
/// Positions per parallel task; smaller requests run inline on the caller's thread.
const TASK: usize = 1 << 14;
/// Side of the square output tiles planes are walked in (coherent volume access).
const TILE: usize = 16;

/// Evaluates `field` at every position into `out` (same length).
pub fn evaluate<O: OutElem>(field: &dyn Field, pos: &dyn Positions, out: &mut [O]) -> Result<()> {
    if out.len() != pos.len() {
        return Err(Error::invalid(format!(
            "output has {} elements for {} positions",
            out.len(),
            pos.len()
        )));
    }
    let run = |start: usize, out: &mut [O]| {
        let mut buf = [[0.0; 3]; BLOCK];
        let mut vals = [0.0; BLOCK];
        for (b, o) in out.chunks_mut(BLOCK).enumerate() {
            let n = o.len();
            pos.fill(start + b * BLOCK, &mut buf[..n]);
            field.sample_block(&buf[..n], &mut vals[..n]);
            for (o, v) in o.iter_mut().zip(&vals[..n]) {
                *o = O::from_f64(*v);
            }
        }
    };
    if out.len() <= TASK {
        run(0, out);
    } else {
        out.par_chunks_mut(TASK)
            .enumerate()
            .for_each(|(t, o)| run(t * TASK, o));
    }
    Ok(())
}

/// How a slab combines its samples along the normal. NaN samples (outside, with
/// a NaN fill value) are skipped, like numpy's `nanmean`/`nanmax`; a pixel with no
/// finite sample is NaN.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Reduce {
    #[default]
    Mean,
    Max,
}

/// Evaluates `field` on an oblique plane (output shape `(nv, nu)`, row-major), or
/// on a slab when `depths` has several offsets along the plane's unit normal.
/// Output is produced in `TILE`×`TILE` tiles so each touches a compact region.
pub fn evaluate_plane<O: OutElem>(
    field: &dyn Field,
    plane: &Plane,
    depths: &[f64],
    reduce: Reduce,
    out: &mut [O],
) -> Result<()> {
    if out.len() != plane.nu * plane.nv {
        return Err(Error::invalid(format!(
            "output has {} elements for a {}x{} plane",
            out.len(),
            plane.nu,
            plane.nv
        )));
    }
    if depths.is_empty() {
        return Err(Error::invalid("slab needs at least one depth"));
    }
    let normal = plane.unit_normal().unwrap_or([0.0; 3]);
    let nu = plane.nu;
    let band = |(b, rows): (usize, &mut [O])| {
        let j0 = b * TILE;
        let nrows = rows.len() / nu;
        let mut buf = [[0.0; 3]; TILE * TILE];
        let mut vals = [0.0; TILE * TILE];
        let mut acc = [0.0; TILE * TILE];
        let mut cnt = [0u32; TILE * TILE];
        for i0 in (0..nu).step_by(TILE) {
            let w = TILE.min(nu - i0);
            let n = w * nrows;
            acc[..n].fill(if reduce == Reduce::Max {
                f64::NEG_INFINITY
            } else {
                0.0
            });
            cnt[..n].fill(0);
            for &d in depths {
                for (k, b) in buf[..n].iter_mut().enumerate() {
                    let p = plane.at(i0 + k % w, j0 + k / w);
                    *b = [0, 1, 2].map(|a| p[a] + d * normal[a]);
                }
                field.sample_block(&buf[..n], &mut vals[..n]);
                if depths.len() == 1 {
                    acc[..n].copy_from_slice(&vals[..n]);
                    cnt[..n].fill(1);
                    continue;
                }
                for k in 0..n {
                    let v = vals[k];
                    if !v.is_nan() {
                        cnt[k] += 1;
                        acc[k] = match reduce {
                            Reduce::Mean => acc[k] + v,
                            Reduce::Max => acc[k].max(v),
                        };
                    }
                }
            }
            for k in 0..n {
                let v = match (depths.len(), cnt[k], reduce) {
                    (1, _, _) => acc[k],
                    (_, 0, _) => f64::NAN,
                    (_, c, Reduce::Mean) => acc[k] / c as f64,
                    (_, _, Reduce::Max) => acc[k],
                };
                rows[(k / w) * nu + i0 + k % w] = O::from_f64(v);
            }
        }
    };
    if out.len() <= TASK {
        out.chunks_mut(TILE * nu).enumerate().for_each(band);
    } else {
        out.par_chunks_mut(TILE * nu).enumerate().for_each(band);
    }
    Ok(())
}
