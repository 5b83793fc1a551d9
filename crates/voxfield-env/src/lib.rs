//! Spatial environments (issue 11): an arena discretised into bins joined by a
//! connectivity graph, with neurospatial 0.6.0's exact rules — regular grids from
//! samples ([`grid`]), O(1) point→bin queries, graph paths and distances
//! ([`graph`]), diffusion smoothing as a matrix-free exponential action
//! ([`smooth`]) and occupancy / bin sequences from trajectories
//! ([`trajectory`]).
//!
//! An [`Environment`] is immutable once built and `Send + Sync`; the only cache
//! (smoothing generators per bandwidth) sits behind a mutex with a bounded number
//! of entries, so many threads can query one environment at once.

pub mod cells;
pub mod decoding;
pub mod directional;
pub mod encoding;
mod fastexp;
pub mod field;
pub mod file;
pub mod graph;
pub mod grid;
pub mod hex;
mod kernels;
pub mod nearest;
pub mod scores;
pub mod shuffle;
pub mod smooth;
pub mod track;
pub mod trajectory;

use std::sync::{Arc, Mutex, OnceLock};

pub use field::{BinField, Reading};
pub use graph::Graph;
pub use grid::{Grid, Shaping};
pub use hex::Hex;
pub use kernels::KERNEL_CACHE_BYTES;
pub use nearest::{Reach, TieBreak};
pub use scores::FieldOptions;
pub use smooth::{Generator, Mode, Operator};
pub use track::{OrderedEdge, Track};
pub use trajectory::Csr;
use voxfield_core::{Error, Result};

/// How space is cut into cells (the bins are the active cells).
#[derive(Clone, Debug, PartialEq)]
pub enum Layout {
    /// A rectangular 1-3-D grid.
    Grid(Grid),
    /// A 2-D hexagonal lattice.
    Hex(Hex),
    /// A linearised track (bins along a graph's edges).
    Track(Track),
}

impl Layout {
    pub fn n_dims(&self) -> usize {
        match self {
            Layout::Grid(g) => g.n_dims(),
            Layout::Hex(_) => 2,
            Layout::Track(t) => t.dims,
        }
    }

    /// Active flags of every cell.
    pub fn active(&self) -> &[bool] {
        match self {
            Layout::Grid(g) => &g.active,
            Layout::Hex(h) => &h.active,
            Layout::Track(t) => &t.active,
        }
    }

    /// Cells per axis (a hexagonal lattice: rows, columns).
    pub fn shape(&self) -> Vec<usize> {
        match self {
            Layout::Grid(g) => g.shape.clone(),
            Layout::Hex(h) => vec![h.rows, h.cols],
            Layout::Track(t) => vec![t.active.len()],
        }
    }

    /// The cell containing `p`, if any (active or not); a track contains no
    /// area (its points map to the nearest bin instead).
    pub fn flat_at(&self, p: &[f64]) -> Option<usize> {
        match self {
            Layout::Grid(g) => g.flat_at(p),
            Layout::Hex(h) => h.flat_at(p),
            Layout::Track(_) => None,
        }
    }

    fn center_of_flat(&self, f: usize) -> Vec<f64> {
        match self {
            Layout::Grid(g) => g.center_of_flat(f),
            Layout::Hex(h) => h.center_of_flat(f).to_vec(),
            Layout::Track(t) => t.center_of_flat(f),
        }
    }

    fn size_of_flat(&self, f: usize) -> f64 {
        match self {
            Layout::Grid(g) => g.size_of_flat(f),
            Layout::Hex(h) => h.area(),
            Layout::Track(t) => t.size_of_flat(f),
        }
    }

    /// The layout's name in neurospatial.
    pub fn kind(&self) -> &'static str {
        match self {
            Layout::Grid(_) => "RegularGrid",
            Layout::Hex(_) => "Hexagonal",
            Layout::Track(_) => "Graph",
        }
    }
}

