//! Fitting: validation, duplicate handling, subdivision into cells, parallel
//! per-cell solves.

use std::sync::atomic::{AtomicUsize, Ordering};

use faer::{Mat, Side};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use voxfield_core::{Error, Result};

use crate::blend::{CellBox, DomainGrid, Ramp};
use crate::cell::{poly_terms, Cell, SolveSpec};
use crate::kernel::{Kernel, Scaled};

/// What to do with points that share exactly the same coordinates.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Duplicates {
    /// Keep one point with the mean of their values (reported in the model info).
    Merge,
    /// Refuse the input, naming the first pair.
    Reject,
}

/// How to fit. `Default` is thin-plate spline + linear polynomial, ~200 points
/// per domain, overlap 0.25, smoothstep blending.
#[derive(Clone, Debug)]
pub struct FitOptions {
    pub kernel: Kernel,
    /// Polynomial degree −1 (none), 0 or 1; `None` = the kernel's default (1).
    pub degree: Option<i32>,
    /// Added to the diagonal (scipy's `smoothing`); 0 interpolates.
    pub smoothing: f64,
    /// ε for gaussian and mq, the support radius α for wendland (world units);
    /// `None` = from the point density.
    pub shape: Option<f64>,
    /// Target points per domain; `None` = 200 for dense kernels (300 is ~1.6× slower
    /// and ~1.6× more accurate on smooth data), 3000 for wendland.
    pub points_per_cell: Option<usize>,
    /// Overlap δ as a fraction of the domain size, in (0, 0.5].
    pub overlap: f64,
    pub ramp: Ramp,
    pub duplicates: Duplicates,
    /// Cells holding fewer points grow until they hold this many; `None` = max(20, 3·(polynomial terms)).
    pub min_points: Option<usize>,
    /// Largest cell solved; a domain whose cell holds more (clustered points) is
    /// split in halves until its cells fit. `None` = 8 × the expected cell size,
    /// 1000 to 8192 (a 512 MiB matrix), for dense kernels; 200,000 for wendland.
    pub max_points: Option<usize>,
}

impl Default for FitOptions {
    fn default() -> Self {
        FitOptions {
            kernel: Kernel::ThinPlate,
            degree: None,
            smoothing: 0.0,
            shape: None,
            points_per_cell: None,
            overlap: 0.25,
            ramp: Ramp::Smooth,
            duplicates: Duplicates::Merge,
            min_points: None,
            max_points: None,
        }
    }
}

/// Everything about a fitted model except its cells (stored as the JSON header
/// of a `.vxr` file).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ModelInfo {
    pub dim: usize,
    pub channels: usize,
    pub kernel: String,
    pub degree: i32,
    pub smoothing: f64,
    /// ε (gaussian, mq) or support radius (wendland) in world units; null otherwise.
    pub shape: Option<f64>,
    pub points_per_cell: usize,
    pub overlap: f64,
    pub ramp: Ramp,
    pub input_points: usize,
    pub points: usize,
    pub merged_duplicates: usize,
    pub bbox_lo: Vec<f64>,
    pub bbox_hi: Vec<f64>,
    pub value_min: Vec<f64>,
    pub value_max: Vec<f64>,
    pub grid: DomainGrid,
    pub cells: usize,
    /// Σ points over cells (each point counts once per cell holding it).
    pub cell_points: usize,
    pub largest_cell: usize,
    pub grown_cells: usize,
}

/// A fitted subdivided RBF interpolant.
#[derive(Clone, Debug)]
pub struct RbfModel {
    pub info: ModelInfo,
    pub kernel: Kernel,
    pub cells: Vec<Cell>,
    /// Per domain, the cells whose box meets it (CSR over `grid` domain ids).
    pub(crate) cover_start: Vec<u32>,
    pub(crate) cover: Vec<u32>,
}

