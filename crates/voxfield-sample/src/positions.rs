//! Coordinate generators: a request is described by a few numbers and its
//! positions are produced block by block, never stored whole.

use voxfield_core::{Error, Result};

/// An indexed set of 3-D positions that can be produced in blocks.
pub trait Positions: Sync {
    fn len(&self) -> usize;
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Writes positions `start .. start + buf.len()` into `buf`.
    fn fill(&self, start: usize, buf: &mut [[f64; 3]]);
}

/// A borrowed (N, 3) list of points, f32 or f64, row-major.
pub struct PointList<'a, T> {
    xyz: &'a [T],
}

impl<'a, T: Copy + Into<f64> + Sync> PointList<'a, T> {
    /// `xyz` holds N rows of 3 coordinates.
    pub fn new(xyz: &'a [T]) -> Result<Self> {
        if !xyz.len().is_multiple_of(3) {
            return Err(Error::invalid(format!(
                "point list has {} values, not a multiple of 3",
                xyz.len()
            )));
        }
        Ok(Self { xyz })
    }
}

impl<T: Copy + Into<f64> + Sync> Positions for PointList<'_, T> {
    fn len(&self) -> usize {
        self.xyz.len() / 3
    }
    fn fill(&self, start: usize, buf: &mut [[f64; 3]]) {
        let src = &self.xyz[3 * start..3 * (start + buf.len())];
        for (b, s) in buf.iter_mut().zip(src.chunks_exact(3)) {
            *b = [s[0].into(), s[1].into(), s[2].into()];
        }
    }
}

/// An oblique plane: position (i, j) is `origin + i·u + j·v`, for `i < nu`, `j < nv`.
/// Output is row-major with shape `(nv, nu)` (rows follow `v`, columns follow `u`).
#[derive(Clone, Copy, Debug)]
pub struct Plane {
    pub origin: [f64; 3],
    pub u: [f64; 3],
    pub v: [f64; 3],
    pub nu: usize,
    pub nv: usize,
    /// Index (i, j) of pixel (0, 0) in the plane this one is a tile of ((0, 0) for
    /// a whole plane), so tiles sample exactly the whole plane's positions.
    pub first: [usize; 2],
}

impl Plane {
    pub fn new(origin: [f64; 3], u: [f64; 3], v: [f64; 3], nu: usize, nv: usize) -> Result<Self> {
        let all = origin.iter().chain(&u).chain(&v);
        if all.clone().any(|x| !x.is_finite()) {
            return Err(Error::invalid("plane origin, u and v must be finite"));
        }
        if nu == 0 || nv == 0 {
            return Err(Error::invalid(format!("plane size {nu}x{nv} is empty")));
        }
        let p = Plane {
            origin,
            u,
            v,
            nu,
            nv,
            first: [0, 0],
        };
        if p.unit_normal().is_none() {
            return Err(Error::invalid(format!(
                "plane step vectors u={u:?} and v={v:?} are parallel or zero"
            )));
        }
        Ok(p)
    }

    /// The `nu` × `nv` tile of this plane whose pixel (0, 0) is its pixel (i0, j0).
    pub fn tile(&self, i0: usize, j0: usize, nu: usize, nv: usize) -> Plane {
        Plane {
            nu,
            nv,
            first: [self.first[0] + i0, self.first[1] + j0],
            ..*self
        }
    }

    /// Row `j` of this plane from column `i` on, shifted by `shift` (a slab's
    /// depth along the normal): the same positions as [`Plane::at`].
    pub fn row(
        &self,
        i: usize,
        j: usize,
        shift: Option<[f64; 3]>,
    ) -> voxfield_core::field::PlaneRow {
        voxfield_core::field::PlaneRow {
            origin: self.origin,
            u: self.u,
            v: self.v,
            i0: i + self.first[0],
            j: j + self.first[1],
            shift,
        }
    }

    #[inline]
    pub fn at(&self, i: usize, j: usize) -> [f64; 3] {
        let (i, j) = ((i + self.first[0]) as f64, (j + self.first[1]) as f64);
        [0, 1, 2].map(|a| self.origin[a] + i * self.u[a] + j * self.v[a])
    }

    /// Unit vector along `u × v` (None when u and v are parallel).
    pub fn unit_normal(&self) -> Option<[f64; 3]> {
        let (u, v) = (self.u, self.v);
        let n = [
            u[1] * v[2] - u[2] * v[1],
            u[2] * v[0] - u[0] * v[2],
            u[0] * v[1] - u[1] * v[0],
        ];
        let len = (n[0] * n[0] + n[1] * n[1] + n[2] * n[2]).sqrt();
        let scale =
            (u.iter().map(|x| x * x).sum::<f64>() * v.iter().map(|x| x * x).sum::<f64>()).sqrt();
        (len > 1e-12 * scale && len > 0.0).then(|| n.map(|x| x / len))
    }

    /// Offsets along the unit normal for a slab of `thickness`, sampled every `step`
    /// and centred on the plane: `floor(thickness/step) + 1` samples.
    pub fn slab_offsets(thickness: f64, step: f64) -> Result<Vec<f64>> {
        if !(thickness.is_finite() && thickness >= 0.0) {
            return Err(Error::invalid(format!(
                "slab thickness {thickness} must be finite and ≥ 0"
            )));
        }
        if !(step.is_finite() && step > 0.0) {
            return Err(Error::invalid(format!(
                "slab step {step} must be finite and > 0"
            )));
        }
        let n = (thickness / step + 1e-9).floor() as usize + 1;
        if n > 1 << 20 {
            return Err(Error::invalid(format!(
                "slab of {n} samples is too thick for step {step}"
            )));
        }
        let mid = (n - 1) as f64 / 2.0;
        Ok((0..n).map(|k| (k as f64 - mid) * step).collect())
    }
}

impl Positions for Plane {
    fn len(&self) -> usize {
        self.nu * self.nv
    }
    fn fill(&self, start: usize, buf: &mut [[f64; 3]]) {
        for (n, b) in buf.iter_mut().enumerate() {
            let p = start + n;
            *b = self.at(p % self.nu, p / self.nu);
        }
    }
}

/// The outer product of three coordinate vectors, in C order: position
/// `(a, b, c)` is `(x[a], y[b], z[c])` and the output has shape `(len x, len y, len z)`.
pub struct Grid<'a> {
    pub axes: [&'a [f64]; 3],
}

impl Positions for Grid<'_> {
    fn len(&self) -> usize {
        self.axes.iter().map(|a| a.len()).product()
    }
    fn fill(&self, start: usize, buf: &mut [[f64; 3]]) {
        let [x, y, z] = self.axes;
        let (ny, nz) = (y.len(), z.len());
        for (n, b) in buf.iter_mut().enumerate() {
            let p = start + n;
            *b = [x[p / (ny * nz)], y[(p / nz) % ny], z[p % nz]];
        }
    }
}
