//! `voxfield env rate-maps | info`: firing-rate maps of many units from a
//! tracking table and spike trains, and environment files.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use serde_json::json;
use voxfield::env::{
    p_value_greater, sparsity, spatial_information, Environment, Grid, Kde, Layout, Metric,
    OccupancyOptions, RateMaps, ScoreSet, Shaping, MAX_SHUFFLED_MAPS,
};
use voxfield::Rng;
use voxfield_io::npy;
use voxfield_io::npz::Npz;

use crate::args::{Colormap, EnvCommand, RateMapsArgs, ScoreName};
use crate::work::{catch_interrupts, exit_if_interrupted, progress, reporter, set_threads, watch};
use crate::{picture, points};

pub fn run(cmd: EnvCommand) -> Result<()> {
    match cmd {
        EnvCommand::RateMaps(args) => {
            let RateMapsArgs {
                positions,
                spikes,
                bin_size,
                bandwidth,
                out,
                png,
                env,
                min_occupancy,
                max_gap,
                bin_count_threshold,
                scores,
                shuffles,
                min_shift,
                seed,
                json,
                threads,
            } = *args;
            set_threads(threads)?;
            let o = RateOptions {
                bin_size,
                bandwidth,
                min_occupancy,
                max_gap,
                threshold: bin_count_threshold,
                scores,
                shuffles,
                min_shift,
                seed,
            };
            rate_maps(
                &positions,
                &spikes,
                &o,
                &out,
                png.as_deref(),
                env.as_deref(),
                json,
            )
        }
        EnvCommand::Info { file, json } => info(&file, json),
    }
}

struct RateOptions {
    bin_size: Vec<f64>,
    bandwidth: f64,
    min_occupancy: f64,
    max_gap: f64,
    threshold: usize,
    scores: Vec<ScoreName>,
    shuffles: usize,
    min_shift: Option<f64>,
    seed: Option<u64>,
}

/// Scores beyond information and sparsity, with shuffle p-values: per score
/// name, per unit, (score, p-value or None).
type Extra = Vec<(&'static str, Vec<(f64, Option<f64>)>)>;

/// `--scores` and `--shuffles`: the engine's shuffle scoring over the same
/// maps (its observed maps are the ones written), shifts drawn from `--seed`.
fn extra_scores(
    env: &Environment,
    trains: &[&[f64]],
    times: &[f64],
    coords: &[f64],
    occ: &OccupancyOptions,
    o: &RateOptions,
) -> Result<Extra> {
    if o.shuffles == 0 && (o.min_shift.is_some() || o.seed.is_some()) {
        bail!("--min-shift and --seed apply to shuffles: give --shuffles N");
    }
    if o.scores.is_empty() && o.shuffles == 0 {
        return Ok(vec![]);
    }
    // Refused before any shift is drawn: the shifts alone would be 8 bytes a map.
    let maps_asked = trains.len().checked_mul(o.shuffles);
    if maps_asked.is_none_or(|m| m > MAX_SHUFFLED_MAPS) {
        bail!(
            "--shuffles {}: {} units x {} shuffles is over {MAX_SHUFFLED_MAPS} shuffled maps; shuffle fewer units or fewer times",
            o.shuffles,
            trains.len(),
            o.shuffles
        );
    }
    let min_shift = o.min_shift.unwrap_or(20.0);
    let span = times.last().copied().unwrap_or(0.0) - times.first().copied().unwrap_or(0.0);
    if o.shuffles > 0 && !(min_shift >= 0.0 && span - min_shift > min_shift) {
        bail!(
            "--min-shift {min_shift} s leaves no shift in a session of {span} s (needs 0 <= min-shift < session / 2)"
        );
    }
    let set = ScoreSet {
        information: Some(2.0),
        sparsity: true,
        grid: o.scores.contains(&ScoreName::Grid).then_some((0.2, 0.5)),
        border: o
            .scores
            .contains(&ScoreName::Border)
            .then_some((0.3, 0.0, Metric::Geodesic)),
    };
    let mut rng = Rng(o.seed.unwrap_or(0));
    let shifts: Vec<f64> = (0..trains.len() * o.shuffles)
        .map(|_| min_shift + (span - 2.0 * min_shift) * rng.unit())
        .collect();
    let maps = RateMaps {
        occupancy: occ,
        kernel: Kde::Diffusion,
        bandwidth: o.bandwidth,
        min_occupancy: o.min_occupancy,
    };
    catch_interrupts();
    let bar = progress((trains.len() * (o.shuffles + 1)) as u64, "shuffles");
    let report = reporter(&bar);
    let done = env.shuffle_scores(trains, times, coords, &maps, &shifts, &set, &watch(&report));
    bar.finish_and_clear();
    let done = done?;
    let (units, n) = (trains.len(), o.shuffles);
    Ok(done
        .names
        .iter()
        .enumerate()
        .map(|(q, &name)| {
            let per_unit = (0..units)
                .map(|u| {
                    let obs = done.observed[q * units + u];
                    let null = &done.null[(q * units + u) * n..(q * units + u + 1) * n];
                    (obs, (n > 0).then(|| p_value_greater(obs, null)).flatten())
                })
                .collect();
            (name, per_unit)
        })
        .collect())
}

/// Unit names and spike times from an `.npz` (one 1-D array per unit) or one `.npy`.
fn load_spikes(path: &Path) -> Result<Vec<(String, Vec<f64>)>> {
    voxfield_io::safety::regular_input(path)?;
    let one = |name: &str, a: npy::NpyArray| -> Result<(String, Vec<f64>)> {
        if a.shape.len() != 1 {
            bail!(
                "{}: unit {name:?} must be a 1-D array of spike times, got shape {:?}",
                path.display(),
                a.shape
            );
        }
        Ok((name.to_string(), a.data))
    };
    if path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("npy"))
    {
        let stem = path.file_stem().unwrap_or_default().to_string_lossy();
        return Ok(vec![one(&stem, npy::read_array(path)?)?]);
    }
    let npz = Npz::open(path)?;
    let mut units = vec![];
    for member in npz.names() {
        let a = npy::parse_array(&npz.read(member)?)
            .map_err(|m| anyhow::anyhow!("{}: member {member}: {m}", path.display()))?;
        units.push(one(member.trim_end_matches(".npy"), a)?);
    }
    if units.is_empty() {
        bail!("{}: no units (the archive is empty)", path.display());
    }
    Ok(units)
}

