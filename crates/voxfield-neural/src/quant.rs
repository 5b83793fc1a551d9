//! Storage of the hash tables by entropy-coded uniform scalar quantisation:
//! every entry becomes the integer code `round(v / step)` (clamped to ±127),
//! one step for all levels, and the codes are entropy-coded losslessly; MLP
//! weights stay f16. A uniform quantiser whose codes are entropy-coded is
//! close to rate–distortion optimal for a given step, so the step is the one
//! knob: `--bits B` sets it to cover the largest entry with 2^(B−1) − 1 codes,
//! `--ratio` searches the finest step whose file fits.
//!
//! Codes are range-coded ([`crate::entropy`]) with one adaptive context per
//! level and feature, a feature after the first conditioned on the sign of the
//! one before it (version 3 files); version 2 files hold zstd-compressed
//! bytes and still read.
//!
//! Measured on the MNI T1 (2^12 tables after 10 epochs, 35.8 dB in f16):
//! per-level min..max grids of 16 values gave 31.6 dB at 61 KB (Lloyd–Max
//! codebooks fared worse: their evenly used codes cost more after zstd); one
//! step of 0.055 gives 33.8 dB at 72 KB.

use crate::{entropy, Net};

/// How a model's tables are quantised: entry = code × `step`, code ∈ ±127.
#[derive(Clone, Debug, PartialEq)]
pub struct Quant {
    pub step: f32,
    pub coder: Coder,
}

/// How the codes are compressed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Coder {
    /// Context-adaptive range coding (version 3 and later).
    #[default]
    Range,
    /// Bytes offset by 128, zstd-compressed (version 2).
    Zstd,
}

impl Coder {
    /// The name the header gives.
    pub fn name(&self) -> &'static str {
        match self {
            Coder::Range => "range",
            Coder::Zstd => "zstd",
        }
    }
}

/// The largest code magnitude.
const MAX_CODE: f32 = 127.0;

impl Quant {
    /// Range-coded codes in steps of `step`.
    pub fn new(step: f32) -> Quant {
        Quant {
            step,
            coder: Coder::Range,
        }
    }

    /// The step that gives the largest table entry of `net` a code of
    /// ±(2^(bits−1) − 1): `bits` bits per entry before entropy coding.
    pub fn for_bits(net: &Net, bits: u32) -> Quant {
        let top = ((1u32 << (bits.clamp(2, 8) - 1)) - 1) as f32;
        let amax = net.params[..net.grid.n_params]
            .iter()
            .fold(0f32, |m, v| m.max(v.abs()));
        Quant::new(if amax > 0.0 { amax / top } else { 1.0 })
    }

    /// Quantises the tables of `net` in place.
    pub fn apply(&self, net: &mut Net) {
        self.apply_to(&mut net.params[..net.grid.n_params]);
    }

    /// Quantises table entries in place.
    pub fn apply_to(&self, tables: &mut [f32]) {
        for v in tables {
            *v = self.code(*v) as f32 * self.step;
        }
    }

    fn code(&self, v: f32) -> i8 {
        (v / self.step).round().clamp(-MAX_CODE, MAX_CODE) as i8
    }

    /// The coded tables of `net` (quantised with this step).
    pub fn encode(&self, net: &Net) -> Vec<u8> {
        let codes: Vec<i8> = net.params[..net.grid.n_params]
            .iter()
            .map(|&v| self.code(v))
            .collect();
        match self.coder {
            Coder::Range => {
                let (n, ctx) = contexts(net);
                entropy::encode(&codes, n, ctx)
            }
            Coder::Zstd => {
                let bytes: Vec<u8> = codes.iter().map(|&c| (c as i16 + 128) as u8).collect();
                zstd::bulk::compress(&bytes, 19).expect("zstd compresses to memory")
            }
        }
    }

    /// Fills `net`'s tables from `encode`'s bytes, or says what is wrong.
    pub fn decode(&self, net: &mut Net, bytes: &[u8]) -> Result<(), String> {
        if !(self.step.is_finite() && self.step > 0.0) {
            return Err(format!(
                "quantisation step {} must be a positive number",
                self.step
            ));
        }
        let n = net.grid.n_params;
        let codes: Vec<i8> = match self.coder {
            Coder::Range => {
                let mut codes = vec![0i8; n];
                let (k, ctx) = contexts(net);
                entropy::decode(bytes, k, ctx, &mut codes)?;
                codes
            }
            Coder::Zstd => {
                let raw = zstd::bulk::decompress(bytes, n)
                    .map_err(|e| format!("quantised tables do not decompress: {e}"))?;
                if raw.len() != n {
                    return Err(format!(
                        "quantised tables hold {} entries, the network needs {n}",
                        raw.len()
                    ));
                }
                raw.iter().map(|&c| (c as i16 - 128) as i8).collect()
            }
        };
        if codes.contains(&i8::MIN) {
            return Err("a table code is −128, outside ±127".into());
        }
        for (v, &c) in net.params[..n].iter_mut().zip(&codes) {
            *v = c as f32 * self.step;
        }
        Ok(())
    }
}

/// The coding contexts of `net`'s tables (entries in parameter order: level
/// by level, the features of an entry together): per level, one for the first
/// feature and three for each later one (by the sign of the feature before).
fn contexts(net: &Net) -> (usize, impl Fn(usize, &[i8]) -> usize + '_) {
    let f = net.grid.cfg.features;
    let per_level = 1 + 3 * (f - 1);
    let n = per_level * net.grid.levels.len();
    let ctx = move |i: usize, before: &[i8]| {
        // The last level starting at or before i (level 0 starts at 0).
        let level = net.grid.levels.partition_point(|l| l.offset <= i) - 1;
        let k = (i - net.grid.levels[level].offset) % f;
        level * per_level
            + if k == 0 {
                0
            } else {
                1 + 3 * (k - 1) + (before[i - 1].signum() + 1) as usize
            }
    };
    (n, ctx)
}
