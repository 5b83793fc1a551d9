//! Long work's one shape of progress and cancellation, for every engine (RBF
//! fits, vector writes and pyramids): front ends pass a progress bar and a
//! Ctrl-C flag the same way to each.

use crate::{Error, Result};

/// Progress and cancellation for long work: `progress(phase, done, total)` as
/// units finish; `stop()`, polled between units, ends the work with an
/// "interrupted" error and leaves what was published before intact.
pub struct Watch<'a> {
    pub progress: &'a (dyn Fn(&str, u64, u64) + Sync),
    pub stop: &'a (dyn Fn() -> bool + Sync),
}

impl Watch<'_> {
    /// No reports, never stopped.
    pub fn none() -> Watch<'static> {
        Watch {
            progress: &|_, _, _| {},
            stop: &|| false,
        }
    }

    /// An "interrupted" error once `stop()` says so.
    pub fn check(&self) -> Result<()> {
        if (self.stop)() {
            Err(Error::invalid("interrupted"))
        } else {
            Ok(())
        }
    }

    /// Reports `done` of `total` units of `phase`.
    pub fn report(&self, phase: &str, done: u64, total: u64) {
        (self.progress)(phase, done, total)
    }
}
