//! Cameras: which rays a picture is made of.
//!
//! A view starts from an index axis (`axisK` looks along +K, `-axisK` along
//! -K; image rows follow the lower-numbered remaining axis, columns the higher,
//! for both signs) and may orbit the field's centre: azimuth turns about the
//! image's vertical, elevation tilts the camera up (it then looks down the
//! rows), roll turns the picture about the view direction. With angles 0 and
//! no size, an axis view has one pixel per voxel, on voxel centres: this is the
//! exact mode whose MIP equals `numpy.max(axis=K)`.

use std::f64::consts::PI;
use std::str::FromStr;

use voxfield_core::{Error, Result};

type V3 = [f64; 3];

/// Orthographic (parallel rays) or perspective (rays from an eye point).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Projection {
    #[default]
    Ortho,
    Perspective,
}

impl FromStr for Projection {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "ortho" | "orthographic" => Ok(Projection::Ortho),
            "perspective" => Ok(Projection::Perspective),
            _ => Err(Error::invalid(format!(
                "projection '{s}': expected ortho or perspective"
            ))),
        }
    }
}

/// The starting direction of a view: along index axis `axis`, or against it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AxisView {
    pub axis: usize,
    pub negative: bool,
}

impl FromStr for AxisView {
    type Err = Error;
    /// `axis0`, `-axis2`, ...
    fn from_str(s: &str) -> Result<Self> {
        let (negative, rest) = match s.strip_prefix('-') {
            Some(r) => (true, r),
            None => (false, s.strip_prefix('+').unwrap_or(s)),
        };
        match rest {
            "axis0" | "axis1" | "axis2" => Ok(AxisView {
                axis: (rest.as_bytes()[4] - b'0') as usize,
                negative,
            }),
            _ => Err(Error::invalid(format!(
                "view '{s}': expected axis0, axis1, axis2, -axis0, -axis1 or -axis2"
            ))),
        }
    }
}

impl std::fmt::Display for AxisView {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let sign = if self.negative { "-" } else { "" };
        write!(f, "{sign}axis{}", self.axis)
    }
}

/// What the user asks of the camera.
#[derive(Clone, Debug, PartialEq)]
pub struct CameraSpec {
    pub view: AxisView,
    /// Degrees.
    pub azimuth: f64,
    pub elevation: f64,
    pub roll: f64,
    pub projection: Projection,
    /// Vertical field of view of a perspective camera, degrees.
    pub fov: f64,
    /// Magnification: > 1 fills the picture with less of the field.
    pub zoom: f64,
    /// Picture width and height; `None`: the exact voxel grid for an axis
    /// view, else 512×512.
    pub size: Option<[usize; 2]>,
}

impl Default for CameraSpec {
    fn default() -> Self {
        CameraSpec {
            view: AxisView::default(),
            azimuth: 0.0,
            elevation: 0.0,
            roll: 0.0,
            projection: Projection::Ortho,
            fov: 30.0,
            zoom: 1.0,
            size: None,
        }
    }
}

/// Picture side limit: rays per frame stay addressable and bounded.
pub const MAX_SIDE: usize = 1 << 15;

impl CameraSpec {
    /// No rotation: the picture is taken straight along an index axis.
    pub fn is_axis_aligned(&self) -> bool {
        self.azimuth == 0.0 && self.elevation == 0.0 && self.roll == 0.0
    }

    fn check(&self) -> Result<()> {
        for (name, v) in [
            ("azimuth", self.azimuth),
            ("elevation", self.elevation),
            ("roll", self.roll),
        ] {
            if !v.is_finite() {
                return Err(Error::invalid(format!("{name} {v}: not a finite angle")));
            }
        }
        if !(self.zoom.is_finite() && self.zoom > 0.0 && self.zoom <= 1e6) {
            return Err(Error::invalid(format!(
                "zoom {}: must be > 0 and at most 1e6",
                self.zoom
            )));
        }
        if self.projection == Projection::Perspective && !(self.fov > 0.0 && self.fov < 180.0) {
            return Err(Error::invalid(format!(
                "fov {}: a perspective field of view is between 0 and 180 degrees",
                self.fov
            )));
        }
        if let Some([w, h]) = self.size {
            if w == 0 || h == 0 || w > MAX_SIDE || h > MAX_SIDE {
                return Err(Error::invalid(format!(
                    "size {w},{h}: each side must be 1 to {MAX_SIDE} pixels"
                )));
            }
        }
        Ok(())
    }
}

/// The region rays are clipped to, in lattice index coordinates: `[0, n-1]` per axis.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Bounds {
    pub shape: [usize; 3],
}

