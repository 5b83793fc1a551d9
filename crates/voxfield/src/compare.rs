//! Comparing two volumes of the same shape (sources or models, read plane by
//! plane): PSNR with the range max − min of the first (Neurcomp's and the
//! hash-grid paper's definition), RMSE, the largest absolute error, and SSIM as
//! scikit-image's `structural_similarity` computes it for 3-D data with its
//! defaults (7³ uniform window, K1 0.01, K2 0.03, sample covariance, the mean over
//! the windows that lie wholly inside), and the gradient MSE: the mean over
//! voxels and axes of the squared difference of the two volumes' gradients as
//! `numpy.gradient` takes them (central differences, one-sided at the faces),
//! which is what `compress --grad-loss` trades PSNR for. Memory: 7 planes of
//! window sums.

use voxfield_core::work::Watch;
use voxfield_core::{Error, Result, VolumeSource};

/// Comparison figures.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Comparison {
    pub psnr: f64,
    pub rmse: f64,
    pub max_abs: f64,
    /// NaN when an axis is shorter than the window (7).
    pub ssim: f64,
    /// The range of `a` the PSNR and SSIM use.
    pub range: f64,
    /// Mean over voxels and the 3 axes of (∂a − ∂b)², value units per voxel.
    pub gradient_mse: f64,
}

const WIN: usize = 7;

fn plane(src: &dyn VolumeSource, i: usize, buf: &mut Vec<f64>) -> Result<()> {
    let s = src.info().shape;
    buf.resize(s[1] * s[2], 0.0);
    src.read_box([i, 0, 0], [1, s[1], s[2]], buf)?;
    if let Some((m, q)) = src.info().value_scale {
        buf.iter_mut().for_each(|v| *v = *v * m + q);
    }
    Ok(())
}

/// 2-D sums over every 7×7 window wholly inside an (ny, nx) plane.
fn window_sums(v: &[f64], ny: usize, nx: usize) -> Vec<f64> {
    let (oy, ox) = (ny + 1 - WIN, nx + 1 - WIN);
    let mut rows = vec![0.0; ny * ox];
    for y in 0..ny {
        let r = &v[y * nx..(y + 1) * nx];
        let mut s: f64 = r[..WIN].iter().sum();
        rows[y * ox] = s;
        for x in 1..ox {
            s += r[x + WIN - 1] - r[x - 1];
            rows[y * ox + x] = s;
        }
    }
    let mut out = vec![0.0; oy * ox];
    for x in 0..ox {
        let mut s: f64 = (0..WIN).map(|y| rows[y * ox + x]).sum();
        out[x] = s;
        for y in 1..oy {
            s += rows[(y + WIN - 1) * ox + x] - rows[(y - 1) * ox + x];
            out[y * ox + x] = s;
        }
    }
    out
}

/// The most memory `compare` takes (it holds whole planes).
const MAX_BYTES: u128 = 4 << 30;

/// The phases a comparison reports to its [`Watch`] (planes of each pass).
const ERRORS: &str = "comparing (planes)";
const SSIM: &str = "SSIM (planes)";

/// Compares `b` against `a` (same 3-D shape); memory is O(plane), at most 4 GiB.
/// `watch` hears of each plane and can stop the comparison between planes.
pub fn compare(a: &dyn VolumeSource, b: &dyn VolumeSource, watch: &Watch) -> Result<Comparison> {
    let s = a.info().shape;
    if b.info().shape != s {
        return Err(Error::invalid(format!(
            "{} has shape {:?} and {} has {:?}: only volumes of the same shape compare",
            a.info().path.display(),
            s,
            b.info().path.display(),
            b.info().shape
        )));
    }
    // Memory: two planes plus the SSIM ring of 7 × 5 planes, in f64.
    let need = (s[1] as u128) * (s[2] as u128) * (2 + WIN as u128 * 5) * 8;
    if need > MAX_BYTES {
        return Err(Error::invalid(format!(
            "comparing {} and {}: planes of {}×{} voxels need {} MiB (limit {} MiB)",
            a.info().path.display(),
            b.info().path.display(),
            s[1],
            s[2],
            need >> 20,
            MAX_BYTES >> 20
        )));
    }
    let (mut pa, mut pb) = (vec![], vec![]);
    // First pass: the range of a, squared and largest errors, and the
    // gradients of the difference (gradients are linear: ∂a − ∂b = ∂(a − b)).
    let (mut lo, mut hi, mut sq, mut max_abs) = (f64::INFINITY, f64::NEG_INFINITY, 0.0, 0.0f64);
    let mut grads = GradientError::new(s);
    for i in 0..s[0] {
        watch.check()?;
        watch.report(ERRORS, i as u64, s[0] as u64);
        plane(a, i, &mut pa)?;
        plane(b, i, &mut pb)?;
        let mut d = grads.next_plane();
        for ((x, y), d) in pa.iter().zip(&pb).zip(d.iter_mut()) {
            lo = lo.min(*x);
            hi = hi.max(*x);
            *d = x - y;
            sq += *d * *d;
            max_abs = max_abs.max(d.abs());
        }
        grads.push(d);
    }
    let n = s.iter().product::<usize>() as f64;
    let range = hi - lo;
    let mse = sq / n;
    let ssim = if s.iter().all(|&k| k >= WIN) {
        ssim(a, b, range, watch)?
    } else {
        f64::NAN
    };
    Ok(Comparison {
        psnr: 10.0 * (range * range / mse).log10(),
        rmse: mse.sqrt(),
        max_abs,
        ssim,
        range,
        gradient_mse: grads.finish() / (3.0 * n),
    })
}