/// Bins over 1-3-D space with their connectivity graph.
#[derive(Debug)]
pub struct Environment {
    pub layout: Layout,
    /// Neighbours differ in at most this many axes: 1 joins the 2n axis
    /// neighbours (4 / 6), `n_dims` the full 3^n − 1 (8 / 26), 2 in 3-D gives 18.
    pub neighbour_axes: usize,
    /// Active bin → flat grid index (C order).
    pub bin_to_flat: Vec<usize>,
    /// Flat grid index → active bin, or −1.
    flat_to_bin: Vec<i64>,
    /// Bin centres, `n_dims` per bin.
    pub centers: Vec<f64>,
    pub graph: Graph,
    /// Smoothing generators by (operator, bandwidth bits), most recent last.
    generators: GeneratorCache,
    /// Bucket grid over the centres and the typical spacing for nearest-bin
    /// queries (O(n_bins), built once).
    nearest: OnceLock<nearest::NearestIndex>,
    /// Dense kernels `compute_kernel` was asked to cache; `smooth` uses them.
    kernels: kernels::KernelCache,
}

/// Generators by (operator, bandwidth bits), least recently built first.
type GeneratorCache = Mutex<Vec<((Operator, u64), Arc<Generator>)>>;

/// Chebyshev α of a smoothing, at most (≈ that many passes over the bins).
const MAX_CHEBYSHEV_ALPHA: f64 = 1e6;

/// Generators kept per environment (each O(edges)).
const GENERATOR_CACHE: usize = 8;

impl Environment {
    /// Bins `grid`'s active cells and joins neighbours (the full 3^n − 1
    /// neighbourhood with `diagonal`, else the 2n axis neighbours), edge lengths
    /// the distances between centres.
    pub fn new(grid: Grid, diagonal: bool) -> Result<Self> {
        let axes = if diagonal { grid.n_dims() } else { 1 };
        Self::with_neighbour_axes(grid, axes)
    }

    /// As `new`, with neighbours that differ in at most `axes` axes (1 to n_dims).
    pub fn with_neighbour_axes(grid: Grid, axes: usize) -> Result<Self> {
        if !(1..=grid.n_dims()).contains(&axes) {
            return Err(Error::invalid(format!(
                "neighbours may differ in 1 to {} axes on a {}-D grid, not {axes}",
                grid.n_dims(),
                grid.n_dims()
            )));
        }
        Self::build(Layout::Grid(grid), axes)
    }

    /// Bins a hexagonal lattice's active cells and joins each to its (up to
    /// six) active neighbours.
    pub fn hexagonal(hex: Hex) -> Result<Self> {
        Self::build(Layout::Hex(hex), 1)
    }

    /// Bins a linearised track; neighbours are consecutive bins of an edge
    /// and the end bins joined at nodes.
    pub fn track(track: Track) -> Result<Self> {
        Self::build(Layout::Track(track), 1)
    }

    /// The bins of a layout's active cells and their graph (grid neighbours
    /// along at most `axes` axes).
    fn build(layout: Layout, axes: usize) -> Result<Self> {
        let (bin_to_flat, flat_to_bin, centers) = Self::bins(&layout)?;
        let d = layout.n_dims();
        let graph = match &layout {
            Layout::Grid(g) => Graph::grid(g, &bin_to_flat, &flat_to_bin, &centers, axes),
            Layout::Hex(h) => {
                Graph::from_cells(&bin_to_flat, &flat_to_bin, &centers, d, |f, out| {
                    out.extend(h.neighbours(f))
                })
            }
            Layout::Track(t) => {
                Graph::from_cells(&bin_to_flat, &flat_to_bin, &centers, d, |f, out| {
                    out.extend(t.neighbours(f))
                })
            }
        };
        Ok(Environment {
            layout,
            neighbour_axes: axes,
            bin_to_flat,
            flat_to_bin,
            centers,
            graph,
            generators: Mutex::new(vec![]),
            nearest: OnceLock::new(),
            kernels: Default::default(),
        })
    }

    /// The track, or an error naming `what` needs one.
    pub fn linear_track(&self, what: &str) -> Result<&Track> {
        match &self.layout {
            Layout::Track(t) => Ok(t),
            other => Err(Error::invalid(format!(
                "{what} needs a linearised track (from_graph); this environment is {}",
                other.kind()
            ))),
        }
    }

