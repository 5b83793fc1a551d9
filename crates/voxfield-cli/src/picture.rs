//! Windowed, colour-mapped PNG pictures of 2-D samples (matplotlib's colormaps).

use std::path::Path;

use anyhow::Context;

use crate::args::Colormap;

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
        // matplotlib's lookup (the render crate's tables); NaN pixels are black.
        let bytes = if v.is_nan() {
            [0; 3]
        } else {
            cmap.rgb8(((v as f64 - lo) * scale) as f32)
        };
        pixels.extend_from_slice(&bytes[..channels]);
    }
    let color = if channels == 1 {
        png::ColorType::Grayscale
    } else {
        png::ColorType::Rgb
    };
    write_pixels(path, &pixels, width, height, color)
}

/// Writes 8-bit pixels of `color` as a PNG, atomically (temp + rename).
pub fn write_pixels(
    path: &Path,
    pixels: &[u8],
    width: usize,
    height: usize,
    color: png::ColorType,
) -> anyhow::Result<()> {
    let (w, h) = (u32::try_from(width)?, u32::try_from(height)?);
    voxfield_io::npy::write_atomic(path, |out| {
        let mut enc = png::Encoder::new(out, w, h);
        enc.set_color(color);
        enc.set_depth(png::BitDepth::Eight);
        let mut writer = enc.write_header().map_err(std::io::Error::other)?;
        writer
            .write_image_data(pixels)
            .map_err(std::io::Error::other)?;
        writer.finish().map_err(std::io::Error::other)
    })
    .with_context(|| format!("writing {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn auto_window_skips_nan_and_widens() {
        assert_eq!(
            auto_window(&[f32::NAN, 2.0, -1.0, f32::INFINITY]),
            Some([-1.0, 2.0])
        );
        assert_eq!(auto_window(&[f32::NAN]), None);
        assert_eq!(auto_window(&[3.0, 3.0]), Some([2.5, 3.5]));
    }
}