/// Fits `values` (n × channels, row-major) at `points` (n × dim, row-major).
/// `progress(done, total)` is called as cells finish.
pub fn fit(
    points: &[f64],
    dim: usize,
    values: &[f64],
    channels: usize,
    opts: &FitOptions,
    progress: &(dyn Fn(usize, usize) + Sync),
) -> Result<RbfModel> {
    let kernel = opts.kernel;
    kernel.check_dim(dim)?;
    if channels == 0 {
        return Err(Error::invalid("values need at least one channel"));
    }
    if !points.len().is_multiple_of(dim) {
        return Err(Error::invalid(format!(
            "{} coordinates do not form {dim}-D points",
            points.len()
        )));
    }
    let n_in = points.len() / dim;
    if values.len() != n_in * channels {
        return Err(Error::invalid(format!(
            "{n_in} points but {} values (expected {} for {channels} channel(s))",
            values.len(),
            n_in * channels
        )));
    }
    if n_in == 0 {
        return Err(Error::invalid("no points to fit"));
    }
    check_finite(points, dim, "coordinate")?;
    check_finite(values, channels, "value")?;
    let degree = opts.degree.unwrap_or(kernel.default_degree());
    if !(-1..=1).contains(&degree) {
        return Err(Error::invalid(format!(
            "degree must be -1, 0 or 1, not {degree}"
        )));
    }
    if degree < kernel.min_degree() {
        return Err(Error::invalid(format!(
            "kernel {kernel} is only conditionally positive definite: it needs degree >= {}, not {degree}",
            kernel.min_degree()
        )));
    }
    if !(opts.overlap > 0.0 && opts.overlap <= 0.5) {
        return Err(Error::invalid(format!(
            "overlap must be in (0, 0.5] (a fraction of the domain size), not {}",
            opts.overlap
        )));
    }
    if !(opts.smoothing >= 0.0 && opts.smoothing.is_finite()) {
        return Err(Error::invalid(format!(
            "smoothing must be finite and >= 0, not {}",
            opts.smoothing
        )));
    }
    if let Some(s) = opts.shape {
        if !(s > 0.0 && s.is_finite()) {
            return Err(Error::invalid(format!(
                "shape parameter must be finite and > 0, not {s}"
            )));
        }
    }
    let terms = poly_terms(dim, degree);
    if let Some(p) = opts.points_per_cell {
        if p <= terms {
            return Err(Error::invalid(format!(
                "points per cell must exceed the {terms} polynomial terms of degree {degree} in {dim}-D, not {p}"
            )));
        }
    }
    let (points, values, merged) = dedupe(points, dim, values, channels, opts.duplicates)?;
    let n = points.len() / dim;
    if n < terms.max(1) {
        return Err(Error::invalid(format!(
            "{n} distinct point(s) are fewer than kernel {kernel} with degree {degree} needs in {dim}-D ({})",
            terms.max(1)
        )));
    }
    check_spread(&points, dim)?;

    let mut lo = [0.0; 3];
    let mut hi = [0.0; 3];
    for a in 0..dim {
        lo[a] = f64::INFINITY;
        hi[a] = f64::NEG_INFINITY;
    }
    for p in points.chunks_exact(dim) {
        for a in 0..dim {
            lo[a] = lo[a].min(p[a]);
            hi[a] = hi[a].max(p[a]);
        }
    }
    let ppc = opts
        .points_per_cell
        .unwrap_or(if kernel.is_compact() { 3000 } else { 200 })
        .max(1);
    let grid = DomainGrid::new(dim, lo, hi, n.div_ceil(ppc));
    let (start, order) = bin(&grid, &points, dim);
    let occupied: Vec<usize> = (0..grid.len())
        .filter(|&g| start[g + 1] > start[g])
        .collect();

    let ext: Vec<f64> = (0..dim).map(|a| hi[a] - lo[a]).collect();
    let spacing = crate::blend::geometric_side(&ext, n as f64);
    let shape = kernel.has_shape().then(|| {
        opts.shape.unwrap_or_else(|| {
            if kernel.is_compact() {
                // Support holding ~K neighbours on average: α = (K·vol / (V_d·n))^(1/d).
                let (k, vd) = match dim {
                    1 => (10.0, 2.0),
                    2 => (30.0, std::f64::consts::PI),
                    _ => (50.0, 4.0 / 3.0 * std::f64::consts::PI),
                };
                crate::blend::geometric_side(&ext, vd * n as f64 / k)
            } else {
                // ε·h ≈ 0.15: accurate and still well conditioned in cells of a few
                // hundred points (ε·h = 1 loses accuracy, ε·h = 0.03 conditioning).
                0.2 / spacing
            }
        })
    });
    let min_points = opts.min_points.unwrap_or((3 * terms).max(20)).min(n);
    let expected_cell = ppc as f64 * (1.0 + 2.0 * opts.overlap).powi(dim as i32);
    let max_points = opts.max_points.unwrap_or(if kernel.is_compact() {
        200_000
    } else {
        ((8.0 * expected_cell) as usize).clamp(1000, 8192)
    });

    let done = AtomicUsize::new(0);
    let total = occupied.len();
    progress(0, total);
    let ctx = Ctx {
        grid: &grid,
        start: &start,
        order: &order,
        points: &points,
        values: &values,
        channels,
        overlap: opts.overlap,
        min_points,
        part_points: (expected_cell as usize).clamp(min_points, max_points / 2),
        max_points,
        bbox: (lo, hi),
        kernel,
        shape,
        terms,
        smoothing: opts.smoothing,
    };
    let cells: Vec<Cell> = occupied
        .par_iter()
        .map(|&g| {
            let c = grid.coords(g);
            let region = Region {
                lo: grid.corner(c),
                size: grid.size,
                open_lo: [0, 1, 2].map(|a| a < dim && c[a] == 0),
                open_hi: [0, 1, 2].map(|a| a < dim && c[a] + 1 == grid.count[a]),
                domain_lo: grid.corner(c),
                domain_size: grid.size,
            };
            let cells = cells_of(&ctx, &region, g, 0)?;
            progress(done.fetch_add(1, Ordering::Relaxed) + 1, total);
            Ok(cells)
        })
        .collect::<Result<Vec<Vec<Cell>>>>()?
        .into_iter()
        .flatten()
        .collect();

    let (mut vmin, mut vmax) = (
        vec![f64::INFINITY; channels],
        vec![f64::NEG_INFINITY; channels],
    );
    for v in values.chunks_exact(channels) {
        for k in 0..channels {
            vmin[k] = vmin[k].min(v[k]);
            vmax[k] = vmax[k].max(v[k]);
        }
    }
    let info = ModelInfo {
        dim,
        channels,
        kernel: kernel.name().into(),
        degree,
        smoothing: opts.smoothing,
        shape,
        points_per_cell: ppc,
        overlap: opts.overlap,
        ramp: opts.ramp,
        input_points: n_in,
        points: n,
        merged_duplicates: merged,
        bbox_lo: lo[..dim].to_vec(),
        bbox_hi: hi[..dim].to_vec(),
        value_min: vmin,
        value_max: vmax,
        grid,
        cells: cells.len(),
        cell_points: cells.iter().map(|c| c.len(dim)).sum(),
        largest_cell: cells.iter().map(|c| c.len(dim)).max().unwrap_or(0),
        grown_cells: cells.iter().filter(|c| c.grown).count(),
    };
    Ok(RbfModel::new(info, kernel, cells))
}

