//! The samples of a training: every voxel once per epoch, read brick by brick
//! through the source's own chunk reads, in passes that fit a sample budget
//! (split by a hash of each voxel's index, fresh per epoch), shuffled so every
//! batch is a uniform draw from the whole volume.

use voxfield_core::work::Watch;
use voxfield_core::{Error, Result, VolumeSource};

use crate::Rng;

/// Edge of the bricks a volume is read in.
const BRICK: usize = 32;
/// Bytes a training sample holds (coordinates and value, f32), and with its
/// target gradient (for a gradient loss).
pub(crate) const SAMPLE_BYTES: u64 = 16;
const SAMPLE_BYTES_WITH_GRADIENT: u64 = 28;

/// Passes per epoch, at most (each reads the whole volume).
const MAX_PASSES: u64 = 64;

/// The bricks of a volume of `shape`, C order, by number: nothing is stored
/// per brick (a forged 2^40-voxel volume has 2^25 of them).
#[derive(Clone, Copy)]
pub(crate) struct Bricks {
    grid: [usize; 3],
}

/// The bricks tiling `shape`.
pub(crate) fn bricks(shape: [usize; 3]) -> Bricks {
    Bricks {
        grid: shape.map(|s| s.div_ceil(BRICK)),
    }
}

impl Bricks {
    pub(crate) fn len(&self) -> usize {
        self.grid.iter().product()
    }

    /// The first voxel of brick `i`.
    pub(crate) fn get(&self, i: usize) -> [usize; 3] {
        let [_, n1, n2] = self.grid;
        [i / (n1 * n2) * BRICK, i / n2 % n1 * BRICK, i % n2 * BRICK]
    }

    pub(crate) fn iter(self) -> impl Iterator<Item = [usize; 3]> {
        (0..self.len()).map(move |i| self.get(i))
    }
}

fn brick_size(shape: [usize; 3], start: [usize; 3]) -> [usize; 3] {
    [0, 1, 2].map(|a| BRICK.min(shape[a] - start[a]))
}

/// The phase of the value scan before training.
const VALUE_RANGE: &str = "scanning values (bricks)";

/// The value range, streamed brick by brick (`watch` can stop it); NaN or
/// infinite voxels are refused.
pub(crate) fn value_range(src: &dyn VolumeSource, watch: &Watch) -> Result<(f64, f64)> {
    let info = src.info();
    let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
    let mut bad = 0u64;
    let mut buf = vec![];
    let all = bricks(info.shape);
    for (i, b) in all.iter().enumerate() {
        watch.check()?;
        watch.report(VALUE_RANGE, i as u64, all.len() as u64);
        let size = brick_size(info.shape, b);
        buf.resize(size.iter().product(), 0.0);
        src.read_box(b, size, &mut buf)?;
        for &v in &buf {
            let v = match info.value_scale {
                Some((m, q)) => v * m + q,
                None => v,
            };
            if v.is_finite() {
                lo = lo.min(v);
                hi = hi.max(v);
            } else {
                bad += 1;
            }
        }
    }
    if bad > 0 {
        return Err(Error::format(
            &info.path,
            format!("{bad} voxels are NaN or infinite; neural compression needs finite values (refused)"),
        ));
    }
    Ok((lo, hi))
}

/// The samples of one training run: every voxel once per epoch, read in
/// `passes` that fit the sample budget (one pass stays loaded across epochs),
/// shuffled so each batch is a uniform draw from the whole volume.
pub(crate) struct Samples<'a> {
    src: &'a dyn VolumeSource,
    passes: u64,
    batch: usize,
    norm: (f64, f64),
    loaded: bool,
    buf: Vec<f64>,
    data: Sampled,
}

/// Training samples: positions in [0,1]³, normalised values and, when asked,
/// target gradients (numpy.gradient of the normalised volume).
#[derive(Default)]
pub(crate) struct Sampled {
    pub xs: Vec<[f32; 3]>,
    pub ys: Vec<f32>,
    pub gs: Option<Vec<[f32; 3]>>,
}

impl Sampled {
    /// Empty, holding gradients if `gradients`.
    pub(crate) fn new(gradients: bool) -> Self {
        Sampled {
            gs: gradients.then(Vec::new),
            ..Default::default()
        }
    }

    fn clear(&mut self) {
        self.xs.clear();
        self.ys.clear();
        if let Some(g) = self.gs.as_mut() {
            g.clear();
        }
    }
}

/// Whether voxel `v` belongs to pass `pass` of `passes` under `key` (a hash
/// share; every voxel when there is one pass).
pub(crate) fn in_pass(v: u64, key: u64, (pass, passes): (u64, u64)) -> bool {
    passes == 1 || crate::mix64(v ^ key) % passes == pass
}

