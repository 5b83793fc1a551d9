//! What a pyramid build is asked for, and what it reports.

use voxfield_core::{Error, Result};

use crate::store::Store;

/// Which cross-level links a build writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CrossLevel {
    None,
    /// `+N` only, in the finer level.
    Implicit,
    /// `+N` in the finer level and `-N` in the coarser one.
    Explicit,
}

/// How objects are chosen at a level with a sparsity factor above 1.
#[derive(Clone, Debug, PartialEq)]
pub enum Thinning {
    /// `round(alive / sparsity)` of the objects alive in the source level,
    /// drawn with seed `seed + level`.
    Random { seed: u64 },
    /// At least one alive object per occupied target bin of the objects'
    /// middle vertices, then random ones up to the same budget.
    SpatialCoverage { seed: u64 },
    /// The object rows to keep, per built level (`None`: all); how
    /// zarr-vectors' own draws are reproduced.
    Given(Vec<Option<Vec<usize>>>),
}

/// How vertex attributes reach coarse levels (zarr-vectors 0.9.2 drops them).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Aggregation {
    Mean,
    Sum,
    Min,
    Max,
    Mode,
    Count,
    First,
}

impl Aggregation {
    pub fn parse(s: &str) -> Result<Aggregation> {
        Ok(match s {
            "mean" => Aggregation::Mean,
            "sum" => Aggregation::Sum,
            "min" => Aggregation::Min,
            "max" => Aggregation::Max,
            "mode" => Aggregation::Mode,
            "count" => Aggregation::Count,
            "first" => Aggregation::First,
            _ => {
                return Err(Error::invalid(format!(
                    "aggregation {s}: mean, sum, min, max, mode, count or first"
                )))
            }
        })
    }
}

/// How a coarse level treats objects.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Method {
    /// zarr-vectors 0.9.2's: metanodes shared across objects, every kept
    /// object keeps its id and its path through them.
    #[default]
    PerObject,
    /// The metanodes alone: the kept objects' vertices merged per bin into
    /// one point level with no object index (a density summary of many
    /// streamlines or graphs; deeper levels coarsen it as points).
    CrossObjectMetanode,
}

impl Method {
    pub fn name(self) -> &'static str {
        match self {
            Method::PerObject => "per_object",
            Method::CrossObjectMetanode => "cross_object_metanode",
        }
    }
}

/// A pyramid build.
#[derive(Clone, Debug)]
pub struct PyramidOptions {
    pub method: Method,
    /// Per level: (coarsen factor ≥ 1, sparsity factor ≥ 1).
    pub factors: Vec<(f64, f64)>,
    pub cross_level: CrossLevel,
    /// Deepest level delta linked (1 = adjacent levels; -1 = all).
    pub depth: i64,
    pub thinning: Thinning,
    /// None reproduces zarr-vectors 0.9.2: no attributes at coarse levels.
    pub aggregation: Option<Aggregation>,
}

/// What one level of a build made.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LevelSummary {
    pub level: u64,
    pub vertices: usize,
    /// Objects kept (0 for a point cloud).
    pub objects: usize,
}

/// The deepest level delta linked into level `target`: as zarr-vectors,
/// adjacent links are written even at depth 0; -1 links every pair.
pub(super) fn deepest(o: &PyramidOptions, target: u64) -> u64 {
    if o.depth == -1 {
        target
    } else {
        (o.depth.max(1) as u64).min(target)
    }
}

/// Whether `fine`'s `+delta` family (and, explicit, the coarse `-delta`
/// mirror) is already in place.
pub(super) fn linked(store: &Store, fine: u64, delta: u64, storage: CrossLevel) -> bool {
    let has = |level: u64, name: String| {
        store
            .path
            .join(level.to_string())
            .join("links")
            .join(name)
            .join("zarr.json")
            .is_file()
    };
    has(fine, format!("+{delta}"))
        && (storage != CrossLevel::Explicit || has(fine + delta, format!("-{delta}")))
}