impl RbfModel {
    /// Assembles a model from its parts, indexing which cells meet each domain.
    pub(crate) fn new(info: ModelInfo, kernel: Kernel, cells: Vec<Cell>) -> RbfModel {
        let (cover_start, cover) = cover(&info.grid, &cells);
        RbfModel {
            info,
            kernel,
            cells,
            cover_start,
            cover,
        }
    }
}

fn check_finite(data: &[f64], width: usize, what: &str) -> Result<()> {
    match data.iter().position(|v| !v.is_finite()) {
        None => Ok(()),
        Some(i) => Err(Error::invalid(format!(
            "point {} has a non-finite {what} ({})",
            i / width,
            data[i]
        ))),
    }
}

/// Merges (or rejects) points with identical coordinates; keeps first-occurrence order.
fn dedupe(
    points: &[f64],
    dim: usize,
    values: &[f64],
    channels: usize,
    policy: Duplicates,
) -> Result<(Vec<f64>, Vec<f64>, usize)> {
    let n = points.len() / dim;
    let p = |i: usize| &points[i * dim..(i + 1) * dim];
    let mut idx: Vec<u32> = (0..n as u32).collect();
    idx.par_sort_unstable_by(|&a, &b| {
        let (pa, pb) = (p(a as usize), p(b as usize));
        pa.iter()
            .zip(pb)
            .map(|(x, y)| x.total_cmp(y))
            .find(|o| o.is_ne())
            .unwrap_or(std::cmp::Ordering::Equal)
            .then(a.cmp(&b))
    });
    // first[i] = the first occurrence of point i's coordinates.
    let mut first: Vec<u32> = (0..n as u32).collect();
    let mut merged = 0;
    for w in idx.windows(2) {
        let (a, b) = (w[0] as usize, w[1] as usize);
        if p(a) == p(b) {
            if policy == Duplicates::Reject {
                return Err(Error::invalid(format!(
                    "points {} and {} have the same coordinates {:?} (duplicates are rejected)",
                    a.min(b),
                    a.max(b),
                    p(a)
                )));
            }
            first[b] = first[a];
            merged += 1;
        }
    }
    if merged == 0 {
        return Ok((points.to_vec(), values.to_vec(), 0));
    }
    let mut sum = vec![0.0; n * channels];
    let mut count = vec![0u32; n];
    for i in 0..n {
        let f = first[i] as usize;
        count[f] += 1;
        for k in 0..channels {
            sum[f * channels + k] += values[i * channels + k];
        }
    }
    let (mut op, mut ov) = (Vec::new(), Vec::new());
    for i in 0..n {
        if count[i] > 0 {
            op.extend_from_slice(p(i));
            ov.extend(
                sum[i * channels..(i + 1) * channels]
                    .iter()
                    .map(|s| s / count[i] as f64),
            );
        }
    }
    Ok((op, ov, merged))
}

