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
    let native = match mode {
        Mode::Mip | Mode::Minip => extreme_native(&v, view.axis, mode == Mode::Mip),
        _ => None,
    };
    let (mut pixels, mut range) = match native {
        Some(r) => r,
        None => with_voxel!(v.dtype(), v.endian(), |V| reduce::<V>(
            &v, view.axis, mode, watch
        ))?,
    };
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

/// Element types reduced in their own type (no conversion per voxel).
trait Native: Copy + PartialOrd + Send + Sync + 'static {
    /// Floats can hold NaN (skipped); integers cannot.
    const FLOAT: bool;
    const LOW: Self;
    const HIGH: Self;
    fn f64(self) -> f64;
}

macro_rules! native {
    ($($t:ty: $lo:expr, $hi:expr);*) => {$(
        impl Native for $t {
            const FLOAT: bool = (0.5 as $t) != (0 as $t);
            const LOW: Self = $lo;
            const HIGH: Self = $hi;
            #[inline]
            fn f64(self) -> f64 {
                self as f64
            }
        }
    )*};
}
native!(u8: 0, u8::MAX; i8: i8::MIN, i8::MAX; u16: 0, u16::MAX; i16: i16::MIN, i16::MAX;
    u32: 0, u32::MAX; i32: i32::MIN, i32::MAX; f32: f32::NEG_INFINITY, f32::INFINITY;
    f64: f64::NEG_INFINITY, f64::INFINITY);

/// MIP or MinIP of a C-ordered, native-endian view in its own element type:
/// the loops are elementwise max/min over contiguous rows, which compile to
/// vector instructions (numpy's `max(axis=K)` does the same). None for other
/// layouts and types (the generic path takes them).
fn extreme_native(
    v: &ContiguousView,
    axis: usize,
    max: bool,
) -> Option<(Vec<f32>, Option<[f64; 2]>)> {
    use voxfield_core::{DType, Endian};
    if v.endian() != Endian::NATIVE && v.dtype().size() > 1 {
        return None;
    }
    macro_rules! go {
        ($t:ty) => {
            typed::<$t>(v).map(|a| {
                if max {
                    extreme::<$t, true>(a, v.shape(), axis)
                } else {
                    extreme::<$t, false>(a, v.shape(), axis)
                }
            })
        };
    }
    match v.dtype() {
        DType::U8 => go!(u8),
        DType::I8 => go!(i8),
        DType::U16 => go!(u16),
        DType::I16 => go!(i16),
        DType::U32 => go!(u32),
        DType::I32 => go!(i32),
        DType::F32 => go!(f32),
        DType::F64 => go!(f64),
        _ => None,
    }
}

/// The view's voxels as one C-ordered slice of `T`, when they are laid out so
/// (and aligned for `T`).
fn typed<'a, T: Native>(v: &ContiguousView<'a>) -> Option<&'a [T]> {
    let [n0, n1, n2] = v.shape();
    let e = std::mem::size_of::<T>() as isize;
    let c_order = [n1 as isize * n2 as isize * e, n2 as isize * e, e];
    let n = n0 * n1 * n2;
    if v.dtype().size() != e as usize || v.strides() != c_order || n == 0 {
        return None;
    }
    let bytes = v.bytes().get(v.origin()..v.origin() + n * e as usize)?;
    if !(bytes.as_ptr() as usize).is_multiple_of(std::mem::align_of::<T>()) {
        return None;
    }
    // SAFETY: `bytes` holds exactly `n` elements of `T` (size checked above),
    // aligned for `T`; every bit pattern is a valid value of these numeric types.
    Some(unsafe { std::slice::from_raw_parts(bytes.as_ptr() as *const T, n) })
}

