//! `voxfield vectors` flags.

use std::path::PathBuf;

use super::parse::parse_f64;
use clap::Subcommand;

/// The `voxfield vectors` verbs.
#[derive(Subcommand, Debug)]
pub enum VectorsCommand {
    /// Write points from an (N, 3 + k) .npy or a LAS 1.0–1.4 file (both streamed), a
    /// CSV or a PLY, or
    /// streamlines from a TrackVis .trk, MRtrix .tck or TRX (.trx zip or directory), as a new zarr-vectors store
    /// (level 0; the k columns after the coordinates, the PLY's other vertex
    /// properties, or the TRK's scalars and properties are attributes).
    Write {
        input: PathBuf,
        #[arg(short, long)]
        out: PathBuf,
        /// points or polylines (the default follows the input: .trk/.tck/.trx are polylines).
        #[arg(long)]
        kind: Option<String>,
        /// zarr-vectors' chunk_shape (physical units per chunk).
        #[arg(long, value_delimiter = ',', value_parser = parse_f64)]
        chunk: Option<Vec<f64>>,
        /// zarr-vectors' bin_shape (a whole number of bins per chunk).
        #[arg(long, value_delimiter = ',', value_parser = parse_f64)]
        bin: Option<Vec<f64>>,
        /// Chunk cells per shard (N or X,Y,Z): Zarr v3 sharding, one file per shard
        /// instead of one per chunk cell (zarr-vectors' shard_shape).
        #[arg(long, value_delimiter = ',')]
        shard: Option<Vec<u64>>,
        /// Compressor after vlen-bytes on every per-chunk array, as zarr-vectors'
        /// compressor=: none (its default), zstd (level 0), blosc (zstd, bitshuffle, level 5) or gzip.
        #[arg(long, default_value = "none")]
        compressor: String,
        /// Names of the attribute columns after the coordinates.
        #[arg(long, value_delimiter = ',')]
        attributes: Option<Vec<String>>,
        /// The attribute column (or PLY property) holding each point's object id
        /// (whole numbers ≥ 0): written in zarr-vectors' object layout, readable
        /// with --objects.
        #[arg(long)]
        object_ids: Option<String>,
        /// Coordinates per point (default 3).
        #[arg(long, default_value_t = 3)]
        dims: usize,
    },
    /// Build coarser levels (zarr-vectors' per_object coarsening: shared
    /// metanodes, object ids kept, cross-level links).
    BuildPyramid {
        store: PathBuf,
        /// coarsen:sparsity per level, e.g. 2:1,2:4,2:4 (point clouds are never thinned).
        #[arg(long, value_delimiter = ',', required = true)]
        factors: Vec<String>,
        /// per_object (zarr-vectors 0.9.2: objects keep ids and paths through shared metanodes) or
        /// cross_object_metanode (the metanodes alone, as a point level without object ids).
        #[arg(long, default_value = "per_object")]
        method: String,
        /// random (a fresh draw per level among the surviving objects) or
        /// spatial_coverage (one object per occupied bin first).
        #[arg(long, default_value = "random")]
        thinning: String,
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// Carry vertex attributes to coarse levels: mean, sum, min, max, mode, count or first.
        #[arg(long)]
        agg: Option<String>,
        /// Cross-level links: explicit (+N and -N), implicit (+N) or none.
        #[arg(long, default_value = "explicit")]
        links: String,
        /// Deepest level delta linked (-1: all).
        #[arg(long, default_value_t = 1, allow_negative_numbers = true)]
        depth: i64,
    },
    /// Check a store against zarr-vectors' conformance levels (1 structure, 2 metadata,
    /// 3 consistency, 4 geometry conformance, 5 multiresolution; cumulative): every problem
    /// printed, exit status 1 when there is an error.
    Validate {
        store: PathBuf,
        #[arg(long, default_value_t = 3)]
        level: u8,
        /// The report as JSON (ok, level, passed, warnings, errors).
        #[arg(long)]
        json: bool,
    },
    /// Levels, vertex counts, bounds and attributes of a store.
    Info {
        store: PathBuf,
        #[arg(long)]
        json: bool,
    },
    /// The vertices of one level (all, or inside --bbox) as an (N, D[+k]) .npy or a
    /// PLY, or its polylines (those with a vertex inside --bbox) as a .trk, .tck or .trx.
    Read {
        store: PathBuf,
        #[arg(long, default_value_t = 0)]
        level: u64,
        /// min corner then max corner, inclusive: x0,y0,z0,x1,y1,z1.
        #[arg(long, value_delimiter = ',', value_parser = parse_f64, allow_hyphen_values = true)]
        bbox: Option<Vec<f64>>,
        /// Vertex attributes appended as float64 columns after the coordinates
        /// (for a .precomputed export: the properties shown; all by default).
        #[arg(long, value_delimiter = ',')]
        attributes: Option<Vec<String>>,
        /// .npy, .ply, .trk, .tck, .trx, or NAME.precomputed: a Neuroglancer precomputed
        /// annotation directory (points; polyline segments and graph edges as lines).
        #[arg(short, long)]
        out: PathBuf,
        /// Only these objects (ids, comma-separated), as zarr-vectors' objects=.
        #[arg(long, value_delimiter = ',', allow_negative_numbers = true)]
        objects: Option<Vec<i64>>,
        /// Only the objects of these groups (ids), as zarr-vectors' groups=.
        #[arg(long, value_delimiter = ',')]
        groups: Option<Vec<i64>>,
        /// A condition on a scalar vertex or object attribute, NAME OP VALUE with OP one of
        /// == != < <= > >= (e.g. --where 'intensity>0.5'); repeat to AND several.
        #[arg(long = "where", value_name = "CONDITION")]
        conditions: Vec<String>,
        /// Only vertices within a ball: x,y,z,radius (zarr-vectors' near=).
        #[arg(long, value_delimiter = ',', value_parser = parse_f64, allow_hyphen_values = true)]
        near: Option<Vec<f64>>,
        /// At most this many vertices, the first in reading order (zarr-vectors' limit=).
        #[arg(long)]
        limit: Option<usize>,
        /// Neuroglancer export: the most annotations a spatial-index cell shows.
        #[arg(long, default_value_t = 5000)]
        cell_limit: usize,
    },
}