/// Refuses point sets that do not span their dimension (collinear in 2-D,
/// coplanar in 3-D): no grid of domains or polynomial fits them.
fn check_spread(points: &[f64], dim: usize) -> Result<()> {
    let n = points.len() / dim;
    // Per-axis centre and half-range, so the analysis is scale-free (coordinates of
    // 1e200 or 1e-300 neither overflow nor vanish).
    let (mut lo, mut hi) = ([f64::INFINITY; 3], [f64::NEG_INFINITY; 3]);
    for p in points.chunks_exact(dim) {
        for a in 0..dim {
            lo[a] = lo[a].min(p[a]);
            hi[a] = hi[a].max(p[a]);
        }
    }
    let mid = [0, 1, 2].map(|a| {
        if a < dim {
            lo[a] / 2.0 + hi[a] / 2.0
        } else {
            0.0
        }
    });
    let half = [0, 1, 2].map(|a| {
        if a < dim {
            hi[a] / 2.0 - lo[a] / 2.0
        } else {
            0.0
        }
    });
    let unit = |p: &[f64], a: usize| {
        if half[a] > 0.0 {
            (p[a] - mid[a]) / half[a]
        } else {
            0.0
        }
    };
    let mut mean = [0.0; 3];
    for p in points.chunks_exact(dim) {
        for a in 0..dim {
            mean[a] += unit(p, a) / n as f64;
        }
    }
    let mut cov = Mat::<f64>::zeros(dim, dim);
    for p in points.chunks_exact(dim) {
        for a in 0..dim {
            for b in 0..dim {
                cov[(a, b)] += (unit(p, a) - mean[a]) * (unit(p, b) - mean[b]);
            }
        }
    }
    let eig = cov
        .self_adjoint_eigenvalues(Side::Lower)
        .map_err(|_| Error::invalid("could not analyse the point spread"))?;
    let max = eig.iter().cloned().fold(0.0, f64::max);
    let rank = eig
        .iter()
        .filter(|&&e| e > 1e-12 * max && max > 0.0)
        .count();
    if rank < dim {
        let what = match (dim, rank) {
            (_, 0) => "all points coincide".to_string(),
            (2, 1) | (3, 1) => "all points are collinear".to_string(),
            (3, 2) => "all points are coplanar".to_string(),
            _ => format!("the points span only {rank} of {dim} dimensions"),
        };
        return Err(Error::invalid(format!(
            "{what}: a {dim}-D interpolant needs points that span {dim} dimensions"
        )));
    }
    Ok(())
}