fn rate_maps(
    positions: &Path,
    spikes: &Path,
    o: &RateOptions,
    out: &Path,
    png: Option<&Path>,
    env_out: Option<&Path>,
    json: bool,
) -> Result<()> {
    for p in [Some(out), png, env_out].into_iter().flatten() {
        voxfield_io::safety::check_not_input(p, &[positions, spikes])?;
    }
    let t0 = Instant::now();
    let table = points::load_table(positions)?;
    let d = table.cols.saturating_sub(1);
    if !(1..=3).contains(&d) || table.rows() == 0 {
        bail!(
            "{}: tracking must be (N, 1 + d) with times in column 0 and 1-3 coordinates, got {} rows of {} columns",
            positions.display(),
            table.rows(),
            table.cols
        );
    }
    let times: Vec<f64> = table.data.iter().step_by(table.cols).copied().collect();
    let coords: Vec<f64> = table
        .data
        .chunks_exact(table.cols)
        .flat_map(|r| r[1..].iter().copied())
        .collect();
    let units = load_spikes(spikes)?;
    let grid = Grid::from_samples(
        &coords,
        d,
        &o.bin_size,
        Some(o.threshold),
        Shaping::default(),
    )
    .with_context(|| format!("binning {}", positions.display()))?;
    let env = Environment::new(grid, true)?;
    let occ_opts = OccupancyOptions {
        max_gap: Some(o.max_gap),
        ..OccupancyOptions::default()
    };
    let trains: Vec<&[f64]> = units.iter().map(|(_, s)| s.as_slice()).collect();
    let (counts, occupancy) = env
        .spike_counts(&trains, &times, &coords, &occ_opts)
        .with_context(|| format!("{} with {}", positions.display(), spikes.display()))?;
    let rates = env.kde_rates(
        Kde::Diffusion,
        &counts,
        &occupancy,
        o.bandwidth,
        o.min_occupancy,
    )?;
    let extra = extra_scores(&env, &trains, &times, &coords, &occ_opts, o);
    if extra.is_err() {
        exit_if_interrupted(out);
    }
    let extra = extra.with_context(|| format!("scoring {}", spikes.display()))?;
    let n = env.n_bins();
    // All outputs or none: the panel (the one most likely to be refused) first,
    // and whatever was written is removed when a later output fails.
    let mut written: Vec<PathBuf> = vec![];
    let all = (|| -> Result<()> {
        if let Some(p) = png {
            panel(&env, &rates, units.len(), p)?;
            written.push(p.to_path_buf());
        }
        npy::write_npy(out, &[units.len(), n], &rates)?;
        written.push(out.to_path_buf());
        if let Some(e) = env_out {
            env.to_file(e)?;
        }
        Ok(())
    })();
    if all.is_err() {
        for p in &written {
            let _ = std::fs::remove_file(p);
        }
    }
    all?;
    let secs = t0.elapsed().as_secs_f64();
    let rows: Vec<serde_json::Value> = units
        .iter()
        .enumerate()
        .map(|(u, (name, s))| {
            let r = &rates[u * n..(u + 1) * n];
            let peak = peak(r);
            let mut row = json!({"unit": name, "spikes": s.len(), "peak_hz": peak,
                   "information_bits_per_spike": spatial_information(r, &occupancy, 2.0),
                   "sparsity": sparsity(r, &occupancy)});
            for (score, per_unit) in &extra {
                let (v, p) = per_unit[u];
                let key = match *score {
                    "spatial_information" => "information",
                    s => s,
                };
                if !matches!(*score, "spatial_information" | "sparsity") {
                    row[*score] = json!(finite_or_null(v));
                }
                if o.shuffles > 0 {
                    row[format!("p_{key}")] = json!(p);
                }
            }
            row
        })
        .collect();
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&json!({"n_bins": n, "grid_shape": env.layout.shape(),
                "seconds_tracked": occupancy.iter().sum::<f64>(), "units": rows}))?
        );
    } else {
        let columns: Vec<String> = rows.first().map_or(vec![], |r| {
            r.as_object()
                .map(|o| o.keys().skip(5).cloned().collect())
                .unwrap_or_default()
        });
        print!(
            "{:<16} {:>8} {:>9} {:>12} {:>9}",
            "unit", "spikes", "peak Hz", "bits/spike", "sparsity"
        );
        for c in &columns {
            print!(" {c:>12}");
        }
        println!();
        for r in &rows {
            print!(
                "{:<16} {:>8} {:>9.3} {:>12.4} {:>9.4}",
                r["unit"].as_str().unwrap_or(""),
                r["spikes"],
                r["peak_hz"].as_f64().unwrap_or(f64::NAN),
                r["information_bits_per_spike"].as_f64().unwrap_or(f64::NAN),
                r["sparsity"].as_f64().unwrap_or(f64::NAN)
            );
            for c in &columns {
                print!(" {:>12.4}", r[c].as_f64().unwrap_or(f64::NAN));
            }
            println!();
        }
    }
    eprintln!(
        "voxfield: {} units over {n} bins ({:?} grid, {:.1} s tracked) in {:.0} ms -> {}",
        units.len(),
        env.layout.shape(),
        occupancy.iter().sum::<f64>(),
        secs * 1e3,
        out.display()
    );
    Ok(())
}

