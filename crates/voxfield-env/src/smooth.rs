//! Diffusion smoothing as the action of a matrix exponential, never a dense
//! kernel: `smooth(f) = expm(−t·A)·g`, with `t = σ²/2`.
//!
//! - [`Operator::Legacy060`] — neurospatial 0.6.0 exactly: edge weights
//!   `w_ij = exp(−d_ij²/2σ²)`, `L = D − W`; `transition`: `A = L`, `g = f`;
//!   `density` (0.6.0's default): `A = M⁻¹L`, `g = f / a` (M = diag of bin
//!   areas a), i.e. 0.6.0's kernel `expm(−tM⁻¹L)·M⁻¹`; `average`: `A = M⁻¹L`,
//!   `g = f`. Its bandwidth is not the physical σ (it depends on the bin size).
//! - [`Operator::FiniteVolume`] — the maintainers' later fix: `K = D − W` with
//!   `W_ij = (shared face measure)/d_ij` (axis neighbours only), `H = expm(−tM⁻¹K)`,
//!   so a point source spreads with variance σ² per axis whatever the bin size;
//!   `average`: `H·f` (row-stochastic, for rate maps), `density`: `H·M⁻¹f`,
//!   `transition`: `Hᵀf` (mass-conserving).
//!
//! The action uses a Chebyshev expansion on the spectrum's interval `[0, λ]`
//! (λ from Gershgorin: A is similar to a symmetric positive semi-definite
//! matrix): `exp(−tA) = e^{−α}[I₀(α) + 2Σ(−1)^k I_k(α) T_k(2A/λ − I)]`,
//! `α = tλ/2`, with the scaled Bessel values from Miller's backward recurrence,
//! summed until the terms fall below 1e-17. Each term is one sparse product over
//! all fields at once, rows in parallel.

use rayon::prelude::*;
use voxfield_core::{Error, Result};

use crate::{Environment, Layout};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Operator {
    Legacy060,
    FiniteVolume,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Density,
    Transition,
    Average,
}

impl std::str::FromStr for Mode {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "density" => Ok(Mode::Density),
            "transition" => Ok(Mode::Transition),
            "average" => Ok(Mode::Average),
            o => Err(Error::invalid(format!(
                "mode {o:?}: expected 'density', 'transition' or 'average'"
            ))),
        }
    }
}

impl std::str::FromStr for Operator {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "legacy" | "0.6.0" | "legacy060" => Ok(Operator::Legacy060),
            "finite_volume" | "finite-volume" | "physical" => Ok(Operator::FiniteVolume),
            o => Err(Error::invalid(format!(
                "operator {o:?}: expected 'legacy' (neurospatial 0.6.0) or 'finite_volume'"
            ))),
        }
    }
}

/// The symmetric part `K = D − W` of one operator at one bandwidth, with the
/// bin areas: everything a smoothing needs.
#[derive(Debug)]
pub struct Generator {
    pub op: Operator,
    pub t: f64,
    /// Off-diagonal weights in the graph's row layout.
    pub w: Vec<f64>,
    /// Weighted degrees (the diagonal of K).
    pub deg: Vec<f64>,
    pub area: Vec<f64>,
}

impl Generator {
    pub fn new(env: &Environment, op: Operator, sigma: f64) -> Generator {
        let g = &env.graph;
        let area = env.bin_sizes();
        let w: Vec<f64> = match op {
            Operator::Legacy060 => g
                .dist
                .iter()
                .map(|d| (-(d * d) / (2.0 * sigma * sigma)).exp())
                .collect(),
            Operator::FiniteVolume => (0..env.n_bins())
                .flat_map(|b| {
                    g.edges(b)
                        .map(|(v, d)| face(env, b, v) / d)
                        .collect::<Vec<_>>()
                })
                .collect(),
        };
        let deg = (0..env.n_bins())
            .map(|b| w[g.offsets[b]..g.offsets[b + 1]].iter().sum())
            .collect();
        Generator {
            op,
            t: sigma * sigma / 2.0,
            w,
            deg,
            area,
        }
    }

    /// α = t·λ_max/2: a smoothing takes about α + 12√α + 40 Chebyshev terms,
    /// each one pass over the graph (λ_max bounds every action's spectrum).
    pub fn chebyshev_alpha(&self) -> f64 {
        let lambda = (0..self.deg.len())
            .map(|b| 2.0 * self.deg[b] * (1.0f64).max(1.0 / self.area[b]))
            .fold(0.0, f64::max);
        self.t * lambda / 2.0
    }
}