/// Counting sort of point indices by domain: (start offsets per domain, order).
fn bin(grid: &DomainGrid, points: &[f64], dim: usize) -> (Vec<u32>, Vec<u32>) {
    let ids: Vec<u32> = points
        .par_chunks_exact(dim)
        .map(|p| grid.id(grid.coords_of(p)) as u32)
        .collect();
    let mut start = vec![0u32; grid.len() + 1];
    for &g in &ids {
        start[g as usize + 1] += 1;
    }
    for g in 0..grid.len() {
        start[g + 1] += start[g];
    }
    let mut fill = start.clone();
    let mut order = vec![0u32; ids.len()];
    for (i, &g) in ids.iter().enumerate() {
        order[fill[g as usize] as usize] = i as u32;
        fill[g as usize] += 1;
    }
    (start, order)
}

/// A box of space one cell covers: a domain, or a part of an overfull one.
#[derive(Clone, Copy, Debug)]
struct Region {
    lo: [f64; 3],
    size: [f64; 3],
    /// Faces on the outer boundary of the grid (no blending ramp there).
    open_lo: [bool; 3],
    open_hi: [bool; 3],
    /// The whole domain this region is part of (where split parts borrow points).
    domain_lo: [f64; 3],
    domain_size: [f64; 3],
}

/// What every cell of one fit shares.
struct Ctx<'a> {
    grid: &'a DomainGrid,
    start: &'a [u32],
    order: &'a [u32],
    points: &'a [f64],
    values: &'a [f64],
    channels: usize,
    overlap: f64,
    min_points: usize,
    /// Points a part of a split domain gathers at least (a regular cell's worth).
    part_points: usize,
    max_points: usize,
    bbox: ([f64; 3], [f64; 3]),
    kernel: Kernel,
    shape: Option<f64>,
    terms: usize,
    smoothing: f64,
}

impl Ctx<'_> {
    fn point(&self, i: u32) -> &[f64] {
        let dim = self.grid.dim;
        &self.points[i as usize * dim..(i as usize + 1) * dim]
    }

    /// Calls `f` for every point of the domains the box [lo, hi] meets (the
    /// caller tests the box itself).
    fn points_near(&self, lo: &[f64; 3], hi: &[f64; 3], mut f: impl FnMut(u32, &[f64])) {
        let (r0, r1) = self.grid.range_of(lo, hi);
        for_each_domain(self.grid.dim, r0, r1, |d| {
            let d = self.grid.id(d);
            for &i in &self.order[self.start[d] as usize..self.start[d + 1] as usize] {
                f(i, self.point(i));
            }
        });
    }
}

/// Halvings of an overfull domain before giving up (2^10 per axis).
const MAX_SPLITS: usize = 10;

/// The cells covering `region`: one, or (if it holds more than `max_points`)
/// those of its 2^d halves, recursively. Cells of different sizes blend
/// continuously because evaluation divides by the weight sum.
fn cells_of(ctx: &Ctx, region: &Region, domain: usize, depth: usize) -> Result<Vec<Cell>> {
    let dim = ctx.grid.dim;
    // Domains grow their box to reach enough points (and so cover empty
    // neighbours); parts of a split domain keep their box and borrow outside
    // points instead, so their box never reaches into the cluster.
    let (bounds, members, grown) = if depth == 0 {
        gather(ctx, region)
    } else {
        gather_nearest(ctx, region)
    };
    if members.len() > ctx.max_points {
        if depth >= MAX_SPLITS {
            return Err(Error::invalid(format!(
                "domain {domain}: {} points within {:?} after {MAX_SPLITS} halvings, more than the \
                 limit of {}: the points are too clustered; raise max_points or add smoothing",
                members.len(),
                &region.size[..dim],
                ctx.max_points
            )));
        }
        let mut out = Vec::new();
        for child in 0..1usize << dim {
            let mut r = *region;
            for a in 0..dim {
                let upper = (child >> a) & 1 == 1;
                r.size[a] = 0.5 * region.size[a];
                if upper {
                    r.lo[a] += r.size[a];
                }
                r.open_lo[a] = region.open_lo[a] && !upper;
                r.open_hi[a] = region.open_hi[a] && upper;
            }
            out.extend(cells_of(ctx, &r, domain, depth + 1)?);
        }
        return Ok(out);
    }
    let (channels, kernel) = (ctx.channels, ctx.kernel);
    let mut cp = Vec::with_capacity(members.len() * dim);
    let mut cv = Vec::with_capacity(members.len() * channels);
    for &i in &members {
        let i = i as usize;
        cp.extend_from_slice(&ctx.points[i * dim..(i + 1) * dim]);
        cv.extend_from_slice(&ctx.values[i * channels..(i + 1) * channels]);
    }
    let scale = bounds.scale(dim);
    let local_shape = match (kernel.is_compact(), ctx.shape) {
        (true, Some(alpha)) => scale / alpha,
        (false, Some(eps)) => eps * scale,
        _ => 1.0,
    };
    let spec = SolveSpec {
        dim,
        channels,
        kernel: Scaled {
            kernel,
            shape: local_shape,
        },
        terms: ctx.terms,
        // (0 stays 0 even where scale^k underflows: no 0/0 at extreme scales.)
        smoothing: if ctx.smoothing == 0.0 {
            0.0
        } else {
            ctx.smoothing / scale.powi(kernel.homogeneity())
        },
    };
    let mut cell = Cell::solve(domain, bounds, &spec, &cp, &cv)?;
    cell.grown = grown;
    Ok(vec![cell])
}

