//! Storage of the hash tables as `bits`-bit codes (2–8) of a uniform grid per
//! level, compressed losslessly with zstd; MLP weights stay f16. On the MNI T1
//! (a 2^11 model after one epoch) 6 bits cost 0.07 dB against f16 at 5.4 bits
//! per entry instead of 16, so at a given file size the tables can be ~3×
//! larger: more PSNR per stored byte than f16.

use crate::Net;

/// How a model's tables are quantised: `bits` and, per level, the grid's
/// origin and step (value = lo + code·step).
#[derive(Clone, Debug, PartialEq)]
pub struct Quant {
    pub bits: u32,
    pub levels: Vec<(f32, f32)>,
}

/// The zstd level: the tables are small, so the slow end is affordable.
const ZSTD_LEVEL: i32 = 19;

impl Quant {
    /// Quantises the tables of `net` in place (each level's entries rounded to
    /// the nearest of 2^bits values spanning its range) and returns the grids.
    pub fn apply(net: &mut Net, bits: u32) -> Quant {
        assert!((1..=8).contains(&bits), "{bits} bits");
        let top = ((1u32 << bits) - 1) as f32;
        let levels = (0..net.grid.levels.len())
            .map(|l| {
                let t = table_mut(net, l);
                let lo = t.iter().copied().fold(f32::INFINITY, f32::min);
                let hi = t.iter().copied().fold(f32::NEG_INFINITY, f32::max);
                let step = if hi > lo { (hi - lo) / top } else { 0.0 };
                for v in t.iter_mut() {
                    *v = lo + code(*v, lo, step) as f32 * step;
                }
                (lo, step)
            })
            .collect();
        Quant { bits, levels }
    }

    /// The codes of `net`'s (quantised) tables, zstd-compressed.
    pub fn encode(&self, net: &Net) -> Vec<u8> {
        let mut codes = Vec::with_capacity(net.grid.n_params);
        for (l, &(lo, step)) in self.levels.iter().enumerate() {
            let lv = &net.grid.levels[l];
            let n = lv.size as usize * net.grid.cfg.features;
            codes.extend(
                net.params[lv.offset..lv.offset + n]
                    .iter()
                    .map(|&v| code(v, lo, step)),
            );
        }
        zstd::bulk::compress(&codes, ZSTD_LEVEL).expect("zstd compresses to memory")
    }

    /// Fills `net`'s tables from `encode`'s bytes, or says what is wrong.
    pub fn decode(&self, net: &mut Net, bytes: &[u8]) -> Result<(), String> {
        let n = net.grid.n_params;
        let codes = zstd::bulk::decompress(bytes, n)
            .map_err(|e| format!("quantised tables do not decompress: {e}"))?;
        if codes.len() != n {
            return Err(format!(
                "quantised tables hold {} entries, the network needs {n}",
                codes.len()
            ));
        }
        if let Some(c) = codes.iter().find(|&&c| (c as u32) >> self.bits != 0) {
            return Err(format!("table code {c} does not fit {} bits", self.bits));
        }
        let mut at = 0;
        for (l, &(lo, step)) in self.levels.iter().enumerate() {
            for v in table_mut(net, l) {
                *v = lo + codes[at] as f32 * step;
                at += 1;
            }
        }
        Ok(())
    }
}

fn table_mut(net: &mut Net, l: usize) -> &mut [f32] {
    let lv = net.grid.levels[l];
    &mut net.params[lv.offset..lv.offset + lv.size as usize * net.grid.cfg.features]
}

/// The code of `v` on the grid (lo, step); exact for values already on it.
fn code(v: f32, lo: f32, step: f32) -> u8 {
    if step > 0.0 {
        ((v - lo) / step).round() as u8
    } else {
        0
    }
}
