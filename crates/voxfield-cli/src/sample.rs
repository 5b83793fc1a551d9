//! `voxfield sample`: any field at a list of points.

use std::io::Write;
use std::path::Path;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use voxfield::ChunkCache;
use voxfield::{evaluate, OutElem, PointList};
use voxfield::{DType, Field};
use voxfield_io::{npy, NpyElement};

use crate::args::{RawArgs, SamplingArgs};
use crate::field_source::{with_out, Source};
use crate::work::{catch_interrupts, exit_if_interrupted, interrupted, progress, set_threads};

pub(crate) fn sample(
    path: &Path,
    raw: &RawArgs,
    points_path: &Path,
    out: &Path,
    all_index: Option<&str>,
    s: &SamplingArgs,
) -> Result<()> {
    set_threads(s.threads)?;
    let t0 = Instant::now();
    let mut raw = raw.clone();
    if let Some(name) = all_index {
        // The axis swept need not be chosen: open at its index 0.
        let req = raw.index.get_or_insert_with(Default::default);
        if req.positional.is_empty() && !req.named.iter().any(|(n, _)| n == name) {
            req.named.push((name.to_string(), 0));
        }
    }
    let raw = &raw;
    voxfield_io::safety::check_not_input(out, &[path, points_path])?;
    let source = Source::open(path, raw)?;
    let dt = source.output_dtype(s)?;
    let pts = source.load_points(points_path)?;
    let n = pts.len() / 3;
    let t1 = Instant::now();
    match (all_index, &source) {
        (None, _) => {
            let f = source.field(s)?;
            with_out!(dt, |O| {
                let vals = sample_points::<O>(f.as_ref(), &pts)?;
                npy::write_npy(out, &[n], &vals)?;
            })
        }
        (Some(name), Source::Opened(voxfield::Source::Volume(src))) => {
            let axes = &src.info().axes;
            let a = axes
                .axes
                .iter()
                .position(|x| x.name == name)
                .filter(|a| !axes.spatial.contains(a))
                .with_context(|| {
                    format!(
                        "--all-index {name}: no non-spatial axis of that name ({})",
                        axes.describe()
                    )
                })?;
            let len = axes.axes[a].len;
            let mut opts = raw.open_options()?;
            with_out!(dt, |O| {
                // Streamed index by index: the output may not fit in memory
                // (the axis length comes from the file), but must fit on disk.
                let bytes = (len as u64)
                    .checked_mul(n as u64)
                    .and_then(|v| v.checked_mul(std::mem::size_of::<O>() as u64))
                    .with_context(|| {
                        format!("--all-index {name}: {len} × {n} values are too many")
                    })?;
                voxfield_io::safety::check_free_space(out, bytes)?;
                catch_interrupts();
                let bar = progress(len as u64, &format!("sampling every {name}"));
                let mut failed = None;
                let written = npy::write_atomic(out, |w| {
                    w.write_all(&npy::header_bytes(O::DESCR, &[len, n]))?;
                    let mut buf = vec![];
                    for i in 0..len {
                        if interrupted() {
                            return Err(std::io::Error::other("interrupted"));
                        }
                        bar.inc(1);
                        opts.index = index_at(axes, a, i);
                        let row = (|| -> Result<Vec<O>> {
                            let one = voxfield::open(path, &opts)?;
                            let cache = ChunkCache::new(s.cache_mb.saturating_mul(1 << 20));
                            let f = voxfield::field(one.as_ref(), &s.options(), &cache)?;
                            sample_points::<O>(f.as_ref(), &pts)
                        })();
                        match row {
                            Ok(row) => {
                                buf.clear();
                                row.into_iter().for_each(|v| v.write_le(&mut buf));
                                w.write_all(&buf)?;
                            }
                            Err(e) => {
                                failed = Some(e);
                                return Err(std::io::Error::other("sampling stopped"));
                            }
                        }
                    }
                    Ok(())
                });
                bar.finish_and_clear();
                exit_if_interrupted(out);
                if let Some(e) = failed {
                    return Err(e);
                }
                written?;
            })
        }
        (Some(_), _) => {
            bail!("--all-index applies to N-D volumes, not to an RBF model")
        }
    }
    source.warn_after_reading();
    eprintln!(
        "voxfield: sampled {n} points of {} ({}) in {:.1} ms ({:.1} ms with loading) -> {}",
        path.display(),
        s.options().describe(source.kind()),
        t1.elapsed().as_secs_f64() * 1e3,
        t0.elapsed().as_secs_f64() * 1e3,
        out.display()
    );
    Ok(())
}

/// The index request that selects `axes`' current indices with axis `a` at `i`.
pub(crate) fn index_at(axes: &voxfield::Axes, a: usize, i: usize) -> voxfield::IndexRequest {
    voxfield::IndexRequest {
        named: axes
            .others()
            .map(|b| {
                (
                    axes.axes[b].name.clone(),
                    if b == a { i } else { axes.index[b] },
                )
            })
            .collect(),
        positional: vec![],
    }
}

pub(crate) fn sample_points<O: OutElem + NpyElement>(f: &dyn Field, pts: &[f64]) -> Result<Vec<O>> {
    const CHUNK: usize = 1 << 20;
    let n = pts.len() / 3;
    let mut vals = vec![O::default(); n];
    let bar = progress(n as u64, "sampling");
    for (c, o) in vals.chunks_mut(CHUNK).enumerate() {
        let p = &pts[3 * c * CHUNK..3 * (c * CHUNK + o.len())];
        evaluate(f, &PointList::new(p)?, o)?;
        bar.inc(o.len() as u64);
    }
    bar.finish_and_clear();
    Ok(vals)
}
