//! Subdivision: the plan of a fit (the domain grid, the kernel's shape, cell
//! size limits) and the solve of each domain's cell(s). A plan depends only on
//! the [`Census`] and the options, so parts of a point set solved apart (a Dask
//! fit) give the same cells as one solve of the whole.

use std::sync::atomic::{AtomicUsize, Ordering};

use rayon::prelude::*;
use voxfield_core::work::Watch;
use voxfield_core::{Error, Result};

use crate::blend::{CellBox, DomainGrid, Ramp};
use crate::cell::{Cell, SolveSpec};
use crate::census::Census;
use crate::kernel::{Kernel, Scaled};
use crate::options::FitOptions;

/// Everything the cells of one fit share, decided before any is solved.
#[derive(Clone, Debug, PartialEq)]
pub struct Plan {
    pub dim: usize,
    pub channels: usize,
    pub kernel: Kernel,
    pub degree: i32,
    pub terms: usize,
    /// ε (gaussian, mq) or support radius (wendland) in world units.
    pub shape: Option<f64>,
    pub points_per_cell: usize,
    pub grid: DomainGrid,
    pub lo: [f64; 3],
    pub hi: [f64; 3],
    pub overlap: f64,
    pub ramp: Ramp,
    pub smoothing: f64,
    /// Cells holding fewer points grow until they hold this many.
    pub min_points: usize,
    /// Points a part of a split domain gathers at least (a regular cell's worth).
    pub part_points: usize,
    /// Largest cell solved; overfull domains split.
    pub max_points: usize,
}

impl Plan {
    /// The plan for the point set `census` describes (its distinct points).
    pub fn new(census: &Census, opts: &FitOptions) -> Result<Plan> {
        let (dim, channels) = (census.dim, census.channels);
        let (degree, terms) = opts.check(dim, channels)?;
        let kernel = opts.kernel;
        let n = census.points;
        if n < terms.max(1) {
            return Err(Error::invalid(format!(
                "{n} distinct point(s) are fewer than kernel {kernel} with degree {degree} needs in {dim}-D ({})",
                terms.max(1)
            )));
        }
        let (lo, hi) = (census.lo(), census.hi());
        let ppc = opts
            .points_per_cell
            .unwrap_or(if kernel.is_compact() { 3000 } else { 200 })
            .max(1);
        let grid = DomainGrid::new(dim, lo, hi, n.div_ceil(ppc));
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
        Ok(Plan {
            dim,
            channels,
            kernel,
            degree,
            terms,
            shape,
            points_per_cell: ppc,
            grid,
            lo,
            hi,
            overlap: opts.overlap,
            ramp: opts.ramp,
            smoothing: opts.smoothing,
            min_points,
            part_points: (expected_cell as usize).clamp(min_points, max_points / 2),
            max_points,
        })
    }

    /// The cells of `domains` (ids on [`Plan::grid`]; empty domains have none)
    /// from `points` (n × dim) and `values` (n × channels), given in the order of
    /// the whole set (a part's rows sorted by their index in it), so cells equal
    /// those of one solve of the whole. With `seen` = Some([lo, hi]), the points
    /// are all those of the whole set inside that box: a domain whose cell would
    /// reach outside it is returned in `Solved::unseen` instead of solved.
    pub fn solve(
        &self,
        points: &[f64],
        values: &[f64],
        domains: &[usize],
        seen: Option<([f64; 3], [f64; 3])>,
        watch: &Watch,
    ) -> Result<Solved> {
        let (dim, grid) = (self.dim, &self.grid);
        let (start, order) = bin(grid, points, dim);
        let ctx = Ctx {
            plan: self,
            start: &start,
            order: &order,
            points,
            values,
            seen,
        };
        let done = AtomicUsize::new(0);
        let total = domains.len();
        watch.report("fitting (cells)", 0, total as u64);
        let out: Vec<(usize, Option<Vec<Cell>>)> = domains
            .par_iter()
            .map(|&g| {
                watch.check()?;
                if g >= grid.len() {
                    return Err(Error::invalid(format!(
                        "domain {g} is not on the {}-domain grid",
                        grid.len()
                    )));
                }
                let c = grid.coords(g);
                let region = Region {
                    lo: grid.corner(c),
                    size: grid.size,
                    open_lo: [0, 1, 2].map(|a| a < dim && c[a] == 0),
                    open_hi: [0, 1, 2].map(|a| a < dim && c[a] + 1 == grid.count[a]),
                    domain_lo: grid.corner(c),
                    domain_size: grid.size,
                };
                let hi = [0, 1, 2].map(|a| region.lo[a] + region.size[a]);
                let cells = if !ctx.sees(&region.lo, &hi) {
                    None
                } else if start[g + 1] == start[g] {
                    Some(Vec::new())
                } else {
                    cells_of(&ctx, &region, g, 0)?
                };
                let n = done.fetch_add(1, Ordering::Relaxed) + 1;
                watch.report("fitting (cells)", n as u64, total as u64);
                Ok((g, cells))
            })
            .collect::<Result<_>>()?;
        let mut solved = Solved::default();
        for (g, cells) in out {
            match cells {
                None => solved.unseen.push(g),
                Some(c) if c.is_empty() => {}
                Some(c) => solved.cells.push((g, c)),
            }
        }
        Ok(solved)
    }

