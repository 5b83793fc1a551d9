//! Edge modes: where a coordinate outside `[0, n-1]` goes, and where an
//! interpolation tap outside `[0, n)` reads from. The coordinate maps follow
//! scipy's `map_coordinate` formula for formula (including its integer casts), so
//! results agree to rounding.

use crate::Mode;

/// Maps a coordinate along an axis of length `n`; `None` means the whole point
/// takes `cval`. Non-finite input always gives `None`.
#[inline]
pub(crate) fn map_coordinate(x: f64, n: usize, mode: Mode) -> Option<f64> {
    if !x.is_finite() {
        return None;
    }
    let len = n as f64;
    let last = len - 1.0;
    if x >= 0.0 && x <= last {
        return Some(x);
    }
    if n <= 1 && !matches!(mode, Mode::Constant | Mode::GridConstant) {
        return Some(0.0);
    }
    let below = x < 0.0;
    Some(match mode {
        Mode::Constant => return None,
        Mode::GridConstant => x,
        Mode::Nearest => {
            if below {
                0.0
            } else {
                last
            }
        }
        Mode::Mirror => {
            let sz2 = 2.0 * len - 2.0;
            if below {
                let y = sz2 * trunc_div(-x, sz2) + x;
                if y <= 1.0 - len {
                    y + sz2
                } else {
                    -y
                }
            } else {
                let y = x - sz2 * trunc_div(x, sz2);
                if y >= len {
                    sz2 - y
                } else {
                    y
                }
            }
        }
        Mode::Reflect => {
            let sz2 = 2.0 * len;
            if below {
                let y = if x < -sz2 {
                    sz2 * trunc_div(-x, sz2) + x
                } else {
                    x
                };
                if y < -len {
                    y + sz2
                } else {
                    -y - 1.0
                }
            } else {
                let y = x - sz2 * trunc_div(x, sz2);
                if y >= len {
                    sz2 - y - 1.0
                } else {
                    y
                }
            }
        }
        Mode::Wrap => {
            let sz = len - 1.0;
            if below {
                x + sz * (trunc_div(-x, sz) + 1.0)
            } else {
                x - sz * trunc_div(x, sz)
            }
        }
    })
}

/// `(npy_intp)(a / b)` as scipy computes it (truncation toward zero).
#[inline]
fn trunc_div(a: f64, b: f64) -> f64 {
    (a / b).trunc()
}

/// Where tap index `i` reads along an axis of length `n`; `None` reads `cval`
/// (only in `grid-constant` mode).
#[inline]
pub(crate) fn tap_index(i: isize, n: usize, mode: Mode) -> Option<usize> {
    let n = n as isize;
    if (0..n).contains(&i) {
        return Some(i as usize);
    }
    if n == 1 {
        return (!matches!(mode, Mode::GridConstant)).then_some(0);
    }
    Some(match mode {
        Mode::GridConstant => return None,
        Mode::Nearest => i.clamp(0, n - 1),
        Mode::Reflect => {
            let p = 2 * n;
            let r = i.rem_euclid(p);
            if r >= n {
                p - 1 - r
            } else {
                r
            }
        }
        // scipy mirrors the taps of `constant` too (only weight-0 taps at x = n-1
        // for order ≤ 1; cubic near the edge sees the mirrored volume).
        Mode::Mirror | Mode::Constant => {
            let p = 2 * n - 2;
            let r = i.rem_euclid(p);
            if r >= n {
                p - r
            } else {
                r
            }
        }
        Mode::Wrap => i.rem_euclid(n - 1),
    } as usize)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn taps_stay_in_range() {
        for n in 1..7usize {
            for i in -40isize..40 {
                for m in [
                    Mode::Constant,
                    Mode::Nearest,
                    Mode::Reflect,
                    Mode::Mirror,
                    Mode::Wrap,
                ] {
                    let t = tap_index(i, n, m).unwrap();
                    assert!(t < n, "{m:?} n={n} i={i} -> {t}");
                }
            }
        }
    }

    #[test]
    fn mapped_coordinates_are_inside() {
        for n in 1..7usize {
            for k in -400..400 {
                let x = k as f64 * 0.137;
                for m in [Mode::Nearest, Mode::Reflect, Mode::Mirror, Mode::Wrap] {
                    let y = map_coordinate(x, n, m).unwrap();
                    assert!(y > -1.0 && y <= n as f64, "{m:?} n={n} x={x} -> {y}");
                }
            }
        }
    }
}
