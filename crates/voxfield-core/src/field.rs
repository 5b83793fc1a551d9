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
}