/// The cell of `region`: its box (grown by doubling δ until it holds
/// `min_points`) and every point inside it.
fn gather(ctx: &Ctx, region: &Region) -> (CellBox, Vec<u32>, bool) {
    let grid = ctx.grid;
    let dim = grid.dim;
    let (lo, hi) = (&ctx.bbox.0, &ctx.bbox.1);
    let mut grow = 1.0;
    loop {
        let mut b = CellBox {
            lo: [0.0; 3],
            hi: [0.0; 3],
            width: [0.0; 3],
            open_lo: region.open_lo,
            open_hi: region.open_hi,
        };
        let mut covers_all = true;
        for a in 0..dim {
            let delta = ctx.overlap * region.size[a] * grow;
            b.lo[a] = region.lo[a] - delta;
            b.hi[a] = region.lo[a] + region.size[a] + delta;
            b.width[a] = (2.0 * delta).min(0.5 * (b.hi[a] - b.lo[a]));
            covers_all &= (b.open_lo[a] || b.lo[a] <= lo[a]) && (b.open_hi[a] || b.hi[a] >= hi[a]);
        }
        let mut members = Vec::new();
        ctx.points_near(&b.lo, &b.hi, |i, p| {
            if b.contains(dim, p) {
                members.push(i);
            }
        });
        if members.len() >= ctx.min_points || covers_all {
            members.sort_unstable();
            return (b, members, grow > 1.0);
        }
        grow *= 2.0;
    }
}

/// The cell of a part of a split domain: its box un-grown, every point inside
/// it, and if those are fewer than a regular cell holds, an even spread of the
/// domain's other points (so parts on the sparse side of a cluster still see
/// their surroundings, not only the cluster).
fn gather_nearest(ctx: &Ctx, region: &Region) -> (CellBox, Vec<u32>, bool) {
    let grid = ctx.grid;
    let dim = grid.dim;
    let (lo, hi) = (&ctx.bbox.0, &ctx.bbox.1);
    let mut b = CellBox {
        lo: [0.0; 3],
        hi: [0.0; 3],
        width: [0.0; 3],
        open_lo: region.open_lo,
        open_hi: region.open_hi,
    };
    let mut centre = [0.0; 3];
    for a in 0..dim {
        let delta = ctx.overlap * region.size[a];
        b.lo[a] = region.lo[a] - delta;
        b.hi[a] = region.lo[a] + region.size[a] + delta;
        b.width[a] = 2.0 * delta;
        centre[a] = region.lo[a] + 0.5 * region.size[a];
    }
    // Search the whole domain's cell first (widening if it holds too few), and
    // borrow a spatially even selection: the point nearest each bin centre of a
    // grid over the search box, then the nearest others if bins were empty.
    let mut scale = 1.0;
    loop {
        let (mut inside, mut outside) = (Vec::new(), Vec::new());
        let (mut slo, mut shi) = ([0.0; 3], [0.0; 3]);
        let mut covers_all = true;
        for a in 0..dim {
            let pad = (ctx.overlap + scale - 1.0) * region.domain_size[a];
            slo[a] = region.domain_lo[a] - pad;
            shi[a] = region.domain_lo[a] + region.domain_size[a] + pad;
            covers_all &= slo[a] <= lo[a] && shi[a] >= hi[a];
        }
        ctx.points_near(&slo, &shi, |i, p| {
            if b.contains(dim, p) {
                inside.push(i);
            } else if (0..dim).all(|a| p[a] >= slo[a] && p[a] <= shi[a]) {
                outside.push(i);
            }
        });
        if inside.len() + outside.len() >= ctx.part_points || covers_all {
            let need = ctx.part_points.saturating_sub(inside.len());
            let borrowed =
                even_selection(dim, &slo, &shi, &outside, need, &|i| ctx.point(i), &centre);
            inside.extend_from_slice(&borrowed);
            inside.sort_unstable();
            return (b, inside, need > 0);
        }
        scale *= 2.0;
    }
}

