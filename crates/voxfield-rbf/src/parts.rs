//! Fitting a point set held in parts, as a Dask fit does: points are routed to
//! the tiles of a coarse grid over their bounding box (duplicates share a tile);
//! each tile merges its duplicates and reports its [`Census`] and [`Spread`];
//! the merged census gives the [`Plan`]; each tile then solves the domains whose
//! centre it holds, from its own points and those of the other tiles within a
//! halo around it. A domain whose cell reaches beyond the halo is reported
//! unseen and solved again with a wider one. Rows carry their index in the
//! whole set (their key) and are solved in key order, so the model is the one a
//! single [`crate::fit`] of the whole set makes.

use voxfield_core::{Error, Result};

use crate::blend::DomainGrid;
use crate::cell::Cell;
use crate::census::{check_finite, dedupe, Census, Spread};
use crate::model::{assemble, Duplicates, FitOptions, RbfModel};
use crate::subdivide::Plan;

/// The tile grid: about `target` tiles over the box [lo, hi].
pub fn tile_grid(lo: &[f64], hi: &[f64], target: usize) -> Result<DomainGrid> {
    let dim = lo.len();
    if !(1..=3).contains(&dim) || hi.len() != dim {
        return Err(Error::invalid(format!(
            "a tile grid needs 1-3 coordinates per corner, got {} and {}",
            lo.len(),
            hi.len()
        )));
    }
    if (0..dim).any(|a| !(lo[a].is_finite() && hi[a].is_finite() && lo[a] <= hi[a])) {
        return Err(Error::invalid(format!(
            "a tile grid needs a finite box, got {lo:?} to {hi:?}"
        )));
    }
    let mut l = [0.0; 3];
    let mut h = [0.0; 3];
    l[..dim].copy_from_slice(lo);
    h[..dim].copy_from_slice(hi);
    Ok(DomainGrid::new(dim, l, h, target.max(1)))
}

/// The tile holding each point (n × dim).
pub fn route(tiles: &DomainGrid, points: &[f64]) -> Vec<u32> {
    points
        .chunks_exact(tiles.dim)
        .map(|p| tiles.id(tiles.coords_of(p)) as u32)
        .collect()
}

/// One tile's points made ready: duplicates merged (their mean value kept, or
/// refused), with the census and spread the plan needs.
pub struct Tile {
    pub points: Vec<f64>,
    pub values: Vec<f64>,
    /// Each kept point's key (its first occurrence's).
    pub keys: Vec<u64>,
    pub census: Census,
    pub spread: Spread,
}

/// Prepares a tile's rows, given sorted by `keys` (their indices in the whole
/// set); `lo`, `hi` is the whole set's bounding box.
#[allow(clippy::too_many_arguments)]
pub fn prepare_tile(
    points: &[f64],
    dim: usize,
    values: &[f64],
    channels: usize,
    keys: &[u64],
    duplicates: Duplicates,
    lo: &[f64],
    hi: &[f64],
) -> Result<Tile> {
    let n = keys.len();
    if points.len() != n * dim || values.len() != n * channels {
        return Err(Error::invalid(format!(
            "a tile of {n} keys needs {} coordinates and {} values, got {} and {}",
            n * dim,
            n * channels,
            points.len(),
            values.len()
        )));
    }
    if keys.windows(2).any(|w| w[0] >= w[1]) {
        return Err(Error::invalid(
            "a tile's keys must be distinct and ascending",
        ));
    }
    check_finite(points, dim, "coordinate")?;
    check_finite(values, channels, "value")?;
    let d = dedupe(points, dim, values, channels, duplicates, &|i| keys[i])?;
    let census = Census::of(&d.points, dim, &d.values, channels, n, d.merged);
    let spread = Spread::of(&d.points, dim, lo, hi);
    Ok(Tile {
        keys: d.kept.iter().map(|&i| keys[i]).collect(),
        points: d.points,
        values: d.values,
        census,
        spread,
    })
}