/// Squared gradients of a volume met plane by plane (numpy.gradient's
/// stencils along every axis), summed; holds the last three planes.
struct GradientError {
    shape: [usize; 3],
    /// Planes i−2, i−1 (the one whose axis-0 gradient is next), as pushed.
    ring: Vec<Vec<f64>>,
    pushed: usize,
    sum: f64,
}

impl GradientError {
    fn new(shape: [usize; 3]) -> Self {
        GradientError {
            shape,
            ring: vec![],
            pushed: 0,
            sum: 0.0,
        }
    }

    /// A buffer for the next plane (the oldest one's, reused).
    fn next_plane(&mut self) -> Vec<f64> {
        let mut v = if self.ring.len() == 3 {
            self.ring.remove(0)
        } else {
            vec![]
        };
        v.resize(self.shape[1] * self.shape[2], 0.0);
        v
    }

    fn push(&mut self, p: Vec<f64>) {
        self.ring.push(p);
        self.pushed += 1;
        // Plane i−1 has both neighbours now (or is the first, with one).
        if self.pushed >= 2 {
            self.add(self.pushed - 2);
        }
    }

    /// Adds the squared gradients of plane `i` (it and its neighbours are in the ring).
    fn add(&mut self, i: usize) {
        let [n0, n1, n2] = self.shape;
        let at = |k: usize| &self.ring[self.ring.len() - (self.pushed - k)];
        let p = at(i);
        let (before, after) = (i.saturating_sub(1), (i + 1).min(n0 - 1));
        if after > before {
            let (pb, pa) = (at(before), at(after));
            let h = (after - before) as f64;
            self.sum += pa
                .iter()
                .zip(pb)
                .map(|(x, y)| ((x - y) / h).powi(2))
                .sum::<f64>();
        }
        self.sum += along(p, n1, n2, n2) + along(p, n2, n1, 1);
    }

    fn finish(mut self) -> f64 {
        if self.pushed >= 1 {
            self.add(self.pushed - 1);
        }
        self.sum
    }
}

/// Σ of squared numpy.gradient differences of plane `p` along the axis of
/// `n` points `stride` apart (the other axis has `m` points).
fn along(p: &[f64], n: usize, m: usize, stride: usize) -> f64 {
    if n < 2 {
        return 0.0;
    }
    let other = if stride == 1 { n } else { 1 };
    let mut sum = 0.0;
    for r in 0..m {
        let base = r * other;
        for k in 0..n {
            let (lo, hi) = (k.saturating_sub(1), (k + 1).min(n - 1));
            let g = (p[base + hi * stride] - p[base + lo * stride]) / (hi - lo) as f64;
            sum += g * g;
        }
    }
    sum
}

fn ssim(a: &dyn VolumeSource, b: &dyn VolumeSource, range: f64, watch: &Watch) -> Result<f64> {
    let s = a.info().shape;
    let (ny, nx) = (s[1], s[2]);
    let np = (WIN * WIN * WIN) as f64;
    let cov_norm = np / (np - 1.0);
    let (c1, c2) = ((0.01 * range).powi(2), (0.03 * range).powi(2));
    let (mut pa, mut pb) = (vec![], vec![]);
    // Per plane: window sums of x, y, x², y², xy; a ring of the last 7 planes.
    let mut ring: Vec<[Vec<f64>; 5]> = Vec::with_capacity(WIN);
    let (mut total, mut count) = (0.0, 0u64);
    for i in 0..s[0] {
        watch.check()?;
        watch.report(SSIM, i as u64, s[0] as u64);
        plane(a, i, &mut pa)?;
        plane(b, i, &mut pb)?;
        let q = |f: &dyn Fn(f64, f64) -> f64| -> Vec<f64> {
            let v: Vec<f64> = pa.iter().zip(&pb).map(|(x, y)| f(*x, *y)).collect();
            window_sums(&v, ny, nx)
        };
        let sums = [
            q(&|x, _| x),
            q(&|_, y| y),
            q(&|x, _| x * x),
            q(&|_, y| y * y),
            q(&|x, y| x * y),
        ];
        if ring.len() == WIN {
            ring.remove(0);
        }
        ring.push(sums);
        if ring.len() < WIN {
            continue;
        }
        let m = ring[0][0].len();
        for k in 0..m {
            let t: [f64; 5] =
                [0, 1, 2, 3, 4].map(|q| ring.iter().map(|p| p[q][k]).sum::<f64>() / np);
            let (ux, uy, uxx, uyy, uxy) = (t[0], t[1], t[2], t[3], t[4]);
            let vx = cov_norm * (uxx - ux * ux);
            let vy = cov_norm * (uyy - uy * uy);
            let vxy = cov_norm * (uxy - ux * uy);
            let num = (2.0 * ux * uy + c1) * (2.0 * vxy + c2);
            let den = (ux * ux + uy * uy + c1) * (vx + vy + c2);
            total += num / den;
            count += 1;
        }
    }
    Ok(total / count as f64)
}