    /// The active cells in order (bins), the inverse map and the centres.
    #[allow(clippy::type_complexity)]
    fn bins(layout: &Layout) -> Result<(Vec<usize>, Vec<i64>, Vec<f64>)> {
        let active = layout.active();
        let bin_to_flat: Vec<usize> = (0..active.len()).filter(|&f| active[f]).collect();
        if bin_to_flat.is_empty() {
            return Err(Error::invalid("the environment has no active bins"));
        }
        if bin_to_flat.len() > u32::MAX as usize {
            return Err(Error::invalid(format!(
                "{} active bins are more than this engine indexes (2^32)",
                bin_to_flat.len()
            )));
        }
        let mut flat_to_bin = vec![-1i64; active.len()];
        for (b, &f) in bin_to_flat.iter().enumerate() {
            flat_to_bin[f] = b as i64;
        }
        let d = layout.n_dims();
        let mut centers = Vec::with_capacity(bin_to_flat.len() * d);
        for &f in &bin_to_flat {
            centers.extend(layout.center_of_flat(f));
        }
        Ok((bin_to_flat, flat_to_bin, centers))
    }

    /// The rectangular grid, or an error naming `what` needs one.
    pub fn grid(&self, what: &str) -> Result<&Grid> {
        match &self.layout {
            Layout::Grid(g) => Ok(g),
            other => Err(Error::invalid(format!(
                "{what} needs a rectangular grid; this environment is {}",
                other.kind()
            ))),
        }
    }

    /// Whether diagonal neighbours are joined (the full 3^n − 1 neighbourhood
    /// of a grid; a hexagonal lattice has none).
    pub fn diagonal(&self) -> bool {
        matches!(self.layout, Layout::Grid(_)) && self.neighbour_axes == self.n_dims()
    }

    pub fn n_bins(&self) -> usize {
        self.bin_to_flat.len()
    }

    pub fn n_dims(&self) -> usize {
        self.layout.n_dims()
    }

