//! B-spline coefficients of any volume, computed brick by brick: the source seen
//! through scipy's `spline_filter` without a global pass over the volume.
//!
//! The prefilter is a cascade of first-order recursive filters whose impulse
//! response decays like |z|ⁿ (|z| = 0.172, 0.268, 0.361, 0.431 for orders 2 to 5).
//! A brick's coefficients therefore depend on its neighbourhood only up to a halo
//! of `halo(order)` voxels beyond which the influence is below 1e-17 relative:
//! each brick is filtered over itself plus the halo (clipped at the volume's
//! faces, where the passes start exactly as scipy's), which equals scipy's
//! result to rounding.
//! As scipy, `nearest` and `grid-constant` first pad the volume by 12 voxels (edge
//! values or `cval`) and filter the padded volume with mirror boundaries.

use voxfield_core::{Axes, DType, Endian, Error, Result, VolumeInfo, VolumeSource};

use crate::Mode;

/// Edge of the cubic bricks coefficients are computed and cached in.
pub const BRICK: usize = 64;
/// scipy's padding for modes without an exact boundary rule.
const SCIPY_PAD: usize = 12;

/// The filter's poles for B-spline `order` (2 to 5).
fn poles(order: u8) -> &'static [f64] {
    match order {
        2 => &[-0.171_572_875_253_809_9],
        3 => &[-0.267_949_192_431_122_7],
        4 => &[-0.361_341_225_900_220_2, -0.013_725_429_297_339_121],
        _ => &[-0.430_575_347_099_973_8, -0.043_096_288_203_264_65],
    }
}

/// Voxels of context a brick needs on each side: |z_max|^halo < 1e-17, plus 2.
pub fn halo(order: u8) -> usize {
    let z = poles(order)[0].abs();
    ((1e-17f64).ln() / z.ln()).ceil() as usize + 2
}

/// The filter's boundary condition at the (padded) volume's faces, as scipy's
/// recursive-filter starts.
#[derive(Clone, Copy, PartialEq)]
enum Boundary {
    Mirror,
    Reflect,
}

/// Where a line of a brick's neighbourhood starts and ends: at a face of the
/// volume (the exact start there; `whole` when the line is the whole axis) or
/// inside it, a halo away from the part kept (any start will do).
#[derive(Clone, Copy)]
struct Ends {
    first: bool,
    last: bool,
    whole: bool,
}

/// A volume's B-spline coefficients as a chunked f64 source (bricks of `BRICK`³),
/// padded by 12 voxels on each non-singleton axis for `nearest`/`grid-constant`.
pub struct SplineCoefficients<'a> {
    src: &'a dyn VolumeSource,
    order: u8,
    mode: Mode,
    cval: f64,
    pad: [usize; 3],
    boundary: Boundary,
    info: VolumeInfo,
}

impl<'a> SplineCoefficients<'a> {
    pub fn new(src: &'a dyn VolumeSource, order: u8, mode: Mode, cval: f64) -> Result<Self> {
        if !(2..=5).contains(&order) {
            return Err(Error::invalid(format!(
                "B-spline order {order}: 2 to 5 are supported"
            )));
        }
        let s = src.info();
        let padded = matches!(mode, Mode::Nearest | Mode::GridConstant);
        let pad = s.shape.map(|n| if padded && n > 1 { SCIPY_PAD } else { 0 });
        let shape = [0, 1, 2].map(|a| s.shape[a] + 2 * pad[a]);
        // scipy 1.17's filter boundaries (its `wrap` filters with mirror ends).
        let boundary = match mode {
            Mode::Reflect | Mode::Nearest => Boundary::Reflect,
            _ => Boundary::Mirror,
        };
        let mut info = VolumeInfo::selected(
            "spline coefficients",
            &s.path,
            Axes::plain(shape),
            &shape.map(|n| n.min(BRICK)),
            DType::F64,
            Endian::NATIVE,
        );
        info.notes = s.notes.clone();
        Ok(Self {
            src,
            order,
            mode,
            cval,
            pad,
            boundary,
            info,
        })
    }

    /// The padding in front of the coefficients (index shift of positions).
    pub fn shift(&self) -> [usize; 3] {
        self.pad
    }

    /// Where index `i` of the padded axis `a` reads: a source index, or None for
    /// `cval` (grid-constant padding).
    fn source_index(&self, a: usize, i: usize) -> Option<usize> {
        let raw = i as isize - self.pad[a] as isize;
        let len = self.src.info().shape[a] as isize;
        if (0..len).contains(&raw) {
            Some(raw as usize)
        } else if self.mode == Mode::GridConstant {
            None
        } else {
            Some(raw.clamp(0, len - 1) as usize) // nearest: edge padding
        }
    }

