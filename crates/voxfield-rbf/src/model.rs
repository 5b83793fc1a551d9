//! Fitting: validation, duplicate handling, the census and plan of the cells,
//! their parallel solves, and the model they make.

use serde::{Deserialize, Serialize};
use voxfield_core::work::Watch;
use voxfield_core::{Error, Result};

use crate::blend::{DomainGrid, Ramp};
use crate::cell::Cell;
use crate::census::{check_finite, dedupe, Census, Spread};
use crate::kernel::Kernel;
pub use crate::options::{Duplicates, FitOptions};
use crate::subdivide::{for_each_domain, Plan};

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

/// Nodes along the longest side of the lattice a model is sampled on when the
/// caller gives none (`render`, `serve`).
pub const DEFAULT_GRID_NODES: usize = 128;

impl ModelInfo {
    /// The lattice over the samples' box with `nodes` along its longest side and
    /// the same spacing on the others: (nodes per axis — 1 past the model's
    /// axes — and the spacing), or None when the box has no extent.
    pub fn box_grid(&self, nodes: usize) -> Option<([usize; 3], f64)> {
        let dim = self.dim.min(3);
        let extent: Vec<f64> = (0..dim)
            .map(|a| self.bbox_hi[a] - self.bbox_lo[a])
            .collect();
        let longest = extent.iter().copied().fold(0.0, f64::max);
        if !(longest > 0.0 && longest.is_finite()) || nodes < 2 {
            return None;
        }
        let h = longest / (nodes - 1) as f64;
        let mut shape = [1; 3];
        for (a, e) in extent.iter().enumerate() {
            shape[a] = (e / h + 1e-9).floor() as usize + 1;
        }
        Some((shape, h))
    }
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
/// `watch` hears of cells as they finish and can stop the fit between cells
/// (an "interrupted" error).
pub fn fit(
    points: &[f64],
    dim: usize,
    values: &[f64],
    channels: usize,
    opts: &FitOptions,
    watch: &Watch,
) -> Result<RbfModel> {
    opts.check(dim, channels)?;
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
    let d = dedupe(points, dim, values, channels, opts.duplicates, &|i| {
        i as u64
    })?;
    let census = Census::of(&d.points, dim, &d.values, channels, n_in, d.merged);
    let plan = Plan::new(&census, opts)?;
    Spread::of(&d.points, dim, &census.bbox_lo, &census.bbox_hi).check(dim)?;
    let domains = plan.occupied(&d.points);
    let solved = plan.solve(&d.points, &d.values, &domains, None, watch)?;
    Ok(assemble(&plan, &census, solved.cells))
}

/// The model made of the cells of every occupied domain, in any order.
pub fn assemble(plan: &Plan, census: &Census, mut cells: Vec<(usize, Vec<Cell>)>) -> RbfModel {
    cells.sort_by_key(|&(g, _)| g);
    let cells: Vec<Cell> = cells.into_iter().flat_map(|(_, c)| c).collect();
    let dim = plan.dim;
    let info = ModelInfo {
        dim,
        channels: plan.channels,
        kernel: plan.kernel.name().into(),
        degree: plan.degree,
        smoothing: plan.smoothing,
        shape: plan.shape,
        points_per_cell: plan.points_per_cell,
        overlap: plan.overlap,
        ramp: plan.ramp,
        input_points: census.input_points,
        points: census.points,
        merged_duplicates: census.merged_duplicates,
        bbox_lo: census.bbox_lo.clone(),
        bbox_hi: census.bbox_hi.clone(),
        value_min: census.value_min.clone(),
        value_max: census.value_max.clone(),
        grid: plan.grid.clone(),
        cells: cells.len(),
        cell_points: cells.iter().map(|c| c.len(dim)).sum(),
        largest_cell: cells.iter().map(|c| c.len(dim)).max().unwrap_or(0),
        grown_cells: cells.iter().filter(|c| c.grown).count(),
    };
    RbfModel::new(info, plan.kernel, cells)
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
