//! `voxfield slice`: an oblique plane or slab of any field, to .png or streamed .npy.

use std::path::Path;
use std::time::Instant;

use anyhow::{bail, Result};
use voxfield::{evaluate_plane, OutElem, Plane, Reduce};
use voxfield::{DType, Field};
use voxfield_io::{npy, NpyElement};

use crate::args::{PictureArgs, PlaneArgs, RawArgs, SamplingArgs};
use crate::field_source::{auto_level, with_out, Source};
use crate::picture;
use crate::work::{catch_interrupts, exit_if_interrupted, interrupted, progress, set_threads};

/// Rows of `plane` evaluated per band: about 1M pixels (enough parallel tiles
/// per band to keep every core busy), a multiple of 16.
pub(crate) fn band_rows(plane: &Plane) -> usize {
    ((1 << 20) / plane.nu.max(1)).clamp(16, 4096) / 16 * 16
}

/// Streams a plane (or slab) to an .npy band by band: memory is one band,
/// whatever the output's size; Ctrl-C stops between bands (no file is left).
pub(crate) fn write_plane_npy<O: OutElem + NpyElement>(
    f: &dyn Field,
    plane: &Plane,
    depths: &[f64],
    reduce: Reduce,
    out: &Path,
) -> Result<()> {
    use std::io::Write;
    catch_interrupts();
    let rows = band_rows(plane);
    let bar = progress(plane.nv as u64, "slicing (rows)");
    let mut band_vals: Vec<O> = Vec::new();
    let result = npy::write_atomic(out, |w| {
        w.write_all(&npy::header_bytes(O::DESCR, &[plane.nv, plane.nu]))?;
        for r0 in (0..plane.nv).step_by(rows) {
            if interrupted() {
                return Err(std::io::Error::other("interrupted"));
            }
            let band = plane.tile(0, r0, plane.nu, rows.min(plane.nv - r0));
            band_vals.clear();
            band_vals.resize(band.nu * band.nv, O::default());
            evaluate_plane(f, &band, depths, reduce, &mut band_vals)
                .map_err(std::io::Error::other)?;
            O::write_all_le(&band_vals, w)?;
            bar.inc(band.nv as u64);
        }
        Ok(())
    });
    bar.finish_and_clear();
    exit_if_interrupted(out);
    Ok(result?)
}

/// Evaluates a plane (or slab) in bands of rows, so long work shows progress.
pub(crate) fn plane_values<O: OutElem>(
    f: &dyn Field,
    plane: &Plane,
    depths: &[f64],
    reduce: Reduce,
) -> Result<Vec<O>> {
    let rows = band_rows(plane);
    let mut vals = vec![O::default(); plane.nu * plane.nv];
    let bar = progress(plane.nv as u64, "slicing (rows)");
    for (b, o) in vals.chunks_mut(rows * plane.nu).enumerate() {
        let band = plane.tile(0, b * rows, plane.nu, o.len() / plane.nu);
        evaluate_plane(f, &band, depths, reduce, o)?;
        bar.inc(band.nv as u64);
    }
    bar.finish_and_clear();
    Ok(vals)
}

pub(crate) fn is_png(p: &Path) -> bool {
    p.extension().is_some_and(|e| e.eq_ignore_ascii_case("png"))
}

pub(crate) fn slice(
    path: &Path,
    raw: &RawArgs,
    pa: &PlaneArgs,
    out: &Path,
    s: &SamplingArgs,
    pic: &PictureArgs,
) -> Result<()> {
    set_threads(s.threads)?;
    let is_npy = out
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("npy"));
    if !is_png(out) && !is_npy {
        bail!("--out {}: expected a .png or .npy file name", out.display());
    }
    voxfield_io::safety::check_not_input(out, &[path])?;
    pic.check_for(out).map_err(anyhow::Error::msg)?;
    let source = Source::open(path, raw)?;
    let plane = Plane::new(
        source.lift_vec("origin", &pa.origin.0)?,
        source.lift_vec("u", &pa.u.0)?,
        source.lift_vec("v", &pa.v.0)?,
        pa.size[0],
        pa.size[1],
    )?;
    let source = auto_level(source, path, raw, &plane, s)?;
    let depths = if pa.thickness > 0.0 {
        if source.dims() < 3 {
            bail!(
                "--thickness: a slab needs a 3-D source; this one is {}-D",
                source.dims()
            );
        }
        Plane::slab_offsets(pa.thickness, pa.step)?
    } else if pa.thickness < 0.0 || pa.thickness.is_nan() {
        bail!(
            "--thickness {} must be ≥ 0 (0: a plain plane)",
            pa.thickness
        );
    } else {
        vec![0.0]
    };
    let f = source.field(s)?;
    let dt = if is_png(out) {
        None
    } else {
        Some(source.output_dtype(s)?)
    };
    let t = Instant::now();
    let pixels = plane
        .nu
        .checked_mul(plane.nv)
        .filter(|&n| n <= isize::MAX as usize / 8);
    let Some(pixels) = pixels else {
        bail!("--size {}x{} is too large to address", plane.nu, plane.nv);
    };
    if is_png(out) {
        if pixels > voxfield_io::safety::MAX_PNG_PIXELS {
            bail!(
                "--size {}x{}: a PNG of {pixels} pixels is over the {} allowed; write .npy (streamed) instead",
                plane.nu,
                plane.nv,
                voxfield_io::safety::MAX_PNG_PIXELS
            );
        }
        let vals = plane_values::<f32>(f.as_ref(), &plane, &depths, pa.reduce.into())?;
        let ms = t.elapsed().as_secs_f64() * 1e3;
        write_picture(out, &vals, &plane, pic)?;
        report_slice(path, &plane, depths.len(), ms, out);
    } else {
        let dt = dt.expect("set for .npy output");
        with_out!(dt, |O| {
            write_plane_npy::<O>(f.as_ref(), &plane, &depths, pa.reduce.into(), out)?;
            let ms = t.elapsed().as_secs_f64() * 1e3;
            report_slice(path, &plane, depths.len(), ms, out);
        });
    }
    Ok(())
}

pub(crate) fn write_picture(
    out: &Path,
    vals: &[f32],
    plane: &Plane,
    pic: &PictureArgs,
) -> Result<()> {
    let window = match pic.window.or_else(|| picture::auto_window(vals)) {
        Some(w) => w,
        None => {
            eprintln!(
                "voxfield: warning: every pixel is outside the volume (NaN); the picture is black"
            );
            [0.0, 1.0]
        }
    };
    picture::write_png(out, vals, plane.nu, plane.nv, window, pic.colormap())
}

pub(crate) fn report_slice(path: &Path, plane: &Plane, depth: usize, ms: f64, out: &Path) {
    let what = if depth > 1 {
        format!("{depth}-sample slab")
    } else {
        "plane".into()
    };
    eprintln!(
        "voxfield: sampled a {}x{} oblique {what} of {} in {ms:.1} ms -> {}",
        plane.nu,
        plane.nv,
        path.display(),
        out.display()
    );
}