    /// Fills `e` (C order, `ext` shape) with the extended neighbourhood whose
    /// per-axis source indices are `idx`, reading each run of indices once.
    fn gather(&self, idx: &[Vec<Option<usize>>; 3], ext: [usize; 3], e: &mut [f64]) -> Result<()> {
        let runs = [0, 1, 2].map(|a| runs(&idx[a]));
        let scale = self.src.info().value_scale;
        for r0 in &runs[0] {
            for r1 in &runs[1] {
                for r2 in &runs[2] {
                    let rr = [r0, r1, r2];
                    let (Some(s0), Some(s1), Some(s2)) = (r0.src, r1.src, r2.src) else {
                        for i in r0.at..r0.at + r0.len {
                            for j in r1.at..r1.at + r1.len {
                                let row = (i * ext[1] + j) * ext[2];
                                e[row + r2.at..row + r2.at + r2.len].fill(self.cval);
                            }
                        }
                        continue;
                    };
                    let src = [s0, s1, s2];
                    let lo = src.map(|s| s.0);
                    let size = [0, 1, 2].map(|a| if src[a].1 == 0 { 1 } else { rr[a].len });
                    let mut vals = vec![0.0; size.iter().product()];
                    self.src.read_box(lo, size, &mut vals)?;
                    if let Some((m, q)) = scale {
                        vals.iter_mut().for_each(|v| *v = *v * m + q);
                    }
                    // Position p of a run reads raw offset p (up), len-1-p (down) or 0 (repeat).
                    let at = |a: usize, p: usize| match src[a].1 {
                        1 => p,
                        -1 => rr[a].len - 1 - p,
                        _ => 0,
                    };
                    for i in 0..r0.len {
                        for j in 0..r1.len {
                            let row = ((r0.at + i) * ext[1] + r1.at + j) * ext[2] + r2.at;
                            let v = (at(0, i) * size[1] + at(1, j)) * size[2];
                            for k in 0..r2.len {
                                e[row + k] = vals[v + at(2, k)];
                            }
                        }
                    }
                }
            }
        }
        Ok(())
    }
}

/// A run of an extended line: `len` positions from `at` reading source indices
/// that go up (+1), down (−1) or repeat (0) from the smallest, `src.0`; `cval`
/// when `src` is None.
#[derive(Debug, PartialEq)]
struct Run {
    at: usize,
    len: usize,
    src: Option<(usize, i8)>,
}

fn runs(idx: &[Option<usize>]) -> Vec<Run> {
    let mut out: Vec<Run> = vec![];
    for (p, &x) in idx.iter().enumerate() {
        if let Some(last) = out.last_mut() {
            let step = match (idx[p - 1], x) {
                (Some(a), Some(b)) => Some(b as isize - a as isize),
                (None, None) => Some(0),
                _ => None,
            };
            let joins = match (step, last.src) {
                (Some(0), None) => true,
                (Some(d), Some((_, dir))) if (-1..=1).contains(&d) => {
                    last.len == 1 || dir as isize == d
                }
                _ => false,
            };
            if joins {
                if let (Some(d), Some((_, _))) = (step, last.src) {
                    let lowest = if d < 0 {
                        x.expect("a source run")
                    } else {
                        last.src.expect("a source run").0
                    };
                    last.src = Some((lowest, d as i8));
                }
                last.len += 1;
                continue;
            }
        }
        out.push(Run {
            at: p,
            len: 1,
            src: x.map(|i| (i, 1)),
        });
    }
    out
}

/// Filters one line in place: the gain, then per pole a causal and an
/// anticausal pass. At a face of the volume each pass starts as scipy's filter
/// does (mirror: whole-sample, reflect: half-sample symmetric); terms of its
/// start sums beyond the line are below z^halo < 1e-17 and left out.
fn filter_line(c: &mut [f64], zs: &[f64], b: Boundary, ends: Ends) {
    let n = c.len();
    if n < 2 {
        return;
    }
    let gain: f64 = zs.iter().map(|&z| (1.0 - z) * (1.0 - 1.0 / z)).product();
    c.iter_mut().for_each(|v| *v *= gain);
    for &z in zs {
        if ends.first {
            c[0] = causal_start(c, z, b, ends.whole);
        }
        for i in 1..n {
            c[i] += z * c[i - 1];
        }
        c[n - 1] = match (b, ends.last) {
            (Boundary::Reflect, true) => c[n - 1] * z / (z - 1.0),
            _ => (z * c[n - 2] + c[n - 1]) * z / (z * z - 1.0),
        };
        for i in (0..n - 1).rev() {
            c[i] = z * (c[i + 1] - c[i]);
        }
    }
}