    /// The diagonal of the bin centres' bounding box.
    pub fn extent(&self) -> f64 {
        let d = self.n_dims();
        (0..d)
            .map(|a| {
                let (lo, hi) = self
                    .centers
                    .iter()
                    .skip(a)
                    .step_by(d)
                    .fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), &x| {
                        (l.min(x), h.max(x))
                    });
                if hi > lo {
                    (hi - lo).powi(2)
                } else {
                    0.0
                }
            })
            .sum::<f64>()
            .sqrt()
    }

    /// Centre of bin `b`.
    pub fn center(&self, b: usize) -> &[f64] {
        let d = self.n_dims();
        &self.centers[b * d..(b + 1) * d]
    }

    /// Area (length, volume) of each bin: on a grid the product of its actual
    /// widths, on a hexagonal lattice the hexagon's area.
    pub fn bin_sizes(&self) -> Vec<f64> {
        self.bin_to_flat
            .iter()
            .map(|&f| self.layout.size_of_flat(f))
            .collect()
    }

    /// The active bin containing `p`, or −1 (outside, on the top edge, in an
    /// inactive cell, or NaN): 0.6.0's half-open bins (hexagons by cube
    /// rounding), in O(1).
    pub fn bin_at(&self, p: &[f64]) -> i64 {
        if let Layout::Track(_) = self.layout {
            // 0.6.0 maps every point to the nearest bin centre (a k-d tree query).
            if p.iter().any(|v| v.is_nan()) {
                return -1;
            }
            return self
                .buckets()
                .nearest(&self.centers, p, 0.0, f64::INFINITY, None)
                .map_or(-1, |(b, _)| b as i64);
        }
        match self.layout.flat_at(p) {
            Some(f) => self.flat_to_bin[f],
            None => -1,
        }
    }

    /// A shortest path between two bins (A* on the graph, the straight line
    /// between centres as its guide), both ends included; empty if unreachable.
    pub fn path_between(&self, a: usize, b: usize) -> Vec<usize> {
        self.graph.path(a, b, &|v| self.straight(v, b))
    }

    /// The geodesic distance between two bins (∞ if unreachable).
    pub fn distance_between(&self, a: usize, b: usize) -> f64 {
        self.graph.distance(a, b, &|v| self.straight(v, b))
    }

    /// The straight-line distance between two bin centres (a lower bound of
    /// the geodesic one: edges are straight segments between centres).
    fn straight(&self, a: usize, b: usize) -> f64 {
        let (p, q) = (self.center(a), self.center(b));
        p.iter()
            .zip(q)
            .map(|(x, y)| (x - y) * (x - y))
            .sum::<f64>()
            .sqrt()
    }

    /// Geodesic distance from `from[k]` to `to[k]` for every k (∞ when no
    /// path): one Dijkstra per distinct source bin, sources in parallel, so
    /// memory is one distance row per thread, never the n² matrix.
    pub fn pair_distances(&self, from: &[usize], to: &[usize]) -> Result<Vec<f64>> {
        use rayon::prelude::*;
        if from.len() != to.len() {
            return Err(Error::invalid(format!(
                "{} source bins for {} target bins",
                from.len(),
                to.len()
            )));
        }
        if let Some(b) = from.iter().chain(to).find(|&&b| b >= self.n_bins()) {
            return Err(Error::invalid(format!(
                "bin {b} is outside the environment's {} bins",
                self.n_bins()
            )));
        }
        let mut order: Vec<usize> = (0..from.len()).collect();
        order.sort_by_key(|&k| from[k]);
        let groups: Vec<&[usize]> = order.chunk_by(|&a, &b| from[a] == from[b]).collect();
        let found: Vec<Vec<(usize, f64)>> = groups
            .par_iter()
            .map(|g| {
                let d = self.graph.distances_from(&[from[g[0]]]);
                g.iter().map(|&k| (k, d[to[k]])).collect()
            })
            .collect();
        let mut out = vec![0.0; from.len()];
        for (k, d) in found.into_iter().flatten() {
            out[k] = d;
        }
        Ok(out)
    }

    /// Checks a bin index.
    pub fn check_bin(&self, b: i64) -> Result<usize> {
        if b < 0 || b as usize >= self.n_bins() {
            return Err(Error::invalid(format!(
                "bin {b} is out of range: the environment has {} bins (0..{})",
                self.n_bins(),
                self.n_bins()
            )));
        }
        Ok(b as usize)
    }

    /// The smoothing generator of `op` at `bandwidth`, built once and cached.
    pub fn generator(&self, op: Operator, bandwidth: f64) -> Result<Arc<Generator>> {
        if !(bandwidth.is_finite() && bandwidth > 0.0) {
            return Err(Error::invalid(format!(
                "bandwidth {bandwidth} must be a positive number"
            )));
        }
        let key = (op, bandwidth.to_bits());
        {
            let cache = self.generators.lock().expect("generator cache");
            if let Some((_, g)) = cache.iter().find(|(k, _)| *k == key) {
                return Ok(g.clone());
            }
        }
        let extent = self.extent();
        if extent > 0.0 && bandwidth > extent {
            return Err(Error::invalid(format!(
                "bandwidth {bandwidth} is larger than the environment ({extent:.6} across its bin centres): \
                 smoothing that wide gives a flat field; choose a bandwidth up to {extent:.6}"
            )));
        }
        let g = Generator::new(self, op, bandwidth);
        let alpha = g.chebyshev_alpha();
        if alpha > MAX_CHEBYSHEV_ALPHA {
            return Err(Error::invalid(format!(
                "bandwidth {bandwidth} spans about {:.0} bins here: smoothing would take {alpha:.3e} passes \
                 over the {} bins (at most {MAX_CHEBYSHEV_ALPHA:e}); choose a smaller bandwidth or larger bins",
                (2.0 * alpha).sqrt(),
                self.n_bins()
            )));
        }
        let g = Arc::new(g);
        let mut cache = self.generators.lock().expect("generator cache");
        if !cache.iter().any(|(k, _)| *k == key) {
            if cache.len() == GENERATOR_CACHE {
                cache.remove(0);
            }
            cache.push((key, g.clone()));
        }
        Ok(g)
    }

    /// The nearest-bin index, built on first use.
    fn nearest_index(&self) -> &nearest::NearestIndex {
        self.nearest.get_or_init(|| {
            let buckets = nearest::Buckets::new(&self.centers, self.n_dims());
            let spacing = self.spacing_with(&buckets);
            nearest::NearestIndex { buckets, spacing }
        })
    }

    /// The bucket grid over the bin centres, built on first use.
    fn buckets(&self) -> &nearest::Buckets {
        &self.nearest_index().buckets
    }

    /// Drops cached dense kernels (`kernels`) and smoothing generators, the
    /// differential operators behind every smoothing (`operators`: neurospatial's
    /// cached properties). The nearest-bin index is O(n_bins), built once and
    /// never stale (an environment does not change), so nothing else is held.
    pub fn clear_cache(&self, kernels: bool, operators: bool) {
        if kernels {
            self.kernels.clear();
        }
        if operators {
            self.generators
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clear();
        }
    }

    /// How many dense kernels are cached.
    pub fn cached_kernels(&self) -> usize {
        self.kernels.len()
    }
}

