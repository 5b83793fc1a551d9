//! Transfer functions: how a field value becomes colour and opacity.
//!
//! A value `v` is first windowed, `t = (v - lo) / (hi - lo)` (in f32), then
//! coloured by a matplotlib table and given an opacity by a piecewise-linear
//! function of `t` (`numpy.interp` semantics: flat beyond the end points). The
//! opacity is per voxel of path; a step of `s` voxels composites
//! `1 - (1 - a)^s`, so a finer step gives the same picture, only smoother.

use std::str::FromStr;

use voxfield_core::{Error, Result};

use crate::Colormap;

/// Opacity against windowed value: points `(t, alpha)` with increasing `t`.
#[derive(Clone, Debug, PartialEq)]
pub struct Opacity(Vec<(f32, f32)>);

impl Default for Opacity {
    /// A ramp: transparent at the window's low end, opaque at its high end.
    fn default() -> Self {
        Opacity(vec![(0.0, 0.0), (1.0, 1.0)])
    }
}

impl Opacity {
    /// Checks the points: finite, `t` strictly increasing, alpha in [0, 1].
    pub fn new(points: Vec<(f32, f32)>) -> Result<Self> {
        if points.is_empty() {
            return Err(Error::invalid("opacity: no points given"));
        }
        for &(t, a) in &points {
            if !t.is_finite() || !a.is_finite() {
                return Err(Error::invalid(format!(
                    "opacity: the point {t}:{a} is not a finite number pair"
                )));
            }
            if !(0.0..=1.0).contains(&a) {
                return Err(Error::invalid(format!(
                    "opacity: alpha {a} at {t} is outside [0, 1]"
                )));
            }
        }
        if let Some(w) = points.windows(2).find(|w| w[1].0 <= w[0].0) {
            return Err(Error::invalid(format!(
                "opacity: the values must increase, but {} follows {}",
                w[1].0, w[0].0
            )));
        }
        Ok(Opacity(points))
    }

    pub fn points(&self) -> &[(f32, f32)] {
        &self.0
    }

    /// Opacity at windowed value `t` (NaN: 0).
    #[inline]
    pub fn at(&self, t: f32) -> f32 {
        let p = &self.0;
        if t.is_nan() {
            return 0.0;
        }
        if t <= p[0].0 {
            return p[0].1;
        }
        for w in p.windows(2) {
            let ((t0, a0), (t1, a1)) = (w[0], w[1]);
            if t <= t1 {
                return a0 + (t - t0) * ((a1 - a0) / (t1 - t0));
            }
        }
        p[p.len() - 1].1
    }

    /// The largest opacity over windowed values in `[lo, hi]`.
    pub fn max_over(&self, lo: f32, hi: f32) -> f32 {
        let inner = self
            .0
            .iter()
            .filter(|(t, _)| *t > lo && *t < hi)
            .map(|&(_, a)| a);
        inner.fold(self.at(lo).max(self.at(hi)), f32::max)
    }
}

impl FromStr for Opacity {
    type Err = Error;
    /// `v0:a0,v1:a1,...`
    fn from_str(s: &str) -> Result<Self> {
        let pair = |p: &str| -> Result<(f32, f32)> {
            let bad = || {
                Error::invalid(format!(
                    "opacity: '{p}' is not value:alpha (e.g. 0.2:0,1:0.8)"
                ))
            };
            let (t, a) = p.split_once(':').ok_or_else(bad)?;
            Ok((
                t.trim().parse().map_err(|_| bad())?,
                a.trim().parse().map_err(|_| bad())?,
            ))
        };
        Opacity::new(s.split(',').map(pair).collect::<Result<_>>()?)
    }
}

/// Refuses a window that maps nothing (not finite, or `LO >= HI`).
pub fn check_window([lo, hi]: [f64; 2]) -> Result<()> {
    if !lo.is_finite() || !hi.is_finite() || lo >= hi {
        return Err(Error::invalid(format!(
            "window {lo},{hi}: needs finite LO < HI (an empty window maps nothing)"
        )));
    }
    Ok(())
}