/// Elementwise extremes along `axis` (and the opposite extreme, for the
/// volume's value range). NaN never compares greater or smaller, so it is
/// skipped; a ray of NaN only (or of the type's far end) is looked at again.
fn extreme<T: Native, const MAX: bool>(
    a: &[T],
    shape: [usize; 3],
    axis: usize,
) -> (Vec<f32>, Option<[f64; 2]>) {
    let [n0, n1, n2] = shape;
    let (far, near) = if MAX {
        (T::LOW, T::HIGH)
    } else {
        (T::HIGH, T::LOW)
    };
    let better = |x: T, m: T| if MAX { x > m } else { x < m };
    let worse = |x: T, m: T| if MAX { x < m } else { x > m };
    // Axes 0 and 1 fold whole rows of the array into the picture's row
    // (selects, not branches: the loop compiles to vector max/min); axis 2
    // folds each row into one pixel.
    let fold_rows = |rows: &mut dyn Iterator<Item = &[T]>| {
        let mut rows = rows.peekable();
        let len = rows.peek().map_or(0, |r| r.len());
        let (mut acc, mut opp) = (vec![far; len], vec![near; len]);
        for src in rows {
            for ((m, o), &x) in acc.iter_mut().zip(opp.iter_mut()).zip(src) {
                *m = if better(x, *m) { x } else { *m };
                *o = if worse(x, *o) { x } else { *o };
            }
        }
        (acc, opp)
    };
    let row = |r: usize| -> (Vec<T>, Vec<T>) {
        match axis {
            0 => fold_rows(&mut (0..n0).map(|i| &a[(i * n1 + r) * n2..][..n2])),
            1 => fold_rows(&mut (0..n1).map(|j| &a[(r * n1 + j) * n2..][..n2])),
            _ => (0..n1)
                .map(|j| {
                    let src = &a[(r * n1 + j) * n2..][..n2];
                    src.iter().fold((far, near), |(m, o), &x| {
                        (
                            if better(x, m) { x } else { m },
                            if worse(x, o) { x } else { o },
                        )
                    })
                })
                .unzip(),
        }
    };
    let (h, w) = match axis {
        0 => (n1, n2),
        1 => (n0, n2),
        _ => (n0, n1),
    };
    let (acc, opp): (Vec<T>, Vec<T>) = if axis == 0 {
        // Axis 0 streams the array plane after plane (as numpy does), each
        // thread folding its own span of every plane.
        let plane = n1 * n2;
        let span = plane
            .div_ceil(4 * rayon::current_num_threads())
            .max(1 << 12);
        let spans: Vec<(Vec<T>, Vec<T>)> = (0..plane.div_ceil(span))
            .into_par_iter()
            .map(|s| {
                let (p0, p1) = (s * span, ((s + 1) * span).min(plane));
                fold_rows(&mut (0..n0).map(|i| &a[i * plane + p0..i * plane + p1]))
            })
            .collect();
        spans
            .into_iter()
            .fold((vec![], vec![]), |(mut m, mut o), (sm, so)| {
                m.extend(sm);
                o.extend(so);
                (m, o)
            })
    } else {
        let rows: Vec<(Vec<T>, Vec<T>)> = (0..h).into_par_iter().map(row).collect();
        (
            rows.iter().flat_map(|r| r.0.iter().copied()).collect(),
            rows.iter().flat_map(|r| r.1.iter().copied()).collect(),
        )
    };
    let mut out = Vec::with_capacity(h * w);
    let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
    for (p, (&m, &o)) in acc.iter().zip(&opp).enumerate() {
        let (m, o) = (m.f64(), o.f64());
        // A pixel still at the far end: a ray of NaN only, or truly of that value.
        let seen = !T::FLOAT
            || m != far.f64()
            || ray(a, shape, axis, p / w, p % w).any(|x| x.f64() == far.f64());
        out.push(if seen { m as f32 } else { f32::NAN });
        if seen {
            lo = lo.min(m.min(o));
            hi = hi.max(m.max(o));
        }
    }
    let range = (lo.is_finite() && hi.is_finite()).then_some([lo, hi]);
    (out, range)
}