/// The face two neighbouring bins share: on a grid the product of the other
/// axes' widths for axis neighbours (1 in 1-D) and 0 for diagonal ones; on a
/// hexagonal lattice one side of the hexagon; on a track 1.
fn face(env: &Environment, u: usize, v: usize) -> f64 {
    let grid = match &env.layout {
        Layout::Grid(g) => g,
        Layout::Hex(h) => return h.radius,
        // A track's bins meet at a point: the 1-D face measure.
        Layout::Track(_) => return 1.0,
    };
    let a = grid.unflat(env.bin_to_flat[u]);
    let bv = grid.unflat(env.bin_to_flat[v]);
    let differ: Vec<usize> = (0..a.len()).filter(|&d| a[d] != bv[d]).collect();
    if differ.len() != 1 {
        return 0.0;
    }
    (0..a.len())
        .filter(|&d| d != differ[0])
        .map(|d| grid.edges[d][a[d] + 1] - grid.edges[d][a[d]])
        .product()
}

/// Rows (or values) per parallel task of a sparse product or update.
const PAR_ROWS: usize = 8192;

/// Which matrix the exponential acts with, given a generator: `y = A x`.
#[derive(Clone, Copy)]
enum Action {
    /// K x
    K,
    /// M⁻¹ K x
    MinvK,
    /// K M⁻¹ x
    KMinv,
}

impl Environment {
    /// Smooths `fields` (n_bins × k, row-major: bin-major, k fields per bin)
    /// with bandwidth σ: one exponential action for all k fields.
    pub fn smooth(
        &self,
        fields: &[f64],
        k: usize,
        sigma: f64,
        mode: Mode,
        op: Operator,
    ) -> Result<Vec<f64>> {
        let n = self.n_bins();
        if k == 0 || fields.len() != n * k {
            return Err(Error::invalid(format!(
                "field of {} values for {n} bins (give n_bins values, or n_bins × k)",
                fields.len()
            )));
        }
        if let Some(i) = fields.iter().position(|v| !v.is_finite()) {
            return Err(Error::invalid(format!(
                "field value {} at bin {} is not finite",
                fields[i],
                i / k
            )));
        }
        if let Some(kernel) = self.kernels.get((sigma.to_bits(), mode, op)) {
            // A cached dense kernel: one product, the cheapest exact operator now.
            return Ok(crate::kernels::apply(&kernel, fields, n, k));
        }
        self.smooth_by_action(fields, k, sigma, mode, op)
    }

    /// `smooth` as an exponential action (matrix-free), whatever is cached.
    fn smooth_by_action(
        &self,
        fields: &[f64],
        k: usize,
        sigma: f64,
        mode: Mode,
        op: Operator,
    ) -> Result<Vec<f64>> {
        let g = self.generator(op, sigma)?;
        let (action, scale_by_area) = match (op, mode) {
            (Operator::Legacy060, Mode::Transition) => (Action::K, false),
            (_, Mode::Density) => (Action::MinvK, true),
            (_, Mode::Average) => (Action::MinvK, false),
            (Operator::FiniteVolume, Mode::Transition) => (Action::KMinv, false),
        };
        let mut x = fields.to_vec();
        if scale_by_area {
            for (b, row) in x.chunks_exact_mut(k).enumerate() {
                row.iter_mut().for_each(|v| *v /= g.area[b]);
            }
        }
        Ok(self.expm_action(&g, action, &x, k))
    }

    /// The dense kernel (n × n, row-major) whose product with a field is
    /// `smooth`: built column by column from the same action (or the cached
    /// one). With `cache`, it is kept (within [`crate::KERNEL_CACHE_BYTES`]) and
    /// later `smooth` calls at this (bandwidth, mode, operator) use it. Refused
    /// above `max_bins` (n² × 8 bytes).
    pub fn compute_kernel(
        &self,
        sigma: f64,
        mode: Mode,
        op: Operator,
        max_bins: usize,
        cache: bool,
    ) -> Result<std::sync::Arc<Vec<f64>>> {
        let n = self.n_bins();
        if n > max_bins {
            return Err(Error::invalid(format!(
                "a dense kernel of {n} bins needs {:.1} GiB ({n}² × 8 bytes); the limit is {max_bins} bins — \
                 use smooth(), which never builds it",
                (n * n * 8) as f64 / (1u64 << 30) as f64
            )));
        }
        let key = (sigma.to_bits(), mode, op);
        if let Some(kernel) = self.kernels.get(key) {
            return Ok(kernel);
        }
        let kernel = std::sync::Arc::new(self.build_kernel(sigma, mode, op)?);
        if cache {
            self.kernels.insert(key, kernel.clone());
        }
        Ok(kernel)
    }

    fn build_kernel(&self, sigma: f64, mode: Mode, op: Operator) -> Result<Vec<f64>> {
        let n = self.n_bins();
        // Column j of K is smooth(e_j): unit vectors smoothed KERNEL_BLOCK at a
        // time, so the work space is O(n · block), not a few more n² copies.
        const KERNEL_BLOCK: usize = 256;
        let mut kernel = vec![0.0; n * n];
        for j0 in (0..n).step_by(KERNEL_BLOCK) {
            let k = KERNEL_BLOCK.min(n - j0);
            let mut eye = vec![0.0; n * k];
            for c in 0..k {
                eye[(j0 + c) * k + c] = 1.0;
            }
            let cols = self.smooth_by_action(&eye, k, sigma, mode, op)?;
            for i in 0..n {
                kernel[i * n + j0..i * n + j0 + k].copy_from_slice(&cols[i * k..(i + 1) * k]);
            }
        }
        Ok(kernel)
    }