/// Refuses a step that is not finite or outside [1/64, 1e6] voxels (a ray's
/// sample count stays bounded).
pub fn check_step(step: f64) -> Result<()> {
    if !step.is_finite() || !(1.0 / 64.0..=1e6).contains(&step) {
        return Err(Error::invalid(format!(
            "step {step}: must be between 1/64 and 1e6 voxels"
        )));
    }
    Ok(())
}

/// Everything that maps values to pixels: window, colours, opacity, step.
#[derive(Clone, Debug)]
pub struct Transfer {
    lo: f32,
    scale: f32,
    window: [f64; 2],
    pub colormap: Colormap,
    pub opacity: Opacity,
    /// Sample spacing along rays, in voxels of the rendered lattice.
    step: f32,
    /// Gradient (Phong) shading of DVR samples.
    pub shading: bool,
}

impl Transfer {
    /// Checks the window (finite, `lo < hi`) and the step (finite, > 0, at
    /// least 1/64 voxel so a ray's sample count stays bounded).
    pub fn new(window: [f64; 2], colormap: Colormap, opacity: Opacity, step: f64) -> Result<Self> {
        let [lo, hi] = window;
        check_window(window)?;
        check_step(step)?;
        Ok(Transfer {
            lo: lo as f32,
            scale: (1.0 / (hi - lo)) as f32,
            window,
            colormap,
            opacity,
            step: step as f32,
            shading: false,
        })
    }

    pub fn window(&self) -> [f64; 2] {
        self.window
    }

    pub fn step(&self) -> f64 {
        self.step as f64
    }

    /// The windowed value of `v`: `(v - lo) * (1 / (hi - lo))` in f32.
    #[inline]
    pub fn t(&self, v: f32) -> f32 {
        (v - self.lo) * self.scale
    }

    /// The opacity one step contributes at windowed value `t`.
    #[inline]
    pub fn alpha(&self, t: f32) -> f32 {
        let a = self.opacity.at(t);
        if self.step == 1.0 || a == 0.0 {
            a
        } else {
            1.0 - (1.0 - a).powf(self.step)
        }
    }

    /// Whether values in `[vmin, vmax]` are all transparent (a macro cell that
    /// rays may skip). NaN bounds (a cell of NaN voxels) are transparent.
    pub fn transparent(&self, vmin: f32, vmax: f32) -> bool {
        if vmin.is_nan() || vmax.is_nan() {
            return true;
        }
        let (a, b) = (self.t(vmin), self.t(vmax));
        self.opacity.max_over(a.min(b), a.max(b)) <= 0.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opacity_is_numpy_interp() {
        let o: Opacity = "0.2:0, 0.5:0.8, 1:1".parse().unwrap();
        assert_eq!(o.at(0.0), 0.0);
        assert_eq!(o.at(0.2), 0.0);
        assert!((o.at(0.35) - 0.4).abs() < 1e-6);
        assert_eq!(o.at(2.0), 1.0);
        assert_eq!(o.at(f32::NAN), 0.0);
        assert_eq!(o.max_over(0.0, 0.2), 0.0);
        assert_eq!(o.max_over(0.0, 0.6), o.at(0.6));
        let peak: Opacity = "0:0,0.5:1,1:0".parse().unwrap();
        assert_eq!(peak.max_over(0.1, 0.9), 1.0);
        for bad in ["", "0:0,0:1", "0:2", "nan:0", "0:0,1", "a:b"] {
            assert!(bad.parse::<Opacity>().is_err(), "{bad}");
        }
    }

    #[test]
    fn window_and_step_are_checked() {
        let t = |w, s| Transfer::new(w, Colormap::Gray, Opacity::default(), s);
        assert!(t([1.0, 1.0], 1.0).is_err());
        assert!(t([f64::NAN, 1.0], 1.0).is_err());
        assert!(t([0.0, 1.0], 0.0).is_err());
        assert!(t([0.0, 1.0], f64::INFINITY).is_err());
        let tf = t([0.0, 10.0], 0.5).unwrap();
        assert_eq!(tf.t(5.0), 0.5);
        // Half a step of opacity 0.5 composites to 1 - sqrt(0.5).
        assert!((tf.alpha(0.5) - (1.0 - 0.5f32.sqrt())).abs() < 1e-6);
        assert!(tf.transparent(-5.0, 0.0));
        assert!(!tf.transparent(-5.0, 1.0));
    }
}
