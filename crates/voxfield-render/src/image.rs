//! Frames as 8-bit pictures: PNG, and animated PNG or GIF for turntables.
//!
//! Scalar frames (mip, minip, mean) go through the window and colormap (grey
//! PNG for `gray`, RGB otherwise); pixels no ray reached take the background.
//! RGBA frames (dvr, iso) are composited over the background when there is one
//! (opaque RGBA), else written with straight (un-premultiplied) alpha.

use std::io::Write;
use std::str::FromStr;

use voxfield_core::{Error, Result};

use crate::{Colormap, Frame, Transfer};

/// What a picture shows where rays hit nothing (and through what they hit,
/// for dvr and iso): `black` (the default), `white`, `none` (transparent) or
/// `R,G,B` in 0..1.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Background {
    Transparent,
    Rgb([f32; 3]),
}

impl Background {
    pub const BLACK: Background = Background::Rgb([0.0; 3]);

    /// The colour, or `None` for transparent.
    pub fn rgb(self) -> Option<[f32; 3]> {
        match self {
            Background::Transparent => None,
            Background::Rgb(c) => Some(c),
        }
    }
}

impl FromStr for Background {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Ok(match s.trim() {
            "none" | "transparent" => Background::Transparent,
            "black" => Background::BLACK,
            "white" => Background::Rgb([1.0; 3]),
            rgb => {
                let bad = || {
                    Error::invalid(format!(
                        "background '{s}': expected black, white, none or R,G,B in 0..1"
                    ))
                };
                let v: Vec<f32> = rgb
                    .split(',')
                    .map(|x| x.trim().parse::<f32>().map_err(|_| bad()))
                    .collect::<Result<_>>()?;
                let c: [f32; 3] = v.try_into().map_err(|_| bad())?;
                if c.iter().any(|x| !(0.0..=1.0).contains(x)) {
                    return Err(Error::invalid(format!(
                        "background '{s}': each of R,G,B must be in 0..1"
                    )));
                }
                Background::Rgb(c)
            }
        })
    }
}

/// How frames become 8-bit pixels.
#[derive(Clone, Copy, Debug)]
pub struct Picture<'a> {
    pub transfer: &'a Transfer,
    /// RGB in [0, 1]; None: transparent where nothing was hit (RGBA frames).
    pub background: Option<[f32; 3]>,
}

/// An 8-bit channel of a colour or opacity in [0, 1] (clamped, rounded).
pub fn byte(x: f32) -> u8 {
    (x.clamp(0.0, 1.0) * 255.0).round() as u8
}