    /// exp(−t·A)·x for the generator's A (see [`Action`]), k fields per row.
    fn expm_action(&self, g: &Generator, action: Action, x: &[f64], k: usize) -> Vec<f64> {
        let gr = &self.graph;
        // Gershgorin: every eigenvalue lies in [0, max 2·deg/a] (or 2·deg).
        let lambda = (0..self.n_bins())
            .map(|b| match action {
                Action::K => 2.0 * g.deg[b],
                _ => 2.0 * g.deg[b] / g.area[b],
            })
            .fold(0.0, f64::max);
        if lambda == 0.0 || g.t == 0.0 {
            return x.to_vec();
        }
        let alpha = g.t * lambda / 2.0;
        let coef = scaled_bessel(alpha);
        // B = (2/λ)A − I applied to v, into out.
        let apply_b = |v: &[f64], out: &mut [f64]| {
            let pre: Vec<f64>;
            let v_in: &[f64] = match action {
                Action::KMinv => {
                    pre = v
                        .chunks_exact(k)
                        .enumerate()
                        .flat_map(|(b, r)| r.iter().map(move |x| x / g.area[b]))
                        .collect();
                    &pre
                }
                _ => v,
            };
            // (Small environments stay on one thread: a term is microseconds.)
            out.par_chunks_mut(k)
                .with_min_len(PAR_ROWS)
                .enumerate()
                .for_each(|(b, o)| {
                    let r = gr.offsets[b]..gr.offsets[b + 1];
                    let own = &v_in[b * k..(b + 1) * k];
                    for j in 0..k {
                        o[j] = g.deg[b] * own[j];
                    }
                    for (&nb, &w) in gr.nbrs[r.clone()].iter().zip(&g.w[r]) {
                        let other = &v_in[nb as usize * k..(nb as usize + 1) * k];
                        for j in 0..k {
                            o[j] -= w * other[j];
                        }
                    }
                    let s = match action {
                        Action::MinvK => 2.0 / (lambda * g.area[b]),
                        _ => 2.0 / lambda,
                    };
                    for j in 0..k {
                        o[j] = s * o[j] - v[b * k + j];
                    }
                });
        };
        // y = c0·T0 x + Σ c_k (−1)^k·2·T_k x
        let mut y: Vec<f64> = x.iter().map(|v| coef[0] * v).collect();
        let mut prev = x.to_vec();
        let mut cur = vec![0.0; x.len()];
        apply_b(&prev, &mut cur);
        let mut next = vec![0.0; x.len()];
        for (m, &c) in coef.iter().enumerate().skip(1) {
            let s = if m % 2 == 1 { -2.0 * c } else { 2.0 * c };
            y.par_iter_mut()
                .with_min_len(PAR_ROWS)
                .zip(&cur)
                .for_each(|(a, b)| *a += s * b);
            if m + 1 == coef.len() {
                break;
            }
            apply_b(&cur, &mut next);
            next.par_iter_mut()
                .with_min_len(PAR_ROWS)
                .zip(&prev)
                .for_each(|(a, p)| *a = 2.0 * *a - p);
            std::mem::swap(&mut prev, &mut cur);
            std::mem::swap(&mut cur, &mut next);
        }
        y
    }
}

/// `e^{−α} I_k(α)` for k = 0.. until the values fall below 1e-17 (past k ≈ α),
/// by Miller's backward recurrence `I_{k−1} = (2k/α) I_k + I_{k+1}`, normalised
/// by `Σ_k e^{−α} I_k(α) = 1` over all integers k.
pub fn scaled_bessel(alpha: f64) -> Vec<f64> {
    let top = (alpha + 12.0 * alpha.sqrt() + 40.0).ceil() as usize;
    let mut v = vec![0.0f64; top + 2];
    v[top] = 1e-300;
    for k in (1..=top).rev() {
        v[k - 1] = (2.0 * k as f64 / alpha) * v[k] + v[k + 1];
        if v[k - 1] > 1e250 {
            v.iter_mut().for_each(|x| *x *= 1e-250);
        }
    }
    let total = v[0] + 2.0 * v[1..].iter().sum::<f64>();
    let mut out: Vec<f64> = v[..=top].iter().map(|x| x / total).collect();
    let last = out
        .iter()
        .enumerate()
        .rposition(|(k, &c)| k as f64 <= alpha || c > 1e-17)
        .unwrap_or(0);
    out.truncate(last + 1);
    out
}
