//! Storage of the hash tables by entropy-coded uniform scalar quantisation:
//! every entry becomes the integer code `round(v / step)` (clamped to ±127),
//! one step for all levels, and the codes are compressed losslessly with zstd;
//! MLP weights stay f16. A uniform quantiser whose codes are entropy-coded is
//! close to rate–distortion optimal for a given step, so the step is the one
//! knob: `--bits B` sets it to cover the largest entry with 2^(B−1) − 1 codes,
//! `--ratio` searches the finest step whose file fits.
//!
//! Measured on the MNI T1 (2^12 tables after 10 epochs, 35.8 dB in f16):
//! per-level min..max grids of 16 values gave 31.6 dB at 61 KB (Lloyd–Max
//! codebooks fared worse: their evenly used codes cost more after zstd); one
//! step of 0.055 gives 33.8 dB at 72 KB.

use crate::Net;

/// How a model's tables are quantised: entry = code × `step`, code ∈ ±127.
#[derive(Clone, Debug, PartialEq)]
pub struct Quant {
    pub step: f32,
}

/// The zstd level: the tables are small, so the slow end is affordable.
const ZSTD_LEVEL: i32 = 19;
/// The largest code magnitude (codes are stored as bytes, offset by 128).
const MAX_CODE: f32 = 127.0;

impl Quant {
    /// The step that gives the largest table entry of `net` a code of
    /// ±(2^(bits−1) − 1): `bits` bits per entry before entropy coding.
    pub fn for_bits(net: &Net, bits: u32) -> Quant {
        let top = ((1u32 << (bits.clamp(2, 8) - 1)) - 1) as f32;
        let amax = net.params[..net.grid.n_params]
            .iter()
            .fold(0f32, |m, v| m.max(v.abs()));
        Quant {
            step: if amax > 0.0 { amax / top } else { 1.0 },
        }
    }

    /// Quantises the tables of `net` in place.
    pub fn apply(&self, net: &mut Net) {
        for v in &mut net.params[..net.grid.n_params] {
            *v = self.code(*v) as f32 * self.step;
        }
    }

    fn code(&self, v: f32) -> i8 {
        (v / self.step).round().clamp(-MAX_CODE, MAX_CODE) as i8
    }

    /// The zstd-compressed codes of `net`'s (quantised) tables.
    pub fn encode(&self, net: &Net) -> Vec<u8> {
        let codes: Vec<u8> = net.params[..net.grid.n_params]
            .iter()
            .map(|&v| (self.code(v) as i16 + 128) as u8)
            .collect();
        zstd::bulk::compress(&codes, ZSTD_LEVEL).expect("zstd compresses to memory")
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
        let codes = zstd::bulk::decompress(bytes, n)
            .map_err(|e| format!("quantised tables do not decompress: {e}"))?;
        if codes.len() != n {
            return Err(format!(
                "quantised tables hold {} entries, the network needs {n}",
                codes.len()
            ));
        }
        if codes.contains(&0) {
            return Err("a table code is −128, outside ±127".into());
        }
        for (v, &c) in net.params[..n].iter_mut().zip(&codes) {
            *v = (c as i16 - 128) as f32 * self.step;
        }
        Ok(())
    }
}
