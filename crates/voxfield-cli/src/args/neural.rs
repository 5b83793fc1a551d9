//! `voxfield compress` flags and its `meta-train` subcommand.

use std::path::PathBuf;

use super::common::RawArgs;
use super::parse::{parse_f64, parse_loss};
use clap::{Args, Subcommand};

/// `voxfield compress SRC -o OUT`'s options.
#[derive(Args, Debug)]
pub struct CompressArgs {
    /// Volume (any `voxfield info` opens) or RBF model (.vxr, with --shape).
    /// Required; checked after parsing because `meta-train` takes none (clap's
    /// subcommand_negates_reqs did not lift a positional's requirement here).
    pub path: Option<PathBuf>,
    #[command(flatten)]
    pub raw: RawArgs,
    /// Model file to write (required).
    #[arg(short, long)]
    pub out: Option<PathBuf>,
    /// Choose the network so the model file is at most native bytes / R (the
    /// source's shape × dtype size); explicit --log2-table/--levels/--width replace
    /// the sizes it picks, and the bound stays (a network that cannot fit is refused).
    #[arg(long, value_parser = parse_f64)]
    pub ratio: Option<f64>,
    /// Passes over every voxel.
    #[arg(long, default_value_t = 5)]
    pub epochs: usize,
    /// Stop once an epoch reaches this PSNR (dB, estimated from the training loss).
    #[arg(long, value_parser = parse_f64)]
    pub target_psnr: Option<f64>,
    /// Stop after this many seconds.
    #[arg(long, value_parser = parse_f64)]
    pub time_limit: Option<f64>,
    /// log2 of the hash table size per level (default 11; model size grows with it).
    #[arg(long)]
    pub log2_table: Option<u32>,
    /// Encoding levels (default 16).
    #[arg(long)]
    pub levels: Option<usize>,
    /// MLP width, 2 hidden layers (default 64; 32 with --ratio).
    #[arg(long)]
    pub width: Option<usize>,
    /// Hash-table storage: 2–8 quantise every entry in steps that cover the
    /// largest with 2^(bits−1) − 1 codes, range-coded; 16 stores f16. With
    /// --ratio: the finest step (down to 8 bits') whose file fits.
    #[arg(long, default_value_t = 6)]
    pub bits: u32,
    /// Epochs of MLP-only training on the quantised tables, after the others.
    #[arg(long, default_value_t = 1)]
    pub finetune_epochs: usize,
    /// Training objective: l2 (mean squared error, what PSNR measures) or l1
    /// (mean absolute error).
    #[arg(long, default_value = "l2", value_parser = parse_loss)]
    pub loss: voxfield::neural::Loss,
    /// Adds W × the mean squared error of the network's central-difference
    /// gradients against the volume's (numpy.gradient) to the loss: better
    /// gradients for a lower PSNR; training takes about twice as long.
    /// `voxfield compare` reports the gradient MSE.
    #[arg(long, value_name = "W", default_value_t = 0.0)]
    pub grad_loss: f32,
    /// Weight of the rate term in the quantisation-aware epochs: each table
    /// entry's estimated bits (a Laplace model per level), priced at what
    /// quantisation distortion trades per bit, times W (default 4; 0: none;
    /// refused with --bits 16).
    #[arg(long, value_name = "W")]
    pub rate_weight: Option<f32>,
    /// Stop after this many Adam steps (for learning curves; with --epochs
    /// as the upper bound).
    #[arg(long)]
    pub steps: Option<u64>,
    /// Samples per Adam step (default 65536, or fewer on small volumes so an
    /// epoch takes at least 64 steps; never below 256).
    #[arg(long)]
    pub batch: Option<usize>,
    /// Memory for training samples, in MiB (16 bytes per voxel). A volume that
    /// needs more is read in several passes per epoch, each a random share of
    /// every voxel, so batches stay uniform over the volume.
    #[arg(long, default_value_t = 1024)]
    pub memory_mb: usize,
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    #[arg(long)]
    pub threads: Option<usize>,
    /// Guarantee the same model bytes for the same seed and options. Training
    /// is reproducible for any thread count (gradients are summed in a fixed
    /// order); this flag refuses what is not: stopping on --time-limit.
    #[arg(long)]
    pub deterministic: bool,
    /// Start from this initialisation (from `voxfield compress meta-train`); its
    /// network shape is used.
    #[arg(long)]
    pub init: Option<PathBuf>,
}

/// `voxfield compress`'s subcommands.
#[derive(Subcommand, Debug)]
pub enum CompressCommand {
    /// Reptile meta-learning of an initialisation for --init over volumes of one
    /// kind (co-registered, e.g. scans of one template space): each outer step
    /// runs on one volume the Adam steps `compress --init` will run.
    #[command(name = "meta-train")]
    MetaTrain {
        /// Volumes to learn from (opened as `voxfield info` opens them).
        #[arg(required = true)]
        volumes: Vec<PathBuf>,
        /// Initialisation file to write (.vxn).
        #[arg(short, long)]
        out: PathBuf,
        /// Adam steps on one volume per outer step (K).
        #[arg(long, default_value_t = 16)]
        inner_steps: usize,
        /// Outer steps (M).
        #[arg(long, default_value_t = 200)]
        meta_steps: usize,
        /// Outer step size at the start, decaying linearly to 0.
        #[arg(long, default_value_t = 1.0)]
        meta_lr: f32,
        #[arg(long)]
        log2_table: Option<u32>,
        #[arg(long)]
        levels: Option<usize>,
        #[arg(long)]
        width: Option<usize>,
        /// Samples per inner Adam step (default: what `compress` takes for the
        /// volume: 65536, fewer on small volumes).
        #[arg(long)]
        batch: Option<usize>,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        #[arg(long)]
        threads: Option<usize>,
    },
}
