//! A map over an environment (one value per bin: a smoothed rate map, an
//! occupancy) as a voxfield [`Field`], so everything that samples fields —
//! point lists, planes, grids, renders, error metrics — reads it as it reads a
//! volume. Positions are (x, y, z); an n-D environment reads the first n.

use voxfield_core::{Error, Field, Result};

use crate::nearest::{Reach, TieBreak};
use crate::Environment;

/// How a bin map is read between bins.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reading {
    /// The nearest bin's value (0.6.0's `interpolate(mode='nearest')`: NaN
    /// beyond 10 typical spacings).
    Nearest,
    /// Multilinear between bin centres (grids only; NaN outside the centres'
    /// hull and next to inactive bins).
    Linear,
}

/// A bin map read as a field.
pub struct BinField<'a> {
    env: &'a Environment,
    values: Vec<f64>,
    reading: Reading,
    /// The nearest reading's reach (10 typical spacings), worked out once.
    reach: Reach,
}

impl<'a> BinField<'a> {
    /// Checks the map against the environment (one finite-or-NaN value per
    /// bin; linear reading needs a grid).
    pub fn new(env: &'a Environment, values: Vec<f64>, reading: Reading) -> Result<Self> {
        if values.len() != env.n_bins() {
            return Err(Error::invalid(format!(
                "the map has {} values for {} bins",
                values.len(),
                env.n_bins()
            )));
        }
        if reading == Reading::Linear {
            env.grid("reading a map linearly")?;
        }
        Ok(BinField {
            env,
            values,
            reading,
            reach: Reach::Distance(10.0 * env.typical_spacing()),
        })
    }
}

impl Field for BinField<'_> {
    fn sample_block(&self, points: &[[f64; 3]], out: &mut [f64]) -> Result<()> {
        let d = self.env.n_dims();
        // Positions the environment cannot place (NaN, inf) read NaN.
        let ok: Vec<bool> = points
            .iter()
            .map(|p| p[..d].iter().all(|v| v.is_finite()))
            .collect();
        let flat: Vec<f64> = points
            .iter()
            .zip(&ok)
            .flat_map(|(p, &ok)| p[..d].iter().map(move |&v| if ok { v } else { 0.0 }))
            .collect();
        let vals = match self.reading {
            Reading::Linear => self.env.interpolate_linear(&self.values, &flat)?,
            Reading::Nearest => {
                let (bins, _) =
                    self.env
                        .map_points_to_bins(&flat, TieBreak::LowestIndex, self.reach)?;
                bins.iter()
                    .map(|&b| {
                        if b >= 0 {
                            self.values[b as usize]
                        } else {
                            f64::NAN
                        }
                    })
                    .collect()
            }
        };
        for ((o, v), ok) in out.iter_mut().zip(vals).zip(ok) {
            *o = if ok { v } else { f64::NAN };
        }
        Ok(())
    }

    fn batch_hint(&self) -> usize {
        4096
    }
}