/// Up to `need` of `candidates`, spread over the box [slo, shi]: per bin of an
/// even grid the candidate nearest its centre, then the candidates nearest
/// `centre` to make up the count.
fn even_selection<'a>(
    dim: usize,
    slo: &[f64; 3],
    shi: &[f64; 3],
    candidates: &[u32],
    need: usize,
    point: &dyn Fn(u32) -> &'a [f64],
    centre: &[f64; 3],
) -> Vec<u32> {
    if need == 0 || candidates.is_empty() {
        return Vec::new();
    }
    if candidates.len() <= need {
        return candidates.to_vec();
    }
    let per_axis = ((need as f64).powf(1.0 / dim as f64).floor() as usize).max(1);
    let mut best: Vec<Option<(f64, u32)>> = vec![None; per_axis.pow(dim as u32)];
    for &i in candidates {
        let p = point(i);
        let (mut bin, mut d2) = (0, 0.0);
        for a in 0..dim {
            let w = (shi[a] - slo[a]) / per_axis as f64;
            let k = (((p[a] - slo[a]) / w) as usize).min(per_axis - 1);
            bin = bin * per_axis + k;
            d2 += (p[a] - (slo[a] + (k as f64 + 0.5) * w)).powi(2);
        }
        let better = match best[bin] {
            None => true,
            Some((bd, bi)) => d2 < bd || (d2 == bd && i < bi),
        };
        if better {
            best[bin] = Some((d2, i));
        }
    }
    let mut chosen: Vec<u32> = best.iter().flatten().map(|&(_, i)| i).collect();
    if chosen.len() < need {
        let taken: std::collections::HashSet<u32> = chosen.iter().copied().collect();
        let d2 = |i: u32| {
            (0..dim)
                .map(|a| (point(i)[a] - centre[a]).powi(2))
                .sum::<f64>()
        };
        let mut rest: Vec<u32> = candidates
            .iter()
            .copied()
            .filter(|i| !taken.contains(i))
            .collect();
        rest.sort_by(|&x, &y| d2(x).total_cmp(&d2(y)).then(x.cmp(&y)));
        chosen.extend_from_slice(&rest[..(need - chosen.len()).min(rest.len())]);
    }
    chosen
}

fn for_each_domain(dim: usize, r0: [usize; 3], r1: [usize; 3], mut f: impl FnMut([usize; 3])) {
    let mut c = r0;
    loop {
        f(c);
        let mut a = dim;
        loop {
            if a == 0 {
                return;
            }
            a -= 1;
            if c[a] < r1[a] {
                c[a] += 1;
                break;
            }
            c[a] = r0[a];
        }
    }
}

/// Per domain, the cells whose box meets it, in cell order.
fn cover(grid: &DomainGrid, cells: &[Cell]) -> (Vec<u32>, Vec<u32>) {
    let dim = grid.dim;
    let mut start = vec![0u32; grid.len() + 1];
    let ranges: Vec<_> = cells
        .iter()
        .map(|c| grid.range_of(&c.bounds.lo, &c.bounds.hi))
        .collect();
    for &(r0, r1) in &ranges {
        for_each_domain(dim, r0, r1, |d| start[grid.id(d) + 1] += 1);
    }
    for g in 0..grid.len() {
        start[g + 1] += start[g];
    }
    let mut fill = start.clone();
    let mut list = vec![0u32; start[grid.len()] as usize];
    for (k, &(r0, r1)) in ranges.iter().enumerate() {
        for_each_domain(dim, r0, r1, |d| {
            let g = grid.id(d);
            list[fill[g] as usize] = k as u32;
            fill[g] += 1;
        });
    }
    (start, list)
}
