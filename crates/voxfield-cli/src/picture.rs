//! Windowed, colour-mapped PNG pictures of 2-D samples.

use std::path::Path;

use anyhow::Context;

use crate::args::Colormap;

/// viridis at 9 evenly spaced stops (matplotlib's published palette), linearly interpolated.
const VIRIDIS: [[u8; 3]; 9] = [
    [0x44, 0x01, 0x54],
    [0x47, 0x2d, 0x7b],
    [0x3b, 0x52, 0x8b],
    [0x2c, 0x72, 0x8e],
    [0x21, 0x91, 0x8c],
    [0x28, 0xae, 0x80],
    [0x5e, 0xc9, 0x62],
    [0xad, 0xdc, 0x30],
    [0xfd, 0xe7, 0x25],
];

fn viridis(t: f64) -> [u8; 3] {
    let x = t.clamp(0.0, 1.0) * 8.0;
    let i = (x.floor() as usize).min(7);
    let f = x - i as f64;
    let (a, b) = (VIRIDIS[i], VIRIDIS[i + 1]);
    [0, 1, 2].map(|c| (a[c] as f64 + f * (b[c] as f64 - a[c] as f64)).round() as u8)
}

/// The finite min and max of `values`, widened if they coincide (None if none is finite).
pub fn auto_window(values: &[f32]) -> Option<[f64; 2]> {
    let (lo, hi) = values
        .iter()
        .filter(|v| v.is_finite())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &v| {
            (lo.min(v as f64), hi.max(v as f64))
        });
    if lo > hi {
        return None;
    }
    Some(if lo == hi {
        [lo - 0.5, hi + 0.5]
    } else {
        [lo, hi]
    })
}

/// Writes an 8-bit PNG (gray or RGB); NaN pixels are black. Atomic (temp + rename).
pub fn write_png(
    path: &Path,
    values: &[f32],
    width: usize,
    height: usize,
    window: [f64; 2],
    cmap: Colormap,
) -> anyhow::Result<()> {
    let [lo, hi] = window;
    let scale = 1.0 / (hi - lo);
    let channels = if cmap == Colormap::Gray { 1 } else { 3 };
    let mut pixels = Vec::with_capacity(values.len() * channels);
    for &v in values {
        let t = (v as f64 - lo) * scale;
        match (cmap, v.is_nan()) {
            (Colormap::Gray, true) => pixels.push(0),
            (Colormap::Gray, false) => pixels.push((t.clamp(0.0, 1.0) * 255.0).round() as u8),
            (Colormap::Viridis, true) => pixels.extend_from_slice(&[0, 0, 0]),
            (Colormap::Viridis, false) => pixels.extend_from_slice(&viridis(t)),
        }
    }
    let (w, h) = (u32::try_from(width)?, u32::try_from(height)?);
    voxfield_io::npy::write_atomic(path, |out| {
        let mut enc = png::Encoder::new(out, w, h);
        enc.set_color(if channels == 1 {
            png::ColorType::Grayscale
        } else {
            png::ColorType::Rgb
        });
        enc.set_depth(png::BitDepth::Eight);
        let mut writer = enc.write_header().map_err(std::io::Error::other)?;
        writer
            .write_image_data(&pixels)
            .map_err(std::io::Error::other)?;
        writer.finish().map_err(std::io::Error::other)
    })
    .with_context(|| format!("writing {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn viridis_ends_and_window() {
        assert_eq!(viridis(0.0), VIRIDIS[0]);
        assert_eq!(viridis(1.0), VIRIDIS[8]);
        assert_eq!(viridis(0.5), VIRIDIS[4]);
        assert_eq!(
            auto_window(&[f32::NAN, 2.0, -1.0, f32::INFINITY]),
            Some([-1.0, 2.0])
        );
        assert_eq!(auto_window(&[f32::NAN]), None);
        assert_eq!(auto_window(&[3.0, 3.0]), Some([2.5, 3.5]));
    }
}