/// The whole set's census and plan from its tiles', after the checks a local fit
/// makes (enough distinct points, spanning their dimension).
pub fn plan_tiles(
    censuses: &[Census],
    spreads: &[Spread],
    opts: &FitOptions,
) -> Result<(Census, Plan)> {
    let mut parts = censuses.iter();
    let mut census = parts
        .next()
        .ok_or_else(|| Error::invalid("no points to fit"))?
        .clone();
    for c in parts {
        census.merge(c)?;
    }
    if census.input_points == 0 {
        return Err(Error::invalid("no points to fit"));
    }
    let plan = Plan::new(&census, opts)?;
    let mut spread = Spread::default();
    for s in spreads {
        spread.merge(s);
    }
    spread.check(census.dim)?;
    Ok((census, plan))
}

impl Plan {
    /// The domains tile `tile` of `tiles` owns: those whose centre it holds (so
    /// each domain has exactly one owner).
    pub fn owned_by(&self, tiles: &DomainGrid, tile: usize) -> Vec<usize> {
        let (dim, grid) = (self.dim, &self.grid);
        let tc = tiles.coords(tile);
        let tlo = tiles.corner(tc);
        let thi = [0, 1, 2].map(|a| tlo[a] + tiles.size[a]);
        let (mut r0, mut r1) = grid.range_of(&tlo, &thi);
        for a in 0..dim {
            r0[a] = r0[a].saturating_sub(2);
            r1[a] = (r1[a] + 2).min(grid.count[a] - 1);
        }
        let mut out = Vec::new();
        crate::subdivide::for_each_domain(dim, r0, r1, |c| {
            let corner = grid.corner(c);
            let centre = [0, 1, 2].map(|a| corner[a] + 0.5 * grid.size[a]);
            if tiles.id(tiles.coords_of(&centre)) == tile {
                out.push(grid.id(c));
            }
        });
        out.sort_unstable();
        out
    }

    /// The box around tile `tile` that reaches `halo` domain sizes beyond it (to
    /// ±∞ past the bounding box: no points lie there).
    pub fn halo(&self, tiles: &DomainGrid, tile: usize, halo: f64) -> ([f64; 3], [f64; 3]) {
        let tc = tiles.coords(tile);
        let tlo = tiles.corner(tc);
        let (mut lo, mut hi) = ([0.0; 3], [0.0; 3]);
        for a in 0..self.dim {
            lo[a] = tlo[a] - halo * self.grid.size[a];
            hi[a] = tlo[a] + tiles.size[a] + halo * self.grid.size[a];
            if lo[a] <= self.lo[a] {
                lo[a] = f64::NEG_INFINITY;
            }
            if hi[a] >= self.hi[a] {
                hi[a] = f64::INFINITY;
            }
        }
        (lo, hi)
    }
}

/// The tiles whose points may lie in the box [lo, hi] (ids ascending).
pub fn tiles_meeting(tiles: &DomainGrid, lo: &[f64; 3], hi: &[f64; 3]) -> Vec<usize> {
    let (r0, r1) = tiles.range_of(lo, hi);
    let mut out = Vec::new();
    crate::subdivide::for_each_domain(tiles.dim, r0, r1, |c| out.push(tiles.id(c)));
    out
}

/// The rows of a tile inside the box [lo, hi] (what it lends a neighbour's halo).
pub fn rows_inside(points: &[f64], dim: usize, lo: &[f64; 3], hi: &[f64; 3]) -> Vec<usize> {
    points
        .chunks_exact(dim)
        .enumerate()
        .filter(|(_, p)| (0..dim).all(|a| p[a] >= lo[a] && p[a] <= hi[a]))
        .map(|(i, _)| i)
        .collect()
}

/// The model made of the cells every tile solved; each occupied domain must
/// come exactly once.
pub fn assemble_tiles(
    plan: &Plan,
    census: &Census,
    cells: Vec<(usize, Vec<Cell>)>,
) -> Result<RbfModel> {
    let mut ids: Vec<usize> = cells.iter().map(|&(g, _)| g).collect();
    ids.sort_unstable();
    if let Some(w) = ids.windows(2).find(|w| w[0] == w[1]) {
        return Err(Error::invalid(format!(
            "domain {} was solved twice: the parts overlap",
            w[0]
        )));
    }
    if let Some(&g) = ids.iter().find(|&&g| g >= plan.grid.len()) {
        return Err(Error::invalid(format!(
            "domain {g} is not on the {}-domain grid",
            plan.grid.len()
        )));
    }
    Ok(assemble(plan, census, cells))
}
