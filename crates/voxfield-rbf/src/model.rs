//! Fitting: validation, duplicate handling, the census and plan of the cells,
//! their parallel solves, and the model they make.

use serde::{Deserialize, Serialize};
use voxfield_core::work::Watch;
use voxfield_core::{Error, Result};

use crate::blend::{DomainGrid, Ramp};
use crate::cell::{poly_terms, Cell};
use crate::census::{check_finite, dedupe, Census, Spread};
use crate::kernel::Kernel;
use crate::subdivide::{for_each_domain, Plan};

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

impl FitOptions {
    /// Checks the options for `dim`-D points with `channels` values: (the
    /// polynomial degree, its number of terms).
    pub fn check(&self, dim: usize, channels: usize) -> Result<(i32, usize)> {
        let kernel = self.kernel;
        kernel.check_dim(dim)?;
        if channels == 0 {
            return Err(Error::invalid("values need at least one channel"));
        }
        let degree = self.degree.unwrap_or(kernel.default_degree());
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
        if !(self.overlap > 0.0 && self.overlap <= 0.5) {
            return Err(Error::invalid(format!(
                "overlap must be in (0, 0.5] (a fraction of the domain size), not {}",
                self.overlap
            )));
        }
        if !(self.smoothing >= 0.0 && self.smoothing.is_finite()) {
            return Err(Error::invalid(format!(
                "smoothing must be finite and >= 0, not {}",
                self.smoothing
            )));
        }
        if let Some(s) = self.shape {
            if !(s > 0.0 && s.is_finite()) {
                return Err(Error::invalid(format!(
                    "shape parameter must be finite and > 0, not {s}"
                )));
            }
        }
        let terms = poly_terms(dim, degree);
        if let Some(p) = self.points_per_cell {
            if p <= terms {
                return Err(Error::invalid(format!(
                    "points per cell must exceed the {terms} polynomial terms of degree {degree} in {dim}-D, not {p}"
                )));
            }
        }
        Ok((degree, terms))
    }
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
