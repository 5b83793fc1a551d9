//! What a ray makes of its samples, per mode: maximum, minimum, mean,
//! front-to-back emission–absorption (DVR) or the first isosurface crossing.
//! Each says which macro cells its ray may skip given what it holds so far.

use crate::camera::{dot, norm, scale};
use crate::lattice::Lattice;
use crate::transfer::Transfer;

type V3 = [f64; 3];

/// Opacity at which a DVR ray stops: what is left to add is below 2^-17 of
/// full intensity (below the 1e-5 a float comparison with numpy allows).
pub const OPAQUE: f32 = 1.0 - 1.0 / 131072.0;

/// Values and gradients at arbitrary positions, for refinement and shading.
pub(crate) trait Probe {
    fn value(&self, p: V3) -> f32;
    fn gradient(&self, p: V3) -> V3;
}

impl Probe for Lattice {
    fn value(&self, p: V3) -> f32 {
        self.sample(p)
    }
    fn gradient(&self, p: V3) -> V3 {
        Lattice::gradient(self, p)
    }
}

/// One ray's running result.
pub(crate) trait Composite {
    /// Whether the ray may skip a macro cell whose values span `[min, max]`
    /// (`transparent`: the transfer function gives the whole span no opacity).
    fn skips(&self, min: f32, max: f32, transparent: bool) -> bool;
    /// Adds the sample `v` at `p`; false when the ray is done.
    fn add<P: Probe>(&mut self, v: f32, p: V3, probe: &P) -> bool;
    /// Writes the pixel (1 value, or premultiplied RGBA).
    fn finish(&self, out: &mut [f32]);
}

/// Largest (`Max`) or smallest value; NaN samples are ignored, a ray that saw
/// none gives NaN.
pub(crate) struct Extreme<const MAX: bool> {
    v: f32,
    seen: bool,
}

impl<const MAX: bool> Extreme<MAX> {
    pub(crate) fn new() -> Self {
        Extreme {
            v: if MAX {
                f32::NEG_INFINITY
            } else {
                f32::INFINITY
            },
            seen: false,
        }
    }
}

impl<const MAX: bool> Composite for Extreme<MAX> {
    #[inline]
    fn skips(&self, min: f32, max: f32, _: bool) -> bool {
        if min.is_nan() {
            return true;
        }
        self.seen && if MAX { max <= self.v } else { min >= self.v }
    }
    #[inline]
    fn add<P: Probe>(&mut self, v: f32, _: V3, _: &P) -> bool {
        if v.is_nan() {
            return true;
        }
        self.seen = true;
        if (MAX && v > self.v) || (!MAX && v < self.v) {
            self.v = v;
        }
        true
    }
    fn finish(&self, out: &mut [f32]) {
        out[0] = if self.seen { self.v } else { f32::NAN };
    }
}

/// Mean of the non-NaN samples, summed in f64 (exact for integer voxels).
#[derive(Default)]
pub(crate) struct Mean {
    sum: f64,
    n: u64,
}

impl Composite for Mean {
    fn skips(&self, _: f32, _: f32, _: bool) -> bool {
        false
    }
    #[inline]
    fn add<P: Probe>(&mut self, v: f32, _: V3, _: &P) -> bool {
        if !v.is_nan() {
            self.sum += v as f64;
            self.n += 1;
        }
        true
    }
    fn finish(&self, out: &mut [f32]) {
        out[0] = if self.n > 0 {
            (self.sum / self.n as f64) as f32
        } else {
            f32::NAN
        };
    }
}

/// A headlight: the unit direction towards the viewer in the camera's space,
/// and how a lattice gradient becomes a gradient in that space (the transpose
/// of the camera-to-lattice map's linear part; `None` when they are the same),
/// so surfaces of anisotropic voxels are lit as they stand in the world.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Light {
    pub towards: V3,
    pub to_camera: Option<[[f64; 3]; 3]>,
}

impl Light {
    fn camera_gradient(&self, g: V3) -> V3 {
        match &self.to_camera {
            None => g,
            Some(m) => [0, 1, 2].map(|r| m[r][0] * g[0] + m[r][1] * g[1] + m[r][2] * g[2]),
        }
    }
}

/// Front-to-back compositing: `C += (1 - A) a c`, `A += (1 - A) a`.
pub(crate) struct Dvr<'a> {
    tf: &'a Transfer,
    light: Light,
    rgb: [f32; 3],
    alpha: f32,
}

