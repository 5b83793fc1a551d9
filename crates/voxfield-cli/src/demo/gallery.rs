//! The demo's gallery: panels of RGB pixels, each under a two-line title
//! (what it shows, how long it took), laid out on a grid and written as PNG.
//! Titles are drawn with font8x8's public-domain 8×8 bitmap glyphs.

use std::path::Path;

use anyhow::Result;

const TITLE: usize = 22;
const GAP: usize = 6;
const BACKDROP: [u8; 3] = [24, 24, 28];

/// One picture of the gallery.
pub(crate) struct Panel {
    /// File-name stem of the panel's own PNG.
    pub name: &'static str,
    pub title: String,
    pub timing: String,
    /// side×side RGB pixels, rows top to bottom.
    pub rgb: Vec<[u8; 3]>,
    pub side: usize,
}

/// Writes `text` in white from (x, y), clipped to `width` pixels of `img`.
fn draw_text(img: &mut [[u8; 3]], stride: usize, x: usize, y: usize, width: usize, text: &str) {
    for (n, ch) in text.chars().enumerate() {
        let x0 = x + 8 * n;
        if x0 + 8 > x + width {
            break;
        }
        // ASCII glyphs; anything else (°, ³) is drawn as a space.
        let glyph = font8x8::legacy::BASIC_LEGACY
            .get(ch as usize)
            .copied()
            .unwrap_or([0; 8]);
        for (r, bits) in glyph.iter().enumerate() {
            for c in 0..8 {
                if bits >> c & 1 == 1 {
                    img[(y + r) * stride + x0 + c] = [235, 235, 235];
                }
            }
        }
    }
}

/// The panels on a grid of `cols` columns, titled.
pub(crate) fn compose(panels: &[Panel], cols: usize) -> (Vec<[u8; 3]>, usize, usize) {
    let rows = panels.len().div_ceil(cols);
    let side = panels.iter().map(|p| p.side).max().unwrap_or(0);
    let (w, h) = (cols * (side + GAP) + GAP, rows * (side + TITLE + GAP) + GAP);
    let mut img = vec![BACKDROP; w * h];
    for (i, p) in panels.iter().enumerate() {
        let (x, y) = (
            GAP + (i % cols) * (side + GAP),
            GAP + (i / cols) * (side + TITLE + GAP),
        );
        draw_text(&mut img, w, x, y, side, &p.title);
        draw_text(&mut img, w, x, y + 11, side, &p.timing);
        for (r, row) in p.rgb.chunks_exact(side).enumerate() {
            let o = (y + TITLE + r) * w + x;
            img[o..o + side].copy_from_slice(row);
        }
    }
    (img, w, h)
}

/// An RGB PNG, atomically.
pub(crate) fn write_rgb(path: &Path, rgb: &[[u8; 3]], w: usize, h: usize) -> Result<()> {
    let bytes: Vec<u8> = rgb.iter().flatten().copied().collect();
    crate::picture::write_pixels(path, &bytes, w, h, png::ColorType::Rgb)
}