impl Picture<'_> {
    /// PNG colour type and bytes of `frame`.
    pub fn pixels(&self, frame: &Frame) -> (png::ColorType, Vec<u8>) {
        let bg = self.background.unwrap_or([0.0; 3]);
        if frame.channels == 1 {
            let cmap = self.transfer.colormap;
            let grey = cmap == Colormap::Gray;
            let mut out = Vec::with_capacity(frame.pixels.len() * if grey { 1 } else { 3 });
            for &v in &frame.pixels {
                let rgb = if v.is_nan() {
                    bg
                } else {
                    cmap.rgb(self.transfer.t(v))
                };
                if grey {
                    out.push(byte(rgb[0]));
                } else {
                    out.extend(rgb.map(byte));
                }
            }
            let ct = if grey {
                png::ColorType::Grayscale
            } else {
                png::ColorType::Rgb
            };
            return (ct, out);
        }
        let mut out = Vec::with_capacity(frame.pixels.len());
        for px in frame.pixels.chunks_exact(4) {
            let a = px[3];
            match self.background {
                Some(bg) => {
                    out.extend([0, 1, 2].map(|c| byte(px[c] + (1.0 - a) * bg[c])));
                    out.push(255);
                }
                None if a > 0.0 => {
                    out.extend([0, 1, 2].map(|c| byte(px[c] / a)));
                    out.push(byte(a));
                }
                None => out.extend([0, 0, 0, 0]),
            }
        }
        (png::ColorType::Rgba, out)
    }

    /// Writes `frames` as one PNG, or an animated PNG (looping, `delay_ms`
    /// per frame) when there are several of the same size.
    pub fn write_png<W: Write>(&self, w: W, frames: &[Frame], delay_ms: u16) -> Result<()> {
        let first = frames
            .first()
            .ok_or_else(|| Error::invalid("no frame to write"))?;
        if frames
            .iter()
            .any(|f| (f.width, f.height) != (first.width, first.height))
        {
            return Err(Error::invalid("animated PNG frames must share one size"));
        }
        let (wd, ht) = (dim(first.width)?, dim(first.height)?);
        let (ct, _) = self.pixels(&Frame {
            pixels: vec![],
            ..first.clone()
        });
        let mut enc = png::Encoder::new(w, wd, ht);
        enc.set_color(ct);
        enc.set_depth(png::BitDepth::Eight);
        let io = |e: png::EncodingError| Error::invalid(format!("PNG encoding: {e}"));
        if frames.len() > 1 {
            let n = u32::try_from(frames.len()).map_err(|_| Error::invalid("too many frames"))?;
            enc.set_animated(n, 0).map_err(io)?;
            enc.set_frame_delay(delay_ms, 1000).map_err(io)?;
        }
        let mut writer = enc.write_header().map_err(io)?;
        for f in frames {
            writer.write_image_data(&self.pixels(f).1).map_err(io)?;
        }
        writer.finish().map_err(io)
    }
}

impl Picture<'_> {
    /// Writes `frames` as a looping GIF (`delay_ms` per frame, in GIF's
    /// 10 ms units): each frame's colours quantised to 256 by NeuQuant.
    pub fn write_gif<W: Write>(&self, w: W, frames: &[Frame], delay_ms: u16) -> Result<()> {
        let first = frames
            .first()
            .ok_or_else(|| Error::invalid("no frame to write"))?;
        let side = |n: usize| {
            u16::try_from(n).map_err(|_| {
                Error::invalid(format!("{n} pixels is too wide for GIF (at most 65535)"))
            })
        };
        let (wd, ht) = (side(first.width)?, side(first.height)?);
        let io = |e: gif::EncodingError| Error::invalid(format!("GIF encoding: {e}"));
        let mut enc = gif::Encoder::new(w, wd, ht, &[]).map_err(io)?;
        enc.set_repeat(gif::Repeat::Infinite).map_err(io)?;
        for f in frames {
            if (f.width, f.height) != (first.width, first.height) {
                return Err(Error::invalid("GIF frames must share one size"));
            }
            let (ct, px) = self.pixels(f);
            let mut rgba: Vec<u8> = match ct {
                png::ColorType::Grayscale => px.iter().flat_map(|&g| [g, g, g, 255]).collect(),
                png::ColorType::Rgb => px
                    .chunks_exact(3)
                    .flat_map(|c| [c[0], c[1], c[2], 255])
                    .collect(),
                _ => px,
            };
            let mut frame = gif::Frame::from_rgba_speed(wd, ht, &mut rgba, 10);
            frame.delay = delay_ms / 10;
            enc.write_frame(&frame).map_err(io)?;
        }
        Ok(())
    }
}

fn dim(n: usize) -> Result<u32> {
    u32::try_from(n).map_err(|_| Error::invalid(format!("{n} pixels is too wide for PNG")))
}

#[cfg(test)]
mod tests {
    use super::Background;

    #[test]
    fn backgrounds() {
        assert_eq!(
            "none".parse::<Background>().ok(),
            Some(Background::Transparent)
        );
        assert_eq!(
            "0,0.5,1".parse::<Background>().ok(),
            Some(Background::Rgb([0.0, 0.5, 1.0]))
        );
        for bad in ["2,0,0", "red", "0,0", "0,0,0,0", "nan,0,0"] {
            assert!(bad.parse::<Background>().is_err(), "{bad}");
        }
    }
}