impl<'a> Dvr<'a> {
    pub(crate) fn new(tf: &'a Transfer, light: Light) -> Self {
        Dvr {
            tf,
            light,
            rgb: [0.0; 3],
            alpha: 0.0,
        }
    }
}

impl Composite for Dvr<'_> {
    #[inline]
    fn skips(&self, _: f32, _: f32, transparent: bool) -> bool {
        transparent
    }
    #[inline]
    fn add<P: Probe>(&mut self, v: f32, p: V3, probe: &P) -> bool {
        let t = self.tf.t(v);
        let a = self.tf.alpha(t);
        if a <= 0.0 {
            return true;
        }
        let mut c = self.tf.colormap.rgb(t);
        if self.tf.shading {
            c = phong(c, probe.gradient(p), &self.light);
        }
        let w = (1.0 - self.alpha) * a;
        for (o, c) in self.rgb.iter_mut().zip(c) {
            *o += w * c;
        }
        self.alpha += w;
        self.alpha < OPAQUE
    }
    fn finish(&self, out: &mut [f32]) {
        out[..3].copy_from_slice(&self.rgb);
        out[3] = self.alpha;
    }
}

/// The first crossing of `level`, refined between the samples that bracket
/// it, shaded by the gradient there; coloured by the level's windowed value.
pub(crate) struct Iso<'a> {
    tf: &'a Transfer,
    light: Light,
    level: f32,
    prev: Option<(f32, V3)>,
    hit: Option<[f32; 3]>,
}

impl<'a> Iso<'a> {
    pub(crate) fn new(tf: &'a Transfer, light: Light, level: f32) -> Self {
        Iso {
            tf,
            light,
            level,
            prev: None,
            hit: None,
        }
    }
}

impl Composite for Iso<'_> {
    #[inline]
    fn skips(&self, min: f32, max: f32, _: bool) -> bool {
        if min.is_nan() {
            return true;
        }
        // Only cells wholly on the side the ray is on: no crossing is passed.
        match self.prev {
            Some((v, _)) if v > self.level => min > self.level,
            Some((v, _)) if v < self.level => max < self.level,
            _ => false,
        }
    }
    fn add<P: Probe>(&mut self, v: f32, p: V3, probe: &P) -> bool {
        if v.is_nan() {
            self.prev = None;
            return true;
        }
        let at = match self.prev {
            _ if v == self.level => p,
            Some((pv, pp)) if (pv < self.level) != (v < self.level) => {
                refine(probe, self.level, (pv, pp), (v, p))
            }
            _ => {
                self.prev = Some((v, p));
                return true;
            }
        };
        let c = self.tf.colormap.rgb(self.tf.t(self.level));
        self.hit = Some(phong(c, probe.gradient(at), &self.light));
        false
    }
    fn finish(&self, out: &mut [f32]) {
        match self.hit {
            Some(c) => {
                out[..3].copy_from_slice(&c);
                out[3] = 1.0;
            }
            None => out[..4].fill(0.0),
        }
    }
}

/// The crossing of `level` between two samples on either side: bisection on
/// the probe, then the linear root in the last bracket.
fn refine<P: Probe>(probe: &P, level: f32, mut a: (f32, V3), mut b: (f32, V3)) -> V3 {
    for _ in 0..12 {
        let m = [0, 1, 2].map(|i| (a.1[i] + b.1[i]) / 2.0);
        let v = probe.value(m);
        if v.is_nan() {
            break;
        }
        if (v < level) == (a.0 < level) {
            a = (v, m);
        } else {
            b = (v, m);
        }
    }
    let s = if b.0 != a.0 {
        ((level - a.0) / (b.0 - a.0)).clamp(0.0, 1.0) as f64
    } else {
        0.5
    };
    [0, 1, 2].map(|i| a.1[i] + s * (b.1[i] - a.1[i]))
}

/// Headlight Phong shading (two-sided): ambient 0.3, diffuse 0.7, specular
/// 0.25 with exponent 16. A flat gradient leaves the colour as it is.
#[inline]
fn phong(c: [f32; 3], g: V3, light: &Light) -> [f32; 3] {
    let g = light.camera_gradient(g);
    let n = norm(g);
    if n.is_nan() || n <= 1e-12 {
        return c;
    }
    let cos = (dot(scale(g, 1.0 / n), light.towards)).abs() as f32;
    let spec = 0.25 * cos.powi(16);
    c.map(|x| (x * (0.3 + 0.7 * cos) + spec).min(1.0))
}
