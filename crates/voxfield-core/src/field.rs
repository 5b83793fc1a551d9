use crate::Result;

/// A continuous function from 3-D positions to values: a sampled volume, and later
/// compressed models, RBF fits and smoothed maps. Consumers (point lists, planes,
/// grids, slabs, renders, error metrics) are written once against this trait.
///
/// Calls are batched: one virtual call evaluates a whole block, so dispatch cost
/// never appears per point. Implementations must be deterministic and thread-safe.
pub trait Field: Send + Sync {
    /// Evaluates the field at `points` (in the field's own coordinate frame) into
    /// `out`, which has the same length. Positions the field cannot evaluate
    /// (outside, NaN, inf) receive the field's fill value; errors are for storage
    /// failures (an unreadable or corrupt chunk), never for odd positions.
    fn sample_block(&self, points: &[[f64; 3]], out: &mut [f64]) -> Result<()>;

    /// How many positions the field wants per call. Fields over chunked storage ask
    /// for whole requests so they can group positions by chunk and decode each
    /// chunk once; they parallelise internally.
    fn batch_hint(&self) -> usize {
        256
    }

    /// Evaluates the field along one row of a plane (`out.len()` positions; see
    /// [`PlaneRow`]), exactly as `sample_block` would at those positions. Fields
    /// over memory override it to make positions where they are used.
    fn sample_row(&self, row: &PlaneRow, out: &mut [f64]) -> Result<()> {
        let mut result = Ok(());
        row.blocks(out, |pts, o| {
            if result.is_ok() {
                result = self.sample_block(pts, o);
            }
        });
        result
    }
}

/// Positions `((origin + i·u) + j·v) + shift` for `i = i0, i0 + 1, …` at one
/// `j`: a row of a plane (and of a slab, shifted along its normal). Every
/// coordinate is summed in that order, so a row's positions are bit for bit the
/// plane's.
#[derive(Clone, Copy, Debug)]
pub struct PlaneRow {
    pub origin: [f64; 3],
    pub u: [f64; 3],
    pub v: [f64; 3],
    pub i0: usize,
    pub j: usize,
    /// Added last (a slab's depth along the normal); `None` adds nothing.
    pub shift: Option<[f64; 3]>,
}

impl PlaneRow {
    /// Calls `f` with the row's positions and `out`, 256 positions at a time.
    pub fn blocks(&self, out: &mut [f64], mut f: impl FnMut(&[[f64; 3]], &mut [f64])) {
        let mut buf = [[0.0; 3]; 256];
        for (b, o) in out.chunks_mut(buf.len()).enumerate() {
            let k0 = b * buf.len();
            for (k, p) in buf[..o.len()].iter_mut().enumerate() {
                *p = self.at(k0 + k);
            }
            f(&buf[..o.len()], o);
        }
    }

    /// Position `k` of the row.
    #[inline(always)]
    pub fn at(&self, k: usize) -> [f64; 3] {
        let (i, j) = ((self.i0 + k) as f64, self.j as f64);
        let p = [0, 1, 2].map(|a| self.origin[a] + i * self.u[a] + j * self.v[a]);
        match self.shift {
            Some(s) => [0, 1, 2].map(|a| p[a] + s[a]),
            None => p,
        }
    }
}
