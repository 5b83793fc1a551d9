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

pub mod encoding;
pub mod file;
pub mod graph;
pub mod grid;
pub mod nearest;
pub mod scores;
pub mod smooth;
pub mod trajectory;

use std::sync::{Arc, Mutex, OnceLock};

pub use graph::Graph;
pub use grid::{Grid, Shaping};
pub use nearest::{Reach, TieBreak};
pub use scores::FieldOptions;
pub use smooth::{Generator, Mode, Operator};
pub use trajectory::Csr;
use voxfield_core::{Error, Result};

/// Bins over 1-3-D space with their connectivity graph.
#[derive(Debug)]
pub struct Environment {
    pub grid: Grid,
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
    /// Bucket grid over the centres for nearest-bin queries (O(n_bins), built once).
    buckets: OnceLock<nearest::Buckets>,
}

/// Generators by (operator, bandwidth bits), least recently built first.
type GeneratorCache = Mutex<Vec<((Operator, u64), Arc<Generator>)>>;

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
        let bin_to_flat: Vec<usize> = (0..grid.active.len()).filter(|&f| grid.active[f]).collect();
        if bin_to_flat.is_empty() {
            return Err(Error::invalid("the environment has no active bins"));
        }
        if bin_to_flat.len() > u32::MAX as usize {
            return Err(Error::invalid(format!(
                "{} active bins are more than this engine indexes (2^32)",
                bin_to_flat.len()
            )));
        }
        let mut flat_to_bin = vec![-1i64; grid.active.len()];
        for (b, &f) in bin_to_flat.iter().enumerate() {
            flat_to_bin[f] = b as i64;
        }
        let d = grid.n_dims();
        let mut centers = Vec::with_capacity(bin_to_flat.len() * d);
        for &f in &bin_to_flat {
            centers.extend(grid.center_of_flat(f));
        }
        let graph = Graph::grid(&grid, &bin_to_flat, &flat_to_bin, &centers, axes);
        Ok(Environment {
            grid,
            neighbour_axes: axes,
            bin_to_flat,
            flat_to_bin,
            centers,
            graph,
            generators: Mutex::new(vec![]),
            buckets: OnceLock::new(),
        })
    }

    /// Whether diagonal neighbours are joined (the full 3^n − 1 neighbourhood).
    pub fn diagonal(&self) -> bool {
        self.neighbour_axes == self.n_dims()
    }

    pub fn n_bins(&self) -> usize {
        self.bin_to_flat.len()
    }

    pub fn n_dims(&self) -> usize {
        self.grid.n_dims()
    }

    /// Centre of bin `b`.
    pub fn center(&self, b: usize) -> &[f64] {
        let d = self.n_dims();
        &self.centers[b * d..(b + 1) * d]
    }

    /// Area (length, volume) of each bin: the product of its actual widths.
    pub fn bin_sizes(&self) -> Vec<f64> {
        self.bin_to_flat
            .iter()
            .map(|&f| self.grid.size_of_flat(f))
            .collect()
    }

    /// The active bin containing `p`, or −1 (outside, on the top edge, in an
    /// inactive cell, or NaN): 0.6.0's half-open bins, in O(1).
    pub fn bin_at(&self, p: &[f64]) -> i64 {
        match self.grid.flat_at(p) {
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
        let g = Arc::new(Generator::new(self, op, bandwidth));
        let mut cache = self.generators.lock().expect("generator cache");
        if !cache.iter().any(|(k, _)| *k == key) {
            if cache.len() == GENERATOR_CACHE {
                cache.remove(0);
            }
            cache.push((key, g.clone()));
        }
        Ok(g)
    }

    /// The bucket grid over the bin centres, built on first use.
    fn buckets(&self) -> &nearest::Buckets {
        self.buckets
            .get_or_init(|| nearest::Buckets::new(&self.centers, self.n_dims()))
    }

    /// Drops cached smoothing generators.
    pub fn clear_cache(&self) {
        self.generators.lock().expect("generator cache").clear();
    }
}