/// A JSON number, or null for NaN and infinities (JSON has neither).
fn finite_or_null(v: f64) -> Option<f64> {
    v.is_finite().then_some(v)
}

/// The highest rate of a map (NaN bins ignored; 0 for none).
fn peak(rates: &[f64]) -> f64 {
    rates
        .iter()
        .copied()
        .filter(|v| !v.is_nan())
        .fold(0.0, f64::max)
}

/// Pixels per panel tile at most (so a panel of many units stays a sane PNG).
const MAX_PANEL_PIXELS: usize = 1 << 24;

/// A panel of 2-D rate maps (x to the right, y up), each scaled to its own
/// peak; black where a bin is outside the arena or has no rate.
fn panel(env: &Environment, rates: &[f64], units: usize, path: &Path) -> Result<()> {
    if env.n_dims() != 2 {
        bail!(
            "--png {}: a panel needs a 2-D arena, this one is {}-D",
            path.display(),
            env.n_dims()
        );
    }
    let g = env.grid("a rate-map panel")?;
    let (nx, ny) = (g.shape[0], g.shape[1]);
    let n = env.n_bins();
    let cols = (units as f64).sqrt().ceil() as usize;
    let rows = units.div_ceil(cols);
    let scale = (256 / nx.max(ny)).max(1);
    let (tw, th) = (nx * scale + 2, ny * scale + 2);
    let (w, h) = (cols * tw, rows * th);
    if w * h > MAX_PANEL_PIXELS {
        bail!(
            "--png {}: a panel of {w}×{h} pixels is too large",
            path.display()
        );
    }
    let mut px = vec![f32::NAN; w * h];
    for u in 0..units {
        let r = &rates[u * n..(u + 1) * n];
        let peak = peak(r);
        let (ox, oy) = ((u % cols) * tw + 1, (u / cols) * th + 1);
        for (b, &v) in r.iter().enumerate() {
            let (i, j) = {
                let f = env.bin_to_flat[b];
                (f / ny, f % ny)
            };
            let value = if peak > 0.0 { (v / peak) as f32 } else { 0.0 };
            for dy in 0..scale {
                for dx in 0..scale {
                    let (x, y) = (ox + i * scale + dx, oy + (ny - 1 - j) * scale + dy);
                    px[y * w + x] = value;
                }
            }
        }
    }
    picture::write_png(path, &px, w, h, [0.0, 1.0], Colormap::Viridis)
}

