//! A uniform bucket grid over a cell's centres, for the neighbour search of
//! compactly supported kernels.

/// A uniform hash grid over a cell's centres with buckets the size of the
/// kernel's support, so a point's neighbours within the support lie in its
/// own and the adjacent buckets (a kd-tree radius query for fixed radius).
#[derive(Clone, Debug)]
pub struct Buckets {
    lo: [f64; 3],
    inv: f64,
    n: [usize; 3],
    /// Bucket start offsets into `order` (CSR).
    start: Vec<u32>,
    order: Vec<u32>,
    r2max: f64,
}

impl Buckets {
    pub fn new(dim: usize, m: usize, centres: &[f64], support: f64) -> Buckets {
        let mut lo = [0.0; 3];
        let mut n = [1usize; 3];
        for a in 0..dim {
            let xs = &centres[a * m..(a + 1) * m];
            let (mn, mx) = xs
                .iter()
                .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &v| {
                    (a.min(v), b.max(v))
                });
            lo[a] = if m > 0 { mn } else { 0.0 };
            n[a] = if m > 0 {
                (((mx - mn) / support).floor() as usize + 1).min(1 << 10)
            } else {
                1
            };
        }
        let inv = 1.0 / support;
        let nb: usize = n.iter().product();
        let bucket = |i: usize| -> usize {
            let mut id = 0;
            for a in 0..dim {
                let c = (((centres[a * m + i] - lo[a]) * inv) as usize).min(n[a] - 1);
                id = id * n[a] + c;
            }
            id
        };
        let ids: Vec<usize> = (0..m).map(bucket).collect();
        let (start, order) = voxfield_core::group::group_by_key(&ids, nb);
        Buckets {
            lo,
            inv,
            n,
            start,
            order,
            r2max: support * support,
        }
    }

    /// Calls `f(j, r²)` for every centre j within the support of `u`.
    #[inline]
    pub fn visit(&self, dim: usize, centres: &[f64], u: &[f64; 3], mut f: impl FnMut(usize, f64)) {
        let m = self.order.len();
        let mut lo = [0usize; 3];
        let mut hi = [0usize; 3];
        for a in 0..dim {
            let c = ((u[a] - self.lo[a]) * self.inv).floor();
            let c = c.clamp(-1.0, self.n[a] as f64) as i64;
            lo[a] = (c - 1).max(0) as usize;
            hi[a] = ((c + 1).max(0) as usize).min(self.n[a] - 1);
            if c + 1 < 0 || c > self.n[a] as i64 {
                return;
            }
        }
        let mut idx = [0usize; 3];
        idx[..dim].copy_from_slice(&lo[..dim]);
        loop {
            let mut id = 0;
            for a in 0..dim {
                id = id * self.n[a] + idx[a];
            }
            for &j in &self.order[self.start[id] as usize..self.start[id + 1] as usize] {
                let j = j as usize;
                let mut r2 = 0.0;
                for a in 0..dim {
                    let d = u[a] - centres[a * m + j];
                    r2 += d * d;
                }
                if r2 < self.r2max {
                    f(j, r2);
                }
            }
            // Next bucket in the neighbourhood.
            if !voxfield_core::odometer::step_inclusive(&mut idx[..dim], &lo[..dim], &hi[..dim]) {
                return;
            }
        }
    }

    /// Σ f(j, r²) over the centres within the support of `u`.
    #[inline]
    pub fn sum(
        &self,
        dim: usize,
        centres: &[f64],
        u: &[f64; 3],
        mut f: impl FnMut(usize, f64) -> f64,
    ) -> f64 {
        let mut s = 0.0;
        self.visit(dim, centres, u, |j, r2| s += f(j, r2));
        s
    }
}
