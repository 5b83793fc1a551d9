//! Long work from Python: run on another thread while this one wakes every
//! 50 ms to let Python handle signals, so Ctrl-C stops the work between units
//! (through the engine's [`voxfield::Watch`]) and raises `KeyboardInterrupt`.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;

use crate::py_err;

/// Runs `job` with the GIL released; a pending signal stops it and is raised.
pub(crate) fn interruptible<T: Send>(
    py: Python<'_>,
    job: impl FnOnce(&voxfield::Watch) -> voxfield::Result<T> + Send,
) -> PyResult<T> {
    let stop = AtomicBool::new(false);
    let stopped = || stop.load(Ordering::Relaxed);
    let watch = voxfield::Watch {
        progress: &|_, _, _| {},
        stop: &stopped,
    };
    std::thread::scope(|s| {
        let running = s.spawn(|| job(&watch));
        while !running.is_finished() {
            py.detach(|| std::thread::sleep(Duration::from_millis(50)));
            if let Err(e) = py.check_signals() {
                stop.store(true, Ordering::Relaxed);
                let _ = running.join();
                return Err(e);
            }
        }
        running
            .join()
            .map_err(|_| PyRuntimeError::new_err("the work panicked"))?
            .map_err(py_err)
    })
}