/// The first causal coefficient at a face: the sum over the symmetric extension
/// (closed form over the whole axis when the line is all of it).
fn causal_start(c: &[f64], z: f64, b: Boundary, whole: bool) -> f64 {
    let n = c.len();
    match (b, whole) {
        (Boundary::Mirror, true) => {
            let zn1 = z.powi(n as i32 - 1);
            let mut s = c[0] + zn1 * c[n - 1];
            let mut zi = z;
            for i in 1..n - 1 {
                s += zi * (c[i] + zn1 * c[n - 1 - i]);
                zi *= z;
            }
            s / (1.0 - zn1 * zn1)
        }
        (Boundary::Reflect, true) => {
            let zn = z.powi(n as i32);
            let mut s = c[0] + zn * c[n - 1];
            let mut zi = z;
            for i in 1..n {
                s += zi * (c[i] + zn * c[n - 1 - i]);
                zi *= z;
            }
            c[0] + s * z / (1.0 - zn * zn)
        }
        (Boundary::Mirror, false) => {
            let mut s = c[0];
            let mut zi = z;
            for &v in &c[1..] {
                s += zi * v;
                zi *= z;
            }
            s
        }
        (Boundary::Reflect, false) => {
            let mut s = 0.0;
            let mut zi = z;
            for &v in c {
                s += zi * v;
                zi *= z;
            }
            c[0] + s
        }
    }
}

impl VolumeSource for SplineCoefficients<'_> {
    fn info(&self) -> &VolumeInfo {
        &self.info
    }

    fn read_chunk(&self, idx: [usize; 3], out: &mut [u8]) -> Result<()> {
        voxfield_core::check_chunk(&self.info, idx, out.len())?;
        let cs = self.info.chunk_shape;
        let shape = self.info.shape;
        let h = halo(self.order);
        let lo = [0, 1, 2].map(|a| idx[a] * cs[a]);
        let hi = [0, 1, 2].map(|a| (lo[a] + cs[a]).min(shape[a]));
        // The brick and a halo on each side, clipped at the volume's faces (where
        // the filter starts exactly). Axes of length 1 are not filtered (as scipy).
        let before = [0, 1, 2].map(|a| h.min(lo[a]));
        let after = [0, 1, 2].map(|a| h.min(shape[a] - hi[a]));
        let ends = [0, 1, 2].map(|a| Ends {
            first: before[a] == lo[a],
            last: hi[a] + after[a] == shape[a],
            whole: before[a] == lo[a] && hi[a] + after[a] == shape[a],
        });
        let ext = [0, 1, 2].map(|a| hi[a] - lo[a] + before[a] + after[a]);
        let halo = before;
        let index: [Vec<Option<usize>>; 3] = [0, 1, 2].map(|a| {
            (lo[a] - before[a]..hi[a] + after[a])
                .map(|i| self.source_index(a, i))
                .collect()
        });
        let mut e = vec![0.0; ext.iter().product()];
        self.gather(&index, ext, &mut e)?;
        let zs = poles(self.order);
        // Along axis 2 (contiguous lines), then 1 and 0 through a line buffer.
        if ext[2] > 1 && shape[2] > 1 {
            e.chunks_exact_mut(ext[2])
                .for_each(|l| filter_line(l, zs, self.boundary, ends[2]));
        }
        let mut line = vec![0.0; ext[0].max(ext[1])];
        if shape[1] > 1 {
            for i in 0..ext[0] {
                for k in 0..ext[2] {
                    for j in 0..ext[1] {
                        line[j] = e[(i * ext[1] + j) * ext[2] + k];
                    }
                    filter_line(&mut line[..ext[1]], zs, self.boundary, ends[1]);
                    for j in 0..ext[1] {
                        e[(i * ext[1] + j) * ext[2] + k] = line[j];
                    }
                }
            }
        }
        if shape[0] > 1 {
            for j in 0..ext[1] {
                for k in 0..ext[2] {
                    for i in 0..ext[0] {
                        line[i] = e[(i * ext[1] + j) * ext[2] + k];
                    }
                    filter_line(&mut line[..ext[0]], zs, self.boundary, ends[0]);
                    for i in 0..ext[0] {
                        e[(i * ext[1] + j) * ext[2] + k] = line[i];
                    }
                }
            }
        }
        for i in 0..hi[0] - lo[0] {
            for j in 0..hi[1] - lo[1] {
                let src = ((i + halo[0]) * ext[1] + j + halo[1]) * ext[2] + halo[2];
                let dst = (i * cs[1] + j) * cs[2] * 8;
                for (k, v) in e[src..src + hi[2] - lo[2]].iter().enumerate() {
                    out[dst + 8 * k..dst + 8 * k + 8].copy_from_slice(&v.to_ne_bytes());
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_split_an_extended_line() {
        let idx = [
            Some(2),
            Some(1),
            Some(0),
            Some(1),
            Some(2),
            Some(3),
            None,
            None,
            Some(4),
            Some(4),
            Some(4),
        ];
        let r: Vec<_> = runs(&idx)
            .into_iter()
            .map(|r| (r.at, r.len, r.src))
            .collect();
        assert_eq!(
            r,
            vec![
                (0, 3, Some((0, -1))),
                (3, 3, Some((1, 1))),
                (6, 2, None),
                (8, 3, Some((4, 0)))
            ]
        );
    }

    #[test]
    fn halos_cover_the_decay() {
        for o in 2..=5u8 {
            assert!(poles(o)[0].abs().powi(halo(o) as i32) < 1e-17);
        }
        assert_eq!((halo(2), halo(3), halo(5)), (25, 32, 49));
    }
}