    /// Every domain holding a point (ids ascending).
    pub fn occupied(&self, points: &[f64]) -> Vec<usize> {
        let (start, _) = bin(&self.grid, points, self.dim);
        (0..self.grid.len())
            .filter(|&g| start[g + 1] > start[g])
            .collect()
    }
}

/// What [`Plan::solve`] made: per solved domain its cells (in solve order), and
/// the domains whose cells reach beyond the points it was given.
#[derive(Debug, Default)]
pub struct Solved {
    pub cells: Vec<(usize, Vec<Cell>)>,
    pub unseen: Vec<usize>,
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

/// What every cell of one solve shares.
struct Ctx<'a> {
    plan: &'a Plan,
    start: &'a [u32],
    order: &'a [u32],
    points: &'a [f64],
    values: &'a [f64],
    /// The box all points of the whole set inside which are at hand (None: all are).
    seen: Option<([f64; 3], [f64; 3])>,
}

impl Ctx<'_> {
    fn point(&self, i: u32) -> &[f64] {
        let dim = self.plan.dim;
        &self.points[i as usize * dim..(i as usize + 1) * dim]
    }

    /// Whether every point of the whole set inside [lo, hi] is at hand.
    fn sees(&self, lo: &[f64; 3], hi: &[f64; 3]) -> bool {
        self.seen
            .is_none_or(|(slo, shi)| (0..self.plan.dim).all(|a| lo[a] >= slo[a] && hi[a] <= shi[a]))
    }

    /// Calls `f` for every point of the domains the box [lo, hi] meets (the
    /// caller tests the box itself).
    fn points_near(&self, lo: &[f64; 3], hi: &[f64; 3], mut f: impl FnMut(u32, &[f64])) {
        let grid = &self.plan.grid;
        let (r0, r1) = grid.range_of(lo, hi);
        for_each_domain(grid.dim, r0, r1, |d| {
            let d = grid.id(d);
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
/// continuously because evaluation divides by the weight sum. None if a cell
/// would reach beyond the points at hand.
fn cells_of(ctx: &Ctx, region: &Region, domain: usize, depth: usize) -> Result<Option<Vec<Cell>>> {
    let dim = ctx.plan.grid.dim;
    // Domains grow their box to reach enough points (and so cover empty
    // neighbours); parts of a split domain keep their box and borrow outside
    // points instead, so their box never reaches into the cluster.
    let gathered = if depth == 0 {
        gather(ctx, region)
    } else {
        gather_nearest(ctx, region)
    };
    let Some((bounds, members, grown)) = gathered else {
        return Ok(None);
    };
    if members.len() > ctx.plan.max_points {
        if depth >= MAX_SPLITS {
            return Err(Error::invalid(format!(
                "domain {domain}: {} points within {:?} after {MAX_SPLITS} halvings, more than the \
                 limit of {}: the points are too clustered; raise max_points or add smoothing",
                members.len(),
                &region.size[..dim],
                ctx.plan.max_points
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
            match cells_of(ctx, &r, domain, depth + 1)? {
                Some(cells) => out.extend(cells),
                None => return Ok(None),
            }
        }
        return Ok(Some(out));
    }
    let (channels, kernel) = (ctx.plan.channels, ctx.plan.kernel);
    let mut cp = Vec::with_capacity(members.len() * dim);
    let mut cv = Vec::with_capacity(members.len() * channels);
    for &i in &members {
        let i = i as usize;
        cp.extend_from_slice(&ctx.points[i * dim..(i + 1) * dim]);
        cv.extend_from_slice(&ctx.values[i * channels..(i + 1) * channels]);
    }
    let scale = bounds.scale(dim);
    let local_shape = match (kernel.is_compact(), ctx.plan.shape) {
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
        terms: ctx.plan.terms,
        // (0 stays 0 even where scale^k underflows: no 0/0 at extreme scales.)
        smoothing: if ctx.plan.smoothing == 0.0 {
            0.0
        } else {
            ctx.plan.smoothing / scale.powi(kernel.homogeneity())
        },
    };
    let mut cell = Cell::solve(domain, bounds, &spec, &cp, &cv)?;
    cell.grown = grown;
    Ok(Some(vec![cell]))
}

/// The cell of `region`: its box (grown by doubling δ until it holds
/// `min_points`) and every point inside it; None once it reaches beyond the
/// points at hand.
fn gather(ctx: &Ctx, region: &Region) -> Option<(CellBox, Vec<u32>, bool)> {
    let grid = &ctx.plan.grid;
    let dim = grid.dim;
    let (lo, hi) = (&ctx.plan.lo, &ctx.plan.hi);
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
            let delta = ctx.plan.overlap * region.size[a] * grow;
            b.lo[a] = region.lo[a] - delta;
            b.hi[a] = region.lo[a] + region.size[a] + delta;
            b.width[a] = (2.0 * delta).min(0.5 * (b.hi[a] - b.lo[a]));
            covers_all &= (b.open_lo[a] || b.lo[a] <= lo[a]) && (b.open_hi[a] || b.hi[a] >= hi[a]);
        }
        if !ctx.sees(&b.lo, &b.hi) {
            return None;
        }
        let mut members = Vec::new();
        ctx.points_near(&b.lo, &b.hi, |i, p| {
            if b.contains(dim, p) {
                members.push(i);
            }
        });
        if members.len() >= ctx.plan.min_points || covers_all {
            members.sort_unstable();
            return Some((b, members, grow > 1.0));
        }
        grow *= 2.0;
    }
}

/// The cell of a part of a split domain: its box un-grown, every point inside
/// it, and if those are fewer than a regular cell holds, an even spread of the
/// domain's other points (so parts on the sparse side of a cluster still see
/// their surroundings, not only the cluster). None once its search reaches
/// beyond the points at hand.
fn gather_nearest(ctx: &Ctx, region: &Region) -> Option<(CellBox, Vec<u32>, bool)> {
    let grid = &ctx.plan.grid;
    let dim = grid.dim;
    let (lo, hi) = (&ctx.plan.lo, &ctx.plan.hi);
    let mut b = CellBox {
        lo: [0.0; 3],
        hi: [0.0; 3],
        width: [0.0; 3],
        open_lo: region.open_lo,
        open_hi: region.open_hi,
    };
    let mut centre = [0.0; 3];
    for a in 0..dim {
        let delta = ctx.plan.overlap * region.size[a];
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
            let pad = (ctx.plan.overlap + scale - 1.0) * region.domain_size[a];
            slo[a] = region.domain_lo[a] - pad;
            shi[a] = region.domain_lo[a] + region.domain_size[a] + pad;
            covers_all &= slo[a] <= lo[a] && shi[a] >= hi[a];
        }
        if !ctx.sees(&slo, &shi) {
            return None;
        }
        ctx.points_near(&slo, &shi, |i, p| {
            if b.contains(dim, p) {
                inside.push(i);
            } else if (0..dim).all(|a| p[a] >= slo[a] && p[a] <= shi[a]) {
                outside.push(i);
            }
        });
        if inside.len() + outside.len() >= ctx.plan.part_points || covers_all {
            let need = ctx.plan.part_points.saturating_sub(inside.len());
            let borrowed =
                even_selection(dim, &slo, &shi, &outside, need, &|i| ctx.point(i), &centre);
            inside.extend_from_slice(&borrowed);
            inside.sort_unstable();
            return Some((b, inside, need > 0));
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

pub(crate) fn for_each_domain(
    dim: usize,
    r0: [usize; 3],
    r1: [usize; 3],
    mut f: impl FnMut([usize; 3]),
) {
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
