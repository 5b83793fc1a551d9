//! Drivers that evaluate any `Field` over generated positions, in parallel, with
//! fixed-size scratch per task (memory overhead independent of volume and request).

use rayon::prelude::*;
use voxfield_core::{Error, Field, Result};

use crate::{OutElem, Plane, Positions};

/// Positions per `Field::sample_block` call for fields that take small blocks.
const BLOCK: usize = 256;
/// Positions per parallel task; smaller requests run inline on the caller's thread.
const TASK: usize = 1 << 14;
/// Planes are walked in tiles of `TILE` rows by `ROW` columns (coherent volume
/// access); each tile row is one `Field::sample_row` call.
const TILE: usize = 16;
const ROW: usize = 256;
/// Largest batch handed to fields that want whole requests (bounds their scratch).
const MAX_BATCH: usize = 1 << 19;

/// Evaluates `field` at every position into `out` (same length).
pub fn evaluate<O: OutElem>(field: &dyn Field, pos: &dyn Positions, out: &mut [O]) -> Result<()> {
    if out.len() != pos.len() {
        return Err(Error::invalid(format!(
            "output has {} elements for {} positions",
            out.len(),
            pos.len()
        )));
    }
    let hint = field.batch_hint();
    if hint > BLOCK {
        return evaluate_batched(field, pos, out, hint.min(MAX_BATCH));
    }
    let run = |start: usize, out: &mut [O]| -> Result<()> {
        let mut buf = [[0.0; 3]; BLOCK];
        let mut vals = [0.0; BLOCK];
        for (b, o) in out.chunks_mut(BLOCK).enumerate() {
            let n = o.len();
            pos.fill(start + b * BLOCK, &mut buf[..n]);
            field.sample_block(&buf[..n], &mut vals[..n])?;
            for (o, v) in o.iter_mut().zip(&vals[..n]) {
                *o = O::from_f64(*v);
            }
        }
        Ok(())
    };
    if out.len() <= TASK {
        run(0, out)
    } else {
        out.par_chunks_mut(TASK)
            .enumerate()
            .try_for_each(|(t, o)| run(t * TASK, o))
    }
}

/// Whole batches for fields that parallelise internally (chunked storage).
fn evaluate_batched<O: OutElem>(
    field: &dyn Field,
    pos: &dyn Positions,
    out: &mut [O],
    batch: usize,
) -> Result<()> {
    let mut buf = vec![[0.0; 3]; batch.min(out.len())];
    let mut vals = vec![0.0; buf.len()];
    for (b, o) in out.chunks_mut(batch).enumerate() {
        let n = o.len();
        fill_parallel(pos, b * batch, &mut buf[..n]);
        field.sample_block(&buf[..n], &mut vals[..n])?;
        for (o, v) in o.iter_mut().zip(&vals[..n]) {
            *o = O::from_f64(*v);
        }
    }
    Ok(())
}

fn fill_parallel(pos: &dyn Positions, start: usize, buf: &mut [[f64; 3]]) {
    buf.par_chunks_mut(TASK)
        .enumerate()
        .for_each(|(t, b)| pos.fill(start + t * TASK, b));
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

/// Running reduction of one pixel over depths.
#[derive(Clone, Copy)]
struct Acc {
    sum: f64,
    n: u32,
}

impl Acc {
    fn new(reduce: Reduce) -> Self {
        let sum = if reduce == Reduce::Max {
            f64::NEG_INFINITY
        } else {
            0.0
        };
        Acc { sum, n: 0 }
    }
    #[inline]
    fn add(&mut self, v: f64, reduce: Reduce) {
        if !v.is_nan() {
            self.n += 1;
            self.sum = match reduce {
                Reduce::Mean => self.sum + v,
                Reduce::Max => self.sum.max(v),
            };
        }
    }
    #[inline]
    fn value(self, reduce: Reduce) -> f64 {
        match (self.n, reduce) {
            (0, _) => f64::NAN,
            (n, Reduce::Mean) => self.sum / n as f64,
            (_, Reduce::Max) => self.sum,
        }
    }
}

/// A plane shifted along its unit normal (one depth of a slab).
struct Shifted<'a> {
    plane: &'a Plane,
    shift: [f64; 3],
}

impl Positions for Shifted<'_> {
    fn len(&self) -> usize {
        self.plane.len()
    }
    fn fill(&self, start: usize, buf: &mut [[f64; 3]]) {
        self.plane.fill(start, buf);
        for b in buf {
            for a in 0..3 {
                b[a] += self.shift[a];
            }
        }
    }
}

/// Evaluates `field` on an oblique plane (output shape `(nv, nu)`, row-major), or
/// on a slab when `depths` has several offsets along the plane's unit normal.
/// Small-block fields are walked in `TILE`×`ROW` output tiles so each touches a
/// compact region; chunked fields get whole batches and group them by chunk.
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
    if field.batch_hint() > BLOCK {
        return plane_batched(field, plane, depths, normal, reduce, out);
    }
    let nu = plane.nu;
    let slab = depths.len() > 1;
    let band = |(b, rows): (usize, &mut [O])| -> Result<()> {
        let j0 = b * TILE;
        let nrows = rows.len() / nu;
        let mut vals = [0.0; ROW];
        let mut acc = [Acc::new(reduce); ROW];
        for i0 in (0..nu).step_by(ROW) {
            let w = ROW.min(nu - i0);
            for r in 0..nrows {
                let vals = &mut vals[..w];
                let row = |d: f64| plane.row(i0, j0 + r, (d != 0.0).then(|| normal.map(|x| d * x)));
                if slab {
                    acc[..w].fill(Acc::new(reduce));
                    for &d in depths {
                        field.sample_row(&row(d), vals)?;
                        for (a, v) in acc.iter_mut().zip(vals.iter()) {
                            a.add(*v, reduce);
                        }
                    }
                    for (v, a) in vals.iter_mut().zip(&acc) {
                        *v = a.value(reduce);
                    }
                } else {
                    field.sample_row(&row(depths[0]), vals)?;
                }
                let out = &mut rows[r * nu + i0..r * nu + i0 + w];
                for (o, v) in out.iter_mut().zip(vals.iter()) {
                    *o = O::from_f64(*v);
                }
            }
        }
        Ok(())
    };
    if out.len() <= TASK {
        out.chunks_mut(TILE * nu).enumerate().try_for_each(band)
    } else {
        out.par_chunks_mut(TILE * nu).enumerate().try_for_each(band)
    }
}

fn plane_batched<O: OutElem>(
    field: &dyn Field,
    plane: &Plane,
    depths: &[f64],
    normal: [f64; 3],
    reduce: Reduce,
    out: &mut [O],
) -> Result<()> {
    if depths.len() == 1 {
        let shifted = Shifted {
            plane,
            shift: normal.map(|x| x * depths[0]),
        };
        return evaluate(field, &shifted, out);
    }
    let mut acc = vec![Acc::new(reduce); out.len()];
    let mut vals = vec![0.0f64; out.len()];
    for &d in depths {
        evaluate(
            field,
            &Shifted {
                plane,
                shift: normal.map(|x| x * d),
            },
            &mut vals,
        )?;
        for (a, v) in acc.iter_mut().zip(&vals) {
            a.add(*v, reduce);
        }
    }
    for (o, a) in out.iter_mut().zip(&acc) {
        *o = O::from_f64(a.value(reduce));
    }
    Ok(())
}