impl<'a> Samples<'a> {
    /// The samples of `src` (values normalised by `norm`, batches of
    /// `batch`, with target gradients if `gradients`) in as many passes as
    /// `budget` bytes of samples need.
    pub(crate) fn new(
        src: &'a dyn VolumeSource,
        budget: usize,
        batch: usize,
        norm: (f64, f64),
        gradients: bool,
    ) -> Result<Self> {
        let total: u64 = src.info().shape.iter().map(|&n| n as u64).product();
        let per = if gradients {
            SAMPLE_BYTES_WITH_GRADIENT
        } else {
            SAMPLE_BYTES
        };
        let passes = passes(total, budget, per);
        if passes > MAX_PASSES {
            return Err(Error::invalid(format!(
                "a sample memory of {} MiB is too small for {total} voxels: give at least {} MiB \
                 (each pass per epoch reads the whole volume; at most {MAX_PASSES} passes)",
                budget >> 20,
                (total * per * 11 / 10 / MAX_PASSES).div_ceil(1 << 20)
            )));
        }
        Ok(Samples {
            src,
            passes,
            batch,
            norm,
            loaded: false,
            buf: vec![],
            data: Sampled::new(gradients),
        })
    }

    /// Loads pass `pass` (the voxels whose hash under `key` falls in it; every
    /// voxel when there is one pass) as training samples.
    fn load(&mut self, pass: u64, key: u64) -> Result<()> {
        let passes = self.passes;
        self.data.clear();
        let keep = |v: u64| in_pass(v, key, (pass, passes));
        for b in bricks(self.src.info().shape).iter() {
            brick_samples(self.src, b, self.norm, &keep, &mut self.buf, &mut self.data)?;
        }
        Ok(())
    }

    /// Runs `step` on every batch of one epoch (positions, values, and target
    /// gradients when held); `step` returns false to stop, and the epoch then
    /// returns false. `watch` may stop it before each batch.
    pub(crate) fn epoch(
        &mut self,
        rng: &mut Rng,
        watch: &Watch,
        mut step: impl FnMut(&[[f32; 3]], &[f32], Option<&[[f32; 3]]>) -> bool,
    ) -> Result<bool> {
        let key = rng.next_u64();
        for pass in 0..self.passes {
            if self.passes > 1 || !self.loaded {
                self.load(pass, key)?;
                self.loaded = true;
            }
            let d = &mut self.data;
            shuffle(&mut d.xs, &mut d.ys, d.gs.as_deref_mut(), rng);
            for (k, (bx, by)) in
                d.xs.chunks(self.batch)
                    .zip(d.ys.chunks(self.batch))
                    .enumerate()
            {
                watch.check()?;
                let bg =
                    d.gs.as_ref()
                        .map(|g| &g[k * self.batch..k * self.batch + bx.len()]);
                if !step(bx, by, bg) {
                    return Ok(false);
                }
            }
        }
        Ok(true)
    }
}

/// Passes per epoch so that one pass's samples (`per` bytes each) fit
/// `budget` bytes (with 10 % headroom: a pass's share of the voxels is random).
pub(crate) fn passes(voxels: u64, budget: usize, per: u64) -> u64 {
    (voxels as u128 * per as u128 * 11 / 10)
        .div_ceil(budget.max(1) as u128)
        .clamp(1, u64::MAX as u128) as u64
}

/// Appends the voxels of the brick at `start` whose linear index passes `keep`
/// as training samples: coordinates in [0,1]³ of the volume, values normalised
/// by `(lo, scale)`, and, if `out` holds gradients, the gradient of the
/// normalised volume as `numpy.gradient` takes it (central differences,
/// one-sided at the faces, 0 along an axis of one voxel). The brick is read
/// once, with a one-voxel margin when gradients are asked.
pub(crate) fn brick_samples(
    src: &dyn VolumeSource,
    start: [usize; 3],
    (lo, scale): (f64, f64),
    keep: &dyn Fn(u64) -> bool,
    buf: &mut Vec<f64>,
    out: &mut Sampled,
) -> Result<()> {
    let info = src.info();
    let shape = info.shape;
    let inv = shape.map(|n| if n > 1 { 1.0 / (n - 1) as f32 } else { 0.0 });
    let size = brick_size(shape, start);
    let margin = out.gs.is_some() as usize;
    let first = start.map(|s| s.saturating_sub(margin));
    let ext = [0, 1, 2].map(|a| (start[a] + size[a] + margin).min(shape[a]) - first[a]);
    buf.resize(ext.iter().product(), 0.0);
    src.read_box(first, ext, buf)?;
    let (m, q) = info.value_scale.unwrap_or((1.0, 0.0));
    let at = |g: [usize; 3]| {
        buf[((g[0] - first[0]) * ext[1] + (g[1] - first[1])) * ext[2] + g[2] - first[2]]
    };
    for i in 0..size[0] {
        for j in 0..size[1] {
            for k in 0..size[2] {
                let g = [start[0] + i, start[1] + j, start[2] + k];
                let linear = ((g[0] * shape[1] + g[1]) * shape[2] + g[2]) as u64;
                if !keep(linear) {
                    continue;
                }
                out.xs.push([0, 1, 2].map(|a| g[a] as f32 * inv[a]));
                out.ys.push(((at(g) * m + q - lo) * scale) as f32);
                if let Some(gs) = out.gs.as_mut() {
                    gs.push([0, 1, 2].map(|a| {
                        let (mut p, mut n) = (g, g);
                        p[a] = (g[a] + 1).min(shape[a] - 1);
                        n[a] = g[a].saturating_sub(1);
                        if p[a] == n[a] {
                            0.0
                        } else {
                            ((at(p) - at(n)) * m * scale / (p[a] - n[a]) as f64) as f32
                        }
                    }));
                }
            }
        }
    }
    Ok(())
}

