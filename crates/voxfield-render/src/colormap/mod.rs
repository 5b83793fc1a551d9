//! Colormaps as matplotlib defines them: 256-entry tables looked up the way
//! `matplotlib.colors.Colormap.__call__` does (index `floor(t * 256)`, clipped),
//! so a render can be checked against matplotlib itself.

use std::fmt;
use std::str::FromStr;

mod tables;

/// A named colour table.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Colormap {
    #[default]
    Gray,
    Viridis,
    Magma,
    Inferno,
    Plasma,
    Cividis,
}

impl Colormap {
    pub const NAMES: [&'static str; 6] =
        ["gray", "viridis", "magma", "inferno", "plasma", "cividis"];

    /// The colour of windowed value `t` (0 at the window's low end, 1 at its
    /// high end; outside, the end colours, as matplotlib's under/over defaults).
    #[inline]
    /// [`Colormap::rgb`] as 8-bit channels.
    pub fn rgb8(self, t: f32) -> [u8; 3] {
        self.rgb(t).map(crate::image::byte)
    }

    pub fn rgb(self, t: f32) -> [f32; 3] {
        let i = index(t);
        match self {
            Colormap::Gray => [i as f32 / 255.0; 3],
            Colormap::Viridis => tables::VIRIDIS[i],
            Colormap::Magma => tables::MAGMA[i],
            Colormap::Inferno => tables::INFERNO[i],
            Colormap::Plasma => tables::PLASMA[i],
            Colormap::Cividis => tables::CIVIDIS[i],
        }
    }
}

/// matplotlib's table index for `t`: `t * 256`, the top edge folded onto the
/// last entry, truncated and clipped.
#[inline]
fn index(t: f32) -> usize {
    let x = t * 256.0;
    if x.is_nan() || x < 0.0 {
        0
    } else {
        (x as usize).min(255)
    }
}

impl FromStr for Colormap {
    type Err = voxfield_core::Error;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s.to_ascii_lowercase().as_str() {
            "gray" | "grey" => Colormap::Gray,
            "viridis" => Colormap::Viridis,
            "magma" => Colormap::Magma,
            "inferno" => Colormap::Inferno,
            "plasma" => Colormap::Plasma,
            "cividis" => Colormap::Cividis,
            _ => {
                return Err(voxfield_core::Error::invalid(format!(
                    "unknown colormap '{s}': expected one of {}",
                    Colormap::NAMES.join(", ")
                )))
            }
        })
    }
}

impl fmt::Display for Colormap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let i = *self as usize;
        f.write_str(Colormap::NAMES[i])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookup_follows_matplotlib() {
        // matplotlib: viridis(0.0) is the first entry, viridis(1.0) the last.
        assert_eq!(Colormap::Viridis.rgb(0.0), tables::VIRIDIS[0]);
        assert_eq!(Colormap::Viridis.rgb(1.0), tables::VIRIDIS[255]);
        assert_eq!(Colormap::Viridis.rgb(2.0), tables::VIRIDIS[255]);
        assert_eq!(Colormap::Viridis.rgb(-1.0), tables::VIRIDIS[0]);
        // floor(0.5 * 256) = 128; just below 1/256 is entry 0.
        assert_eq!(Colormap::Magma.rgb(0.5), tables::MAGMA[128]);
        assert_eq!(Colormap::Gray.rgb(0.0039), [0.0; 3]);
        assert_eq!(Colormap::Gray.rgb(1.0), [1.0; 3]);
        for name in Colormap::NAMES {
            let c: Colormap = name.parse().unwrap();
            assert_eq!(c.to_string(), name);
        }
        assert!("jet".parse::<Colormap>().is_err());
    }
}