impl Bounds {
    pub fn hi(&self) -> V3 {
        self.shape.map(|n| n.saturating_sub(1) as f64)
    }
    pub fn centre(&self) -> V3 {
        self.hi().map(|h| h / 2.0)
    }
    /// The 8 corners.
    pub fn corners(&self) -> [V3; 8] {
        let h = self.hi();
        std::array::from_fn(|i| [0, 1, 2].map(|a| if i >> a & 1 == 1 { h[a] } else { 0.0 }))
    }
}

/// A framed camera: the rays of every pixel, in camera space.
#[derive(Clone, Debug, PartialEq)]
pub struct Camera {
    pub width: usize,
    pub height: usize,
    /// Centre of pixel (0, 0) on the image plane through the field's centre
    /// (orthographic), or the eye (perspective).
    origin: V3,
    /// One pixel to the right / down on the image plane (orthographic), or the
    /// direction change per pixel (perspective).
    right: V3,
    down: V3,
    /// View direction (unit).
    pub dir: V3,
    perspective: bool,
    /// True when pixels sit on voxel centres with one voxel spacing.
    pub exact_grid: bool,
}

impl Camera {
    /// Frames `spec` on the box whose corners (in camera space) are `corners`.
    /// `shape` is the lattice's when camera space is its index space: only then
    /// can an axis view without a size be the exact voxel grid.
    pub fn frame(
        spec: &CameraSpec,
        corners: &[V3; 8],
        shape: Option<[usize; 3]>,
    ) -> Result<Camera> {
        spec.check()?;
        let (mut d, mut right, mut down) = base_frame(spec.view);
        let centre = mean(corners);
        let exact = spec.size.is_none()
            && spec.is_axis_aligned()
            && spec.zoom == 1.0
            && spec.projection == Projection::Ortho;
        // The exact grid: one pixel per voxel of the two other axes.
        if let (true, Some(shape)) = (exact, shape) {
            let (a, b) = other_axes(spec.view.axis);
            return Ok(Camera::ortho(
                centre,
                d,
                right,
                down,
                [shape[b], shape[a]],
                true,
            ));
        }
        rotate(&mut d, &mut right, &mut down, spec);
        let [w, h] = spec.size.unwrap_or([512, 512]);
        // The bounding sphere fits the picture's shorter side at zoom 1, so a
        // turntable neither crops nor changes scale between frames.
        let radius = corners
            .iter()
            .map(|c| norm(sub(*c, centre)))
            .fold(0.0, f64::max)
            .max(0.5);
        if spec.projection == Projection::Ortho {
            let s = 2.0 * radius / (w.min(h) as f64) / spec.zoom;
            return Ok(Camera::ortho(
                centre,
                d,
                scale(right, s),
                scale(down, s),
                [w, h],
                false,
            ));
        }
        let half_angle = spec.fov.to_radians() / 2.0;
        let eye = sub(centre, scale(d, radius / half_angle.sin()));
        let s = 2.0 * half_angle.tan() / spec.zoom / (w.min(h) as f64);
        Ok(Camera {
            width: w,
            height: h,
            origin: eye,
            right: scale(right, s),
            down: scale(down, s),
            dir: d,
            perspective: true,
            exact_grid: false,
        })
    }

    /// An orthographic picture of `size` (width, height) centred on `centre`,
    /// pixels `right` and `down` apart, looking along `dir`.
    fn ortho(
        centre: V3,
        dir: V3,
        right: V3,
        down: V3,
        [w, h]: [usize; 2],
        exact_grid: bool,
    ) -> Camera {
        let half = |n: usize| (n as f64 - 1.0) / 2.0;
        let origin = sub(sub(centre, scale(right, half(w))), scale(down, half(h)));
        Camera {
            width: w,
            height: h,
            origin,
            right,
            down,
            dir,
            perspective: false,
            exact_grid,
        }
    }

    /// Pixel spacing at the field's centre, in camera-space units.
    pub fn pixel_spacing(&self, corners: &[V3; 8]) -> f64 {
        if self.perspective {
            norm(sub(mean(corners), self.origin)) * norm(self.right)
        } else {
            norm(self.right)
        }
    }

    /// The ray through the centre of pixel (row `r`, column `c`): origin and
    /// unit direction (camera space). Orthographic rays start on the plane
    /// through the centre: their parameter may be negative.
    #[inline]
    pub fn ray(&self, r: usize, c: usize) -> (V3, V3, bool) {
        let (x, y) = (c as f64, r as f64);
        if self.perspective {
            let (w, h) = (
                (self.width as f64 - 1.0) / 2.0,
                (self.height as f64 - 1.0) / 2.0,
            );
            let d = add(
                self.dir,
                add(scale(self.right, x - w), scale(self.down, y - h)),
            );
            (self.origin, scale(d, 1.0 / norm(d)), true)
        } else {
            let o = add(self.origin, add(scale(self.right, x), scale(self.down, y)));
            (o, self.dir, false)
        }
    }
}