/// Fisher–Yates shuffle of the samples' slices in step.
pub(crate) fn shuffle<A, B, C>(a: &mut [A], b: &mut [B], mut c: Option<&mut [C]>, rng: &mut Rng) {
    for i in (1..a.len()).rev() {
        let j = (rng.next_u64() % (i as u64 + 1)) as usize;
        a.swap(i, j);
        b.swap(i, j);
        if let Some(c) = c.as_mut() {
            c.swap(i, j);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use voxfield_core::{Axes, DType, Endian, VolumeInfo};

    /// A float32 volume whose value is the voxel's linear index.
    struct Index(VolumeInfo);

    impl VolumeSource for Index {
        fn info(&self) -> &VolumeInfo {
            &self.0
        }
        fn read_chunk(&self, idx: [usize; 3], out: &mut [u8]) -> Result<()> {
            let [a, b, c] = self.0.shape;
            assert_eq!(idx, [0, 0, 0]);
            for (n, v) in out.chunks_exact_mut(4).enumerate() {
                assert!(n < a * b * c);
                v.copy_from_slice(&(n as f32).to_ne_bytes());
            }
            Ok(())
        }
    }

    #[test]
    fn passes_split_every_voxel_exactly_once() {
        let shape = [37, 40, 35];
        let src = Index(VolumeInfo {
            format: "test",
            path: "index".into(),
            shape,
            dtype: DType::F32,
            endian: Endian::NATIVE,
            chunk_shape: shape,
            affine: None,
            bytes_on_disk: 0,
            value_scale: None,
            notes: vec![],
            axes: Axes::plain(shape),
        });
        let total = 37 * 40 * 35;
        // A budget of a fifth of the samples.
        let n = passes(total as u64, total * 16 / 5, SAMPLE_BYTES);
        assert_eq!(n, 6);
        let key = 0x1234;
        let mut seen = vec![0u8; total];
        let mut buf = vec![];
        for pass in 0..n {
            let mut out = Sampled::new(false);
            let keep = |v: u64| in_pass(v, key, (pass, n));
            for b in bricks(shape).iter() {
                brick_samples(&src, b, (0.0, 1.0), &keep, &mut buf, &mut out).unwrap();
            }
            let Sampled { xs, ys, .. } = out;
            // Each pass holds about its share (within 10 %) and sees all of the volume.
            assert!(
                (xs.len() as f64 - total as f64 / n as f64).abs() < 0.1 * total as f64 / n as f64
            );
            assert!(xs.iter().any(|x| x[0] < 0.1) && xs.iter().any(|x| x[0] > 0.9));
            for (x, &y) in xs.iter().zip(&ys) {
                let g = [0, 1, 2].map(|a| (x[a] * (shape[a] - 1) as f32).round() as usize);
                assert_eq!(((g[0] * 40 + g[1]) * 35 + g[2]) as f32, y);
                seen[y as usize] += 1;
            }
        }
        assert!(seen.iter().all(|&s| s == 1));
        // Gradients of the linear index: exact everywhere (one-sided at the
        // faces too), in the order the samples are taken, scaled by the norm.
        let keep = |v: u64| v.is_multiple_of(3);
        let mut out = Sampled::new(true);
        for b in bricks(shape).iter() {
            brick_samples(&src, b, (0.0, 0.5), &keep, &mut buf, &mut out).unwrap();
        }
        let (xs, ys, gs) = (out.xs, out.ys, out.gs.unwrap());
        assert_eq!(gs.len(), xs.len());
        // The values are the same with or without the margin read.
        for (x, &y) in xs.iter().zip(&ys) {
            let g = [0, 1, 2].map(|a| (x[a] * (shape[a] - 1) as f32).round() as usize);
            assert_eq!(((g[0] * 40 + g[1]) * 35 + g[2]) as f32 * 0.5, y);
        }
        assert!(gs.iter().all(|g| *g == [700.0, 17.5, 0.5]));
        assert_eq!(passes(total as u64, 1 << 30, SAMPLE_BYTES), 1);
    }
}
