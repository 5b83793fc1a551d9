//! Multiresolution hash encoding (Müller et al. 2022) with tiny-cuda-nn's exact
//! arithmetic: level l has scale `2^(l·log2 b)·N_min − 1` and `ceil(scale) + 1`
//! vertices per axis; a position x ∈ [0,1]³ maps to `x·scale + 0.5`; a level whose
//! vertex grid fits its table (rounded up to 8 entries) is indexed densely
//! (x + y·res + z·res²), the others by the coherent-prime hash
//! `x·1 ⊕ y·2654435761 ⊕ z·805459861` (wrapping u32), both modulo the table size.
//! Features are interpolated trilinearly from the 8 corners.

/// The encoding's shape.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct HashGridConfig {
    /// Levels L (tiny-cuda-nn default 16).
    pub levels: usize,
    /// Features per entry F (default 2).
    pub features: usize,
    /// log2 of the largest table size T.
    pub log2_table: u32,
    /// Coarsest resolution N_min (default 16).
    pub base: u32,
    /// Growth factor b between levels.
    pub per_level_scale: f64,
}

impl HashGridConfig {
    /// The growth factor that makes the finest level reach `finest` vertices.
    pub fn with_finest(
        levels: usize,
        features: usize,
        log2_table: u32,
        base: u32,
        finest: u32,
    ) -> Self {
        let b = if levels > 1 {
            ((finest as f64).ln() - (base as f64).ln()) / (levels - 1) as f64
        } else {
            0.0
        };
        HashGridConfig {
            levels,
            features,
            log2_table,
            base,
            per_level_scale: b.exp(),
        }
    }
}

/// One level's geometry.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Level {
    pub scale: f32,
    pub res: u32,
    /// Table entries.
    pub size: u32,
    pub dense: bool,
    /// Offset of the level's table in the parameter vector (in f32s).
    pub offset: usize,
}

/// The encoding: level geometry over tables stored in a flat parameter slice.
#[derive(Clone, Debug)]
pub struct HashGrid {
    pub cfg: HashGridConfig,
    pub levels: Vec<Level>,
    /// Parameters of all tables together.
    pub n_params: usize,
}

const PRIMES: [u32; 3] = [1, 2_654_435_761, 805_459_861];

impl HashGrid {
    pub fn new(cfg: HashGridConfig) -> Self {
        let t = 1u64 << cfg.log2_table;
        let mut offset = 0;
        let levels = (0..cfg.levels)
            .map(|l| {
                let scale =
                    ((l as f64) * cfg.per_level_scale.log2()).exp2() * cfg.base as f64 - 1.0;
                // Saturating: a hostile header may ask for absurd resolutions.
                let res = (scale.ceil() as u32).saturating_add(1);
                let cube = (res as u64).saturating_pow(3);
                let size = cube.min(1 << 62).next_multiple_of(8).min(t) as u32;
                // tiny-cuda-nn hashes past res 1625 to avoid index overflow in 3-D.
                let dense = size as u64 >= cube && res <= 1625;
                let lv = Level {
                    scale: scale as f32,
                    res,
                    size,
                    dense,
                    offset,
                };
                offset += size as usize * cfg.features;
                lv
            })
            .collect();
        HashGrid {
            cfg,
            levels,
            n_params: offset,
        }
    }

    /// Outputs per position: L·F.
    pub fn n_out(&self) -> usize {
        self.cfg.levels * self.cfg.features
    }

    /// The table entry of grid vertex `g` on `level`.
    #[inline]
    pub fn index(level: &Level, g: [u32; 3]) -> u32 {
        if level.dense {
            (g[0]
                .wrapping_add(g[1].wrapping_mul(level.res))
                .wrapping_add(g[2].wrapping_mul(level.res * level.res)))
                % level.size
        } else {
            let h = g[0].wrapping_mul(PRIMES[0])
                ^ g[1].wrapping_mul(PRIMES[1])
                ^ g[2].wrapping_mul(PRIMES[2]);
            h % level.size
        }
    }

    /// The 8 corners of `x` on `level`: (parameter offset of the entry, weight).
    #[inline]
    pub fn corners(&self, level: &Level, x: &[f32; 3]) -> [(usize, f32); 8] {
        let mut g = [0u32; 3];
        let mut f = [0f32; 3];
        for a in 0..3 {
            let pos = x[a] * level.scale + 0.5;
            let fl = pos.floor();
            g[a] = fl as u32;
            f[a] = pos - fl;
        }
        let mut out = [(0usize, 0f32); 8];
        for (c, o) in out.iter_mut().enumerate() {
            let mut w = 1.0;
            let mut v = g;
            for a in 0..3 {
                if c & (1 << a) != 0 {
                    v[a] += 1;
                    w *= f[a];
                } else {
                    w *= 1.0 - f[a];
                }
            }
            *o = (
                level.offset + Self::index(level, v) as usize * self.cfg.features,
                w,
            );
        }
        out
    }

    /// Encodes `x` into `out` (L·F features).
    pub fn forward(&self, params: &[f32], x: &[f32; 3], out: &mut [f32]) {
        let nf = self.cfg.features;
        for (l, level) in self.levels.iter().enumerate() {
            let o = &mut out[l * nf..(l + 1) * nf];
            o.fill(0.0);
            for (at, w) in self.corners(level, x) {
                for k in 0..nf {
                    o[k] += w * params[at + k];
                }
            }
        }
    }

    /// Adds the table gradient of `d_out` (dL/d features at `x`) into `grad`.
    pub fn backward(&self, x: &[f32; 3], d_out: &[f32], grad: &mut [f32]) {
        let nf = self.cfg.features;
        for (l, level) in self.levels.iter().enumerate() {
            let d = &d_out[l * nf..(l + 1) * nf];
            for (at, w) in self.corners(level, x) {
                for k in 0..nf {
                    grad[at + k] += w * d[k];
                }
            }
        }
    }

    /// tiny-cuda-nn's table initialisation: uniform in ±1e-4.
    pub fn init(&self, rng: &mut crate::Rng, params: &mut [f32]) {
        for p in params.iter_mut() {
            *p = rng.uniform(-1e-4, 1e-4);
        }
    }
}