impl Environment {
    /// The environment of the bins `keep` selects (one flag per bin), on the
    /// same layout: a grid keeps its edges and neighbourhood (0.6.0's subset
    /// of a grid is `from_grid_mask`); a hexagonal lattice or track keeps its
    /// cells and graph rule over the remaining bins.
    pub fn subset(&self, keep: &[bool]) -> Result<Environment> {
        if keep.len() != self.n_bins() {
            return Err(Error::invalid(format!(
                "the selection has {} flags for {} bins",
                keep.len(),
                self.n_bins()
            )));
        }
        if !keep.iter().any(|&k| k) {
            return Err(Error::invalid(
                "no bins selected: the subset would be empty",
            ));
        }
        let mut active = vec![false; self.layout.active().len()];
        for (b, &k) in keep.iter().enumerate() {
            active[self.bin_to_flat[b]] = k;
        }
        match &self.layout {
            Layout::Grid(g) => {
                let mut g = g.clone();
                g.active = active;
                Environment::with_neighbour_axes(g, self.neighbour_axes)
            }
            Layout::Hex(h) => {
                let mut h = h.clone();
                h.active = active;
                Environment::hexagonal(h)
            }
            Layout::Track(t) => {
                let mut t = t.clone();
                t.active = active;
                Environment::track(t)
            }
        }
    }

    /// A grid coarsened by an integer factor per axis, as 0.6.0's `rebin`:
    /// each axis is cut to a multiple of its factor, every factor-th edge is
    /// kept, every coarse bin is active, and neighbours are diagonal when some
    /// bin had more than 2n neighbours.
    pub fn rebin(&self, factors: &[usize]) -> Result<Environment> {
        let grid = self.grid("rebin")?;
        let n = grid.n_dims();
        let factors = match factors.len() {
            1 => vec![factors[0]; n],
            k if k == n => factors.to_vec(),
            k => {
                return Err(Error::invalid(format!(
                    "{k} factors for a {n}-D grid (give 1 or {n})"
                )))
            }
        };
        let mut edges = vec![];
        for (a, (&f, e)) in factors.iter().zip(&grid.edges).enumerate() {
            let cells = e.len() - 1;
            if f == 0 || f > cells {
                return Err(Error::invalid(format!(
                    "factor {f} on axis {a} must be 1 to {cells} (the bins along it)"
                )));
            }
            let kept = cells / f * f;
            edges.push(e[..=kept].iter().step_by(f).copied().collect());
        }
        let max_degree = (0..self.n_bins())
            .map(|b| self.graph.neighbors(b).len())
            .max()
            .unwrap_or(0);
        let axes = if max_degree > 2 * n {
            self.neighbour_axes.max(2).min(n)
        } else {
            1
        };
        Environment::with_neighbour_axes(Grid::with_edges(edges, true)?, axes)
    }
}