fn info(file: &Path, json: bool) -> Result<()> {
    let env = Environment::from_file(file)?;
    let n_edges = env.graph.nbrs.len() / 2;
    let d = env.n_dims();
    let ranges: Vec<[f64; 2]> = (0..d)
        .map(|a| {
            let xs = env.centers.iter().skip(a).step_by(d).copied();
            [
                xs.clone().fold(f64::INFINITY, f64::min),
                xs.fold(f64::NEG_INFINITY, f64::max),
            ]
        })
        .collect();
    let measure = env.bin_sizes().iter().sum::<f64>();
    let (kind, detail) = match &env.layout {
        Layout::Grid(g) => ("grid", grid_detail(g)),
        Layout::Hex(h) => (
            "hexagonal",
            json!({"hexagon_width": h.width, "rows": h.rows, "columns": h.cols}),
        ),
        Layout::Track(t) => (
            "track",
            json!({"track_edges": t.order.len(), "linear_length": t.edges[t.edges.len() - 1]}),
        ),
    };
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&json!({
                "layout": kind, "n_dims": d, "n_bins": env.n_bins(), "shape": env.layout.shape(),
                "centre_ranges": ranges, "n_edges": n_edges, "neighbour_axes": env.neighbour_axes,
                "area": measure, "detail": detail}))?
        );
        return Ok(());
    }
    println!("{}: {d}-D {kind} environment", file.display());
    println!(
        "  bins:   {} active of {} cells {:?}",
        env.n_bins(),
        env.layout.active().len(),
        env.layout.shape()
    );
    match &env.layout {
        Layout::Grid(g) => {
            for (a, e) in g.edges.iter().enumerate() {
                let w = &detail["bin_widths_min_max"][a];
                println!(
                    "  axis {a}: {} .. {} in {} bins of width {}",
                    e[0],
                    e[e.len() - 1],
                    e.len() - 1,
                    if w[0] == w[1] {
                        format!("{}", w[0])
                    } else {
                        format!("{} to {}", w[0], w[1])
                    }
                );
            }
            println!(
                "  graph:  {n_edges} edges ({} neighbours per interior bin)",
                neighbourhood_size(d, env.neighbour_axes)
            );
        }
        Layout::Hex(h) => {
            println!(
                "  hexagons {} wide, {} rows × {} columns",
                h.width, h.rows, h.cols
            );
            println!("  graph:  {n_edges} edges (6 neighbours per interior bin)");
        }
        Layout::Track(t) => {
            println!(
                "  {} track edges, {} long in linear position",
                t.order.len(),
                t.edges[t.edges.len() - 1]
            );
            println!("  graph:  {n_edges} edges");
        }
    }
    println!(
        "  {}: {measure}",
        if d == 1 || kind == "track" {
            "length"
        } else if d == 2 {
            "area"
        } else {
            "volume"
        }
    );
    Ok(())
}

/// A grid's bin widths per axis (smallest and largest), equal within 1e-12.
fn grid_detail(g: &Grid) -> serde_json::Value {
    let widths: Vec<[f64; 2]> = g
        .edges
        .iter()
        .map(|e| {
            let w: Vec<f64> = e.windows(2).map(|p| p[1] - p[0]).collect();
            let (lo, hi) = (
                w.iter().copied().fold(f64::INFINITY, f64::min),
                w.iter().copied().fold(0.0, f64::max),
            );
            if (hi - lo).abs() <= 1e-12 * hi.abs() {
                [lo, lo]
            } else {
                [lo, hi]
            }
        })
        .collect();
    json!({"bin_widths_min_max": widths})
}

/// Neighbours of an interior cell when neighbours differ in at most `axes` of `n` axes.
fn neighbourhood_size(n: usize, axes: usize) -> usize {
    // Σ_k C(n, k) 2^k over k = 1..=axes.
    (1..=axes)
        .map(|k| {
            let c: usize = (0..k).fold(1, |c, i| c * (n - i) / (i + 1));
            c << k
        })
        .sum()
}
