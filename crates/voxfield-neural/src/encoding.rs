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

/// The most levels an encoding may have.
pub const MAX_LEVELS: usize = 32;

impl HashGrid {
    /// Panics past [`MAX_LEVELS`] levels (`net::checked_params` refuses them first).
    pub fn new(cfg: HashGridConfig) -> Self {
        assert!(cfg.levels <= MAX_LEVELS, "{} levels", cfg.levels);
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

    /// Where `level`'s table lies in the parameter vector.
    pub fn table(&self, level: &Level) -> std::ops::Range<usize> {
        level.offset..level.offset + level.size as usize * self.cfg.features
    }

    /// Outputs per position: L·F.
    pub fn n_out(&self) -> usize {
        self.cfg.levels * self.cfg.features
    }

    /// The table entry of grid vertex `g` on `level`.
    #[inline]
    pub fn index(level: &Level, g: [u32; 3]) -> u32 {
        let i = if level.dense {
            g[0].wrapping_add(g[1].wrapping_mul(level.res))
                .wrapping_add(g[2].wrapping_mul(level.res.wrapping_mul(level.res)))
        } else {
            g[0].wrapping_mul(PRIMES[0])
                ^ g[1].wrapping_mul(PRIMES[1])
                ^ g[2].wrapping_mul(PRIMES[2])
        };
        // Hashed tables are powers of two; dense indices rarely reach the size
        // (only vertices past the grid's far face): skip the division.
        if level.size.is_power_of_two() {
            i & (level.size - 1)
        } else if i < level.size {
            i
        } else {
            i % level.size
        }
    }

    /// The 8 corners of `x` on `level`: parameter offsets of their entries and
    /// trilinear weights, corner c having +1 on axis a where bit a of c is set.
    #[inline]
    pub fn corners(&self, level: &Level, x: &[f32; 3], at: &mut [u32], w: &mut [f32]) {
        let mut g = [0u32; 3];
        let mut f = [0f32; 3];
        for a in 0..3 {
            // x ∈ [0,1], so the position is positive and truncation is floor.
            let pos = x[a] * level.scale + 0.5;
            g[a] = pos as u32;
            f[a] = pos - g[a] as f32;
        }
        let nf = self.cfg.features as u32;
        for c in 0..8 {
            let v = [0, 1, 2].map(|a| g[a] + ((c >> a) & 1) as u32);
            at[c] = level.offset as u32 + Self::index(level, v) * nf;
            w[c] = [0, 1, 2]
                .map(|a| if (c >> a) & 1 == 1 { f[a] } else { 1.0 - f[a] })
                .iter()
                .product();
        }
    }

    /// Every level's corners of `x` (L·8 offsets and weights).
    pub fn all_corners(&self, x: &[f32; 3], at: &mut [u32], w: &mut [f32]) {
        for (l, level) in self.levels.iter().enumerate() {
            let r = l * 8..(l + 1) * 8;
            self.corners(level, x, &mut at[r.clone()], &mut w[r]);
        }
    }

    /// Features from corners found by `all_corners` (L·F outputs).
    pub fn gather(&self, params: &[f32], at: &[u32], w: &[f32], out: &mut [f32]) {
        let nf = self.cfg.features;
        for (l, o) in out.chunks_exact_mut(nf).enumerate() {
            o.fill(0.0);
            for c in l * 8..(l + 1) * 8 {
                let p = &params[at[c] as usize..at[c] as usize + nf];
                for k in 0..nf {
                    o[k] += w[c] * p[k];
                }
            }
        }
    }

    /// Adds the table gradient of `d_out` (dL/d features) at corners found by
    /// `all_corners` into `grad`.
    pub fn scatter(&self, at: &[u32], w: &[f32], d_out: &[f32], grad: &mut [f32]) {
        let nf = self.cfg.features;
        for (l, d) in d_out.chunks_exact(nf).enumerate() {
            for c in l * 8..(l + 1) * 8 {
                let g = &mut grad[at[c] as usize..at[c] as usize + nf];
                for k in 0..nf {
                    g[k] += w[c] * d[k];
                }
            }
        }
    }

    /// Encodes the row of positions (x, y, z) for each z of `zs` into `out`,
    /// feature-major: L·F rows of `out.len() / (L·F)` values (at least
    /// `zs.len()`), value j of a row for `zs[j]`. It exploits the row's
    /// coherence: on each level the
    /// four (x, y) corners are fixed, so the part of their table indices they
    /// give is computed once, and the bilinear feature of a z-line of vertices
    /// is computed once and shared by every position between two lines (on
    /// coarse levels, dozens). Equals `forward` up to float rounding.
    pub fn encode_row(&self, params: &[f32], x: f32, y: f32, zs: &[f32], out: &mut [f32]) {
        match self.cfg.features {
            1 => self.encode_row_features::<1>(params, x, y, zs, out),
            2 => self.encode_row_features::<2>(params, x, y, zs, out),
            4 => self.encode_row_features::<4>(params, x, y, zs, out),
            8 => self.encode_row_features::<8>(params, x, y, zs, out),
            _ => self.encode_row_features::<0>(params, x, y, zs, out),
        }
    }

    /// `encode_row` with `F` features per entry known at compile time (0: the
    /// configuration's, at run time).
    fn encode_row_features<const F: usize>(
        &self,
        params: &[f32],
        x: f32,
        y: f32,
        zs: &[f32],
        out: &mut [f32],
    ) {
        let nf = if F == 0 { self.cfg.features } else { F };
        let stride = out.len() / self.n_out();
        assert!(stride >= zs.len(), "room for every position");
        for (l, level) in self.levels.iter().enumerate() {
            let mut g = [0u32; 2];
            let mut f = [0f32; 2];
            for (a, v) in [x, y].into_iter().enumerate() {
                let pos = v * level.scale + 0.5;
                g[a] = pos as u32;
                f[a] = pos - g[a] as f32;
            }
            let wxy = [
                (1.0 - f[0]) * (1.0 - f[1]),
                f[0] * (1.0 - f[1]),
                (1.0 - f[0]) * f[1],
                f[0] * f[1],
            ];
            // The part of each corner's index its (x, y) gives (wrapping
            // arithmetic, as `index`), and what one step in z adds to it.
            let base = [0, 1, 2, 3].map(|c| {
                let (gx, gy) = (g[0] + (c & 1), g[1] + (c >> 1));
                if level.dense {
                    gx.wrapping_add(gy.wrapping_mul(level.res))
                } else {
                    gx.wrapping_mul(PRIMES[0]) ^ gy.wrapping_mul(PRIMES[1])
                }
            });
            let (dense, size) = (level.dense, level.size);
            let z_step = if dense {
                level.res.wrapping_mul(level.res)
            } else {
                PRIMES[2]
            };
            let mask = size.is_power_of_two().then(|| size - 1);
            let table = &params[self.table(level)];
            // The bilinear feature of the z-line of vertices at `iz`.
            let line = |iz: u32| {
                let zi = iz.wrapping_mul(z_step);
                let mut v = [0f32; 8];
                for (c, w) in wxy.iter().enumerate() {
                    let i = if dense {
                        base[c].wrapping_add(zi)
                    } else {
                        base[c] ^ zi
                    };
                    let i = match mask {
                        Some(mask) => i & mask,
                        None if i < size => i,
                        None => i % size,
                    } as usize;
                    let e = &table[i * nf..i * nf + nf];
                    for k in 0..nf {
                        v[k] += w * e[k];
                    }
                }
                v
            };
            let mut cached = None;
            let (mut lo, mut hi) = ([0f32; 8], [0f32; 8]);
            for (j, z) in zs.iter().enumerate() {
                let pos = z * level.scale + 0.5;
                let gz = pos as u32;
                let fz = pos - gz as f32;
                if cached != Some(gz) {
                    if cached == Some(gz.wrapping_sub(1)) {
                        lo = hi;
                    } else {
                        lo = line(gz);
                    }
                    hi = line(gz + 1);
                    cached = Some(gz);
                }
                for k in 0..nf {
                    out[(l * nf + k) * stride + j] = (1.0 - fz) * lo[k] + fz * hi[k];
                }
            }
        }
    }

    /// Encodes `x` into `out` (L·F features).
    pub fn forward(&self, params: &[f32], x: &[f32; 3], out: &mut [f32]) {
        let (mut at, mut w) = ([0u32; 8 * MAX_LEVELS], [0f32; 8 * MAX_LEVELS]);
        let n = 8 * self.cfg.levels;
        self.all_corners(x, &mut at[..n], &mut w[..n]);
        self.gather(params, &at[..n], &w[..n], out);
    }

    /// Adds the table gradient of `d_out` (dL/d features at `x`) into `grad`.
    pub fn backward(&self, x: &[f32; 3], d_out: &[f32], grad: &mut [f32]) {
        let (mut at, mut w) = ([0u32; 8 * MAX_LEVELS], [0f32; 8 * MAX_LEVELS]);
        let n = 8 * self.cfg.levels;
        self.all_corners(x, &mut at[..n], &mut w[..n]);
        self.scatter(&at[..n], &w[..n], d_out, grad);
    }

    /// tiny-cuda-nn's table initialisation: uniform in ±1e-4.
    pub fn init(&self, rng: &mut crate::Rng, params: &mut [f32]) {
        for p in params.iter_mut() {
            *p = rng.uniform(-1e-4, 1e-4);
        }
    }
}
