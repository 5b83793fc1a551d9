//! One cell's local interpolant s(x) = Σ λ_j φ(‖u − u_j‖) + p(u), in local
//! coordinates u = (x − centre)/scale so every cell's system is well scaled.

use faer::Mat;
use voxfield_core::{Error, Result};

use crate::blend::CellBox;
pub use crate::buckets::Buckets;
use crate::kernel::Scaled;
pub use crate::solve::SolveSpec;
use crate::solve::{solve_dense, solve_sparse};
use crate::sums::dense_sum;

/// Values beyond this magnitude can overflow a cell's solve (its sums of
/// products of values); a failed solve with such values names that cause.
const HUGE_VALUE: f64 = 1e150;

/// Number of polynomial terms of `degree` in `dim` dimensions (−1 → 0, 0 → 1, 1 → dim+1).
pub fn poly_terms(dim: usize, degree: i32) -> usize {
    match degree {
        d if d < 0 => 0,
        0 => 1,
        _ => dim + 1,
    }
}

/// A solved cell: where it blends, its centres and coefficients.
#[derive(Clone, Debug)]
pub struct Cell {
    pub bounds: CellBox,
    pub centre: [f64; 3],
    pub scale: f64,
    /// The kernel in local units.
    pub kernel: Scaled,
    /// Centres in local coordinates, axis-major (`dim` rows of `len` values).
    pub centres: Vec<f64>,
    /// RBF coefficients, channel-major (`channels` rows of `len`).
    pub lambda: Vec<f64>,
    /// Polynomial coefficients, channel-major (`channels` rows of `terms`).
    pub poly: Vec<f64>,
    pub terms: usize,
    /// Spatial hash of the centres for compact kernels (bucket size = support).
    pub buckets: Option<Buckets>,
    /// The box was enlarged beyond the overlap to hold enough points.
    pub grown: bool,
}

impl Cell {
    /// Number of centres.
    pub fn len(&self, dim: usize) -> usize {
        self.centres.len() / dim
    }

    /// Solves the cell's system for `points` (world, n×dim) and `values`
    /// (n×channels). `index` names the cell in errors.
    pub fn solve(
        index: usize,
        bounds: CellBox,
        spec: &SolveSpec,
        points: &[f64],
        values: &[f64],
    ) -> Result<Cell> {
        let dim = spec.dim;
        let m = points.len() / dim;
        let c = spec.channels;
        let mut centre = [0.0; 3];
        for a in 0..dim {
            centre[a] = 0.5 * (bounds.lo[a] + bounds.hi[a]);
        }
        let scale = bounds.scale(dim);
        let mut centres = vec![0.0; dim * m];
        for i in 0..m {
            for a in 0..dim {
                centres[a * m + i] = (points[i * dim + a] - centre[a]) / scale;
            }
        }
        let terms = spec.terms;
        // Right-hand sides: the values, then zeros for the polynomial conditions.
        let mut rhs = Mat::<f64>::zeros(m + terms, c);
        for i in 0..m {
            for k in 0..c {
                rhs[(i, k)] = values[i * c + k];
            }
        }
        let kernel = spec.kernel;
        let sol = if kernel.kernel.is_compact() {
            solve_sparse(dim, m, &centres, spec, rhs)
        } else {
            solve_dense(dim, m, &centres, spec, rhs)
        }
        .ok_or_else(|| {
            // Huge values overflow the factorisation before any degeneracy shows.
            let vmax = values.iter().fold(0.0f64, |a, v| a.max(v.abs()));
            if vmax > HUGE_VALUE {
                Error::invalid(format!(
                    "cell {index} ({m} points): the RBF system overflowed: values up to {vmax:e} \
                     are too large for it; scale the values (the fit is linear in them) and the \
                     results back"
                ))
            } else {
                Error::invalid(format!(
                    "cell {index} ({m} points): the RBF system is singular (duplicate or \
                     degenerate points, or too few for the polynomial); try smoothing > 0"
                ))
            }
        })?;
        let mut lambda = vec![0.0; c * m];
        let mut poly = vec![0.0; c * terms];
        for k in 0..c {
            for i in 0..m {
                lambda[k * m + i] = sol[(i, k)];
            }
            for t in 0..terms {
                poly[k * terms + t] = sol[(m + t, k)];
            }
        }
        let buckets = kernel
            .kernel
            .is_compact()
            .then(|| Buckets::new(dim, m, &centres, 1.0 / kernel.shape));
        Ok(Cell {
            bounds,
            centre,
            scale,
            kernel,
            centres,
            lambda,
            poly,
            terms,
            buckets,
            grown: false,
        })
    }

    /// Local coordinates of a world point.
    #[inline(always)]
    pub fn local(&self, dim: usize, x: &[f64]) -> [f64; 3] {
        let mut u = [0.0; 3];
        for a in 0..dim {
            u[a] = (x[a] - self.centre[a]) / self.scale;
        }
        u
    }

    /// Adds s(x) for every channel to `out`, times `w`.
    #[inline]
    pub fn eval_into(&self, dim: usize, x: &[f64], w: f64, out: &mut [f64]) {
        let u = self.local(dim, x);
        let m = self.centres.len() / dim;
        for (k, o) in out.iter_mut().enumerate() {
            let lam = &self.lambda[k * m..(k + 1) * m];
            let mut s = match &self.buckets {
                Some(b) => b.sum(dim, &self.centres, &u, |j, r2| {
                    lam[j] * self.kernel.phi_r2(r2)
                }),
                None => dense_sum(dim, &self.centres, lam, &u, self.kernel),
            };
            if self.terms > 0 {
                let p = &self.poly[k * self.terms..(k + 1) * self.terms];
                s += p[0];
                for a in 0..dim.min(self.terms - 1) {
                    s += p[1 + a] * u[a];
                }
            }
            *o += w * s;
        }
    }

    /// s(x) and its gradient (world units) for one channel.
    pub fn eval_grad(&self, dim: usize, x: &[f64], k: usize) -> (f64, [f64; 3]) {
        let u = self.local(dim, x);
        let m = self.centres.len() / dim;
        let lam = &self.lambda[k * m..(k + 1) * m];
        let mut s = 0.0;
        let mut g = [0.0; 3];
        let mut add = |j: usize, r2: f64| {
            s += lam[j] * self.kernel.phi_r2(r2);
            let d = lam[j] * self.kernel.dphi_over_r(r2);
            for a in 0..dim {
                g[a] += d * (u[a] - self.centres[a * m + j]);
            }
            0.0
        };
        match &self.buckets {
            Some(b) => {
                b.sum(dim, &self.centres, &u, &mut add);
            }
            None => {
                for j in 0..m {
                    let mut r2 = 0.0;
                    for a in 0..dim {
                        let d = u[a] - self.centres[a * m + j];
                        r2 += d * d;
                    }
                    add(j, r2);
                }
            }
        }
        if self.terms > 0 {
            let p = &self.poly[k * self.terms..(k + 1) * self.terms];
            s += p[0];
            for a in 0..dim.min(self.terms - 1) {
                s += p[1 + a] * u[a];
                g[a] += p[1 + a];
            }
        }
        for v in &mut g[..dim] {
            *v /= self.scale;
        }
        (s, g)
    }
}
