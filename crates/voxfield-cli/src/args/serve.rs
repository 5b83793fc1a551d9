//! `voxfield serve` flags.

use std::path::PathBuf;

use clap::Args;

use super::RawArgs;

#[derive(Args, Debug)]
pub struct ServeArgs {
    /// Fields to serve: any path or URL the other verbs open (volumes of every
    /// format, .vxn, .vxr with --shape). Named by their file stem.
    pub sources: Vec<PathBuf>,
    /// A field with its name: NAME=SRC (repeatable).
    #[arg(long = "name", value_name = "NAME=SRC")]
    pub named: Vec<String>,
    /// Address to listen on. Off loopback a token is required (made and printed)
    /// unless --no-token.
    #[arg(long, default_value = "127.0.0.1")]
    pub bind: String,
    /// Port (0: any free port).
    #[arg(long, default_value_t = 8000)]
    pub port: u16,
    /// Require a token as the first URL segment: this one (8+ letters or digits),
    /// or a random one when given without a value.
    #[arg(long, num_args = 0..=1, default_missing_value = "", conflicts_with = "no_token")]
    pub token: Option<String>,
    /// Serve a non-loopback address without a token (anyone who reaches it reads the fields).
    #[arg(long)]
    pub no_token: bool,
    /// Chunk edge of every level, voxels (16-256).
    #[arg(long, default_value_t = 64)]
    pub chunk: usize,
    /// Zarr chunk encoding: raw, zstd or zstd:LEVEL.
    #[arg(long, default_value = "raw")]
    pub codec: String,
    /// Serve uint8 fields' precomputed chunks as JPEG of this quality (1-100; lossy).
    #[arg(long)]
    pub jpeg: Option<u8>,
    /// MiB of computed coarse-level chunks kept.
    #[arg(long, default_value_t = 512)]
    pub cache_mb: usize,
    /// MiB a field's render lattice may take (the finest level that fits is rendered).
    #[arg(long, default_value_t = 1024)]
    pub render_mb: usize,
    /// Requests computing at once (default: 2 per core).
    #[arg(long)]
    pub workers: Option<usize>,
    /// Seconds a request may wait and compute before it gets 503.
    #[arg(long, default_value_t = 60)]
    pub timeout: u64,
    #[command(flatten)]
    pub raw: RawArgs,
}