/// The voxels of picture pixel (r, c) along `axis`.
fn ray<T: Native>(
    a: &[T],
    [n0, n1, n2]: [usize; 3],
    axis: usize,
    r: usize,
    c: usize,
) -> impl Iterator<Item = T> + '_ {
    let (start, step, n) = match axis {
        0 => (r * n2 + c, n1 * n2, n0),
        1 => (r * n1 * n2 + c, n2, n1),
        _ => ((r * n1 + c) * n2, 1, n2),
    };
    (0..n).map(move |k| a[start + k * step])
}

#[cfg(test)]
mod tests {
    use super::*;
    use voxfield_core::{Axes, DType, Endian, VolumeInfo};

    /// f32 voxels in memory, C order.
    struct Mem {
        info: VolumeInfo,
        bytes: Vec<u8>,
    }

    impl Mem {
        fn new(shape: [usize; 3], vals: &[f32]) -> Mem {
            let info = VolumeInfo::selected(
                "mem",
                "mem".as_ref(),
                Axes::plain(shape),
                &shape,
                DType::F32,
                Endian::NATIVE,
            );
            Mem {
                info,
                bytes: vals.iter().flat_map(|v| v.to_ne_bytes()).collect(),
            }
        }
    }

    impl VolumeSource for Mem {
        fn info(&self) -> &VolumeInfo {
            &self.info
        }
        fn contiguous(&self) -> Option<ContiguousView<'_>> {
            let [_, n1, n2] = self.info.shape;
            let st = [(n1 * n2 * 4) as isize, (n2 * 4) as isize, 4];
            ContiguousView::new(
                &self.bytes,
                self.info.shape,
                st,
                0,
                DType::F32,
                Endian::NATIVE,
            )
            .ok()
        }
    }

    #[test]
    fn projections_skip_nan_and_match_a_plain_loop() {
        let shape = [4, 5, 6];
        let n: usize = shape.iter().product();
        let mut vals: Vec<f32> = (0..n).map(|i| ((i * 37) % 23) as f32 - 7.0).collect();
        vals[3] = f32::NAN;
        // A whole ray of NaN along axis 0 at (j, k) = (2, 2).
        for i in 0..4 {
            vals[(i * 5 + 2) * 6 + 2] = f32::NAN;
        }
        let src = Mem::new(shape, &vals);
        for axis in 0..3 {
            for mode in [Mode::Mip, Mode::Minip, Mode::Mean] {
                let view = AxisView {
                    axis,
                    negative: axis == 1,
                };
                let (f, range) = project_axis(&src, view, mode, &Watch::none())
                    .unwrap()
                    .unwrap();
                assert_eq!(range, Some([-7.0, 15.0]));
                let (a, b) = other_axes(axis);
                for r in 0..shape[a] {
                    for c in 0..shape[b] {
                        let along: Vec<f32> = (0..shape[axis])
                            .map(|k| {
                                let mut idx = [0; 3];
                                (idx[a], idx[b], idx[axis]) = (r, c, k);
                                vals[(idx[0] * 5 + idx[1]) * 6 + idx[2]]
                            })
                            .filter(|v| !v.is_nan())
                            .collect();
                        let want = match mode {
                            _ if along.is_empty() => f32::NAN,
                            Mode::Mip => along.iter().copied().fold(f32::MIN, f32::max),
                            Mode::Minip => along.iter().copied().fold(f32::MAX, f32::min),
                            _ => {
                                (along.iter().map(|&v| v as f64).sum::<f64>() / along.len() as f64)
                                    as f32
                            }
                        };
                        let got = f.pixels[r * shape[b] + c];
                        assert!(
                            got == want || (got.is_nan() && want.is_nan()),
                            "{axis} {mode} {r},{c}: {got} vs {want}"
                        );
                    }
                }
            }
        }
    }
}
