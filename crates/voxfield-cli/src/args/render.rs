//! `voxfield render` flags: mode, camera, transfer function, output.

use clap::Args;

use super::parse::{parse_f64, parse_size2};
use super::SourceArgs;

#[derive(Args, Debug, Clone)]
pub struct RenderArgs {
    #[command(flatten)]
    pub source: SourceArgs,
    /// Output: .png (8-bit; grey for mip/minip/mean with the gray colormap,
    /// RGBA for dvr/iso), .apng (animated with --frames), or .npy (float32: (H,W)
    /// for mip/minip/mean, (H,W,4) premultiplied RGBA for dvr/iso; (N,...) with --frames).
    #[arg(short, long)]
    pub out: std::path::PathBuf,
    /// dvr (emission–absorption), mip, minip, mean, or iso (with --iso).
    #[arg(long, default_value = "dvr")]
    pub mode: String,
    /// Isosurface level (mode iso).
    #[arg(long, allow_hyphen_values = true, value_parser = parse_f64)]
    pub iso: Option<f64>,
    /// Look along an index axis: axis0, axis1, axis2, -axis0, -axis1, -axis2.
    /// Rows follow the lower-numbered remaining axis, columns the higher. With
    /// no --size and no angles: one pixel per voxel, on voxel centres.
    #[arg(long, default_value = "axis0", allow_hyphen_values = true)]
    pub view: String,
    /// Orbit the field's centre: degrees about the picture's vertical.
    #[arg(long, default_value_t = 0.0, allow_hyphen_values = true, value_parser = parse_f64)]
    pub azimuth: f64,
    /// Degrees the camera rises (then looks down).
    #[arg(long, default_value_t = 0.0, allow_hyphen_values = true, value_parser = parse_f64)]
    pub elevation: f64,
    /// Degrees the picture turns about the view direction.
    #[arg(long, default_value_t = 0.0, allow_hyphen_values = true, value_parser = parse_f64)]
    pub roll: f64,
    /// ortho or perspective.
    #[arg(long, default_value = "ortho")]
    pub projection: String,
    /// Perspective field of view, degrees.
    #[arg(long, default_value_t = 30.0, value_parser = parse_f64)]
    pub fov: f64,
    /// Magnification (> 1: closer).
    #[arg(long, default_value_t = 1.0, value_parser = parse_f64)]
    pub zoom: f64,
    /// Width,height in pixels (default: the voxel grid for a plain axis view, else 512,512).
    #[arg(long, value_parser = parse_size2)]
    pub size: Option<[usize; 2]>,
    /// The camera works in world coordinates (through the source's affine).
    #[arg(long)]
    pub world: bool,
    /// Value window LO,HI (default: the field's value range). Checked by the
    /// engine, as Python's `window=` is.
    #[arg(long, allow_hyphen_values = true, value_parser = super::parse::parse_list::<2>)]
    pub window: Option<[f64; 2]>,
    /// gray, viridis, magma, inferno, plasma, cividis (matplotlib's tables).
    /// Pictures only (refused with .npy of mip/minip/mean; default gray).
    #[arg(long)]
    pub colormap: Option<String>,
    /// Opacity per voxel against the windowed value (0..1), piecewise linear:
    /// `v0:a0,v1:a1,...` (default 0:0,1:1, a ramp).
    #[arg(long)]
    pub opacity: Option<String>,
    /// Sample spacing along rays, in voxels (opacity is corrected for it).
    #[arg(long, default_value_t = 1.0, value_parser = parse_f64)]
    pub step: f64,
    /// Gradient (Phong) shading of dvr samples.
    #[arg(long)]
    pub shading: bool,
    /// Background: black (default), white, none (transparent), or R,G,B in 0..1.
    /// Pictures only (refused with .npy).
    #[arg(long)]
    pub background: Option<String>,
    /// A turntable of N frames (azimuth steps of 360/N), as an animated PNG or an (N,...) .npy.
    #[arg(long)]
    pub frames: Option<usize>,
    /// Evaluate the field at every sample (a neural model's network, a
    /// volume's interpolation) instead of reading its voxels into a lattice first.
    #[arg(long)]
    pub direct: bool,
    /// Memory the lattice may take, MiB (default 4096; not with --direct).
    #[arg(long)]
    pub memory_mb: Option<usize>,
    /// RBF models: grid points along the longest side of the samples' box (default 128).
    #[arg(long)]
    pub rbf_grid: Option<usize>,
    #[arg(long)]
    pub threads: Option<usize>,
    /// Print what was done as JSON (stdout).
    #[arg(long)]
    pub json: bool,
}