/// The two axes a view of `axis` shows: rows, columns.
pub fn other_axes(axis: usize) -> (usize, usize) {
    match axis {
        0 => (1, 2),
        1 => (0, 2),
        _ => (0, 1),
    }
}

fn unit(a: usize) -> V3 {
    let mut v = [0.0; 3];
    v[a] = 1.0;
    v
}

fn base_frame(view: AxisView) -> (V3, V3, V3) {
    let (a, b) = other_axes(view.axis);
    let d = unit(view.axis);
    let d = if view.negative { scale(d, -1.0) } else { d };
    (d, unit(b), unit(a))
}

/// Azimuth about `down`, elevation about the turned `right`, roll about the view.
fn rotate(d: &mut V3, right: &mut V3, down: &mut V3, spec: &CameraSpec) {
    let turn = |x: &mut V3, y: &mut V3, deg: f64| {
        if deg == 0.0 {
            return;
        }
        let (s, c) = (deg * PI / 180.0).sin_cos();
        let (nx, ny) = (
            add(scale(*x, c), scale(*y, s)),
            sub(scale(*y, c), scale(*x, s)),
        );
        // cos 90° is 6e-17, not 0: quarter turns give exact axis frames.
        let snap = |v: V3| v.map(|x| if x.abs() < 1e-15 { 0.0 } else { x });
        *x = snap(nx);
        *y = snap(ny);
    };
    turn(d, right, spec.azimuth);
    turn(d, down, spec.elevation);
    turn(right, down, spec.roll);
}

fn mean(c: &[V3; 8]) -> V3 {
    [0, 1, 2].map(|a| c.iter().map(|p| p[a]).sum::<f64>() / 8.0)
}

#[inline]
pub(crate) fn add(a: V3, b: V3) -> V3 {
    [a[0] + b[0], a[1] + b[1], a[2] + b[2]]
}
#[inline]
pub(crate) fn sub(a: V3, b: V3) -> V3 {
    [a[0] - b[0], a[1] - b[1], a[2] - b[2]]
}
#[inline]
pub(crate) fn scale(a: V3, s: f64) -> V3 {
    [a[0] * s, a[1] * s, a[2] * s]
}
#[inline]
pub(crate) fn dot(a: V3, b: V3) -> f64 {
    a[0] * b[0] + a[1] * b[1] + a[2] * b[2]
}
#[inline]
pub(crate) fn norm(a: V3) -> f64 {
    dot(a, a).sqrt()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn corners(shape: [usize; 3]) -> [V3; 8] {
        Bounds { shape }.corners()
    }

    #[test]
    fn axis_views_sit_on_voxel_centres() {
        let shape = [5, 6, 7];
        for (view, (h, w)) in [("axis0", (6, 7)), ("-axis1", (5, 7)), ("axis2", (5, 6))] {
            let spec = CameraSpec {
                view: view.parse().unwrap(),
                ..Default::default()
            };
            let cam = Camera::frame(&spec, &corners(shape), Some(shape)).unwrap();
            assert_eq!((cam.height, cam.width), (h, w));
            assert!(cam.exact_grid);
            let (o, _, _) = cam.ray(h - 1, w - 1);
            let (a, b) = other_axes(spec.view.axis);
            assert_eq!((o[a], o[b]), ((h - 1) as f64, (w - 1) as f64));
        }
    }

    #[test]
    fn orbit_turns_the_frame() {
        let shape = [9, 9, 9];
        let spec = CameraSpec {
            azimuth: 90.0,
            size: Some([9, 9]),
            ..Default::default()
        };
        let cam = Camera::frame(&spec, &corners(shape), Some(shape)).unwrap();
        // Azimuth 90 from axis0 looks along +axis2.
        assert!((cam.dir[2] - 1.0).abs() < 1e-12 && cam.dir[0].abs() < 1e-12);
        let bad = CameraSpec {
            size: Some([0, 4]),
            ..Default::default()
        };
        assert!(Camera::frame(&bad, &corners(shape), Some(shape)).is_err());
        let bad = CameraSpec {
            zoom: f64::NAN,
            ..Default::default()
        };
        assert!(Camera::frame(&bad, &corners(shape), Some(shape)).is_err());
        assert!("axis3".parse::<AxisView>().is_err());
    }
}
