//! Drivers that evaluate any `Field` over generated positions, in parallel, with
//! fixed-size scratch per task (memory overhead independent of volume and request).

use rayon::prelude::*;
use voxfield_core::{Error, Field, Result};

use crate::{OutElem, Plane, Positions};

/// Positions per `Field::sample_block` call for fields that take small blocks.
const BLOCK: usize = 256;
/// Positions per parallel task; smaller requests run inline on the caller's thread.
const TASK: usize = 1 << 14;
/// Side of the square output tiles planes are walked in (coherent volume access).
const TILE: usize = 16;
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
/// Small-block fields are walked in `TILE`×`TILE` output tiles so each touches a
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
    let band = |(b, rows): (usize, &mut [O])| -> Result<()> {
        let j0 = b * TILE;
        let nrows = rows.len() / nu;
        let mut buf = [[0.0; 3]; TILE * TILE];
        let mut vals = [0.0; TILE * TILE];
        let mut acc = [Acc::new(reduce); TILE * TILE];
        let slab = depths.len() > 1;
        for i0 in (0..nu).step_by(TILE) {
            let w = TILE.min(nu - i0);
            let n = w * nrows;
            if slab {
                acc[..n].fill(Acc::new(reduce));
            }
            for &d in depths {
                // Tile rows one after another (no division per position).
                for (r, tile_row) in buf[..n].chunks_exact_mut(w).enumerate() {
                    for (c, b) in tile_row.iter_mut().enumerate() {
                        *b = plane.at(i0 + c, j0 + r);
                    }
                    if d != 0.0 {
                        for b in tile_row.iter_mut() {
                            *b = [0, 1, 2].map(|a| b[a] + d * normal[a]);
                        }
                    }
                }
                field.sample_block(&buf[..n], &mut vals[..n])?;
                if slab {
                    for k in 0..n {
                        acc[k].add(vals[k], reduce);
                    }
                }
            }
            if slab {
                for k in 0..n {
                    vals[k] = acc[k].value(reduce);
                }
            }
            for (r, tile_row) in vals[..n].chunks_exact(w).enumerate() {
                let out = &mut rows[r * nu + i0..r * nu + i0 + w];
                for (o, v) in out.iter_mut().zip(tile_row) {
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
