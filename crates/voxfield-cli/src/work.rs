//! Long work: the worker-thread count, progress bars (hidden when stderr is not a
//! terminal) and Ctrl-C, which stops work between chunks so outputs are cleaned up.

use anyhow::{bail, Context, Result};
use indicatif::{ProgressBar, ProgressStyle};

/// The most worker threads `--threads` may ask for.
const MAX_THREADS: usize = 1024;

/// Sets up the global pool with `n` threads (default: every core).
pub(crate) fn set_threads(n: Option<usize>) -> Result<()> {
    if let Some(n) = n {
        if n == 0 || n > MAX_THREADS {
            bail!(
                "--threads {n}: give 1 to {MAX_THREADS} (this machine has {} cores)",
                rayon::current_num_threads()
            );
        }
        rayon::ThreadPoolBuilder::new()
            .num_threads(n)
            .build_global()
            .context("setting up threads")?;
    }
    Ok(())
}

/// A progress bar for `total` steps of `what`.
pub(crate) fn progress(total: u64, what: &str) -> ProgressBar {
    let bar = ProgressBar::new(total);
    bar.set_style(
        ProgressStyle::with_template("{msg} [{bar:40}] {pos}/{len} ({eta})")
            .expect("static template")
            .progress_chars("=> "),
    );
    bar.set_message(what.to_string());
    bar
}

/// Set by SIGINT/SIGTERM so long work stops between chunks and cleans up.
static INTERRUPTED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    INTERRUPTED.store(true, std::sync::atomic::Ordering::SeqCst);
}

/// After interrupted work: says that `out` was not written and exits with 130
/// (128 + SIGINT), as shells expect of an interrupted command.
pub(crate) fn exit_if_interrupted(out: &std::path::Path) {
    if INTERRUPTED.load(std::sync::atomic::Ordering::SeqCst) {
        eprintln!("voxfield: interrupted; {} was not written", out.display());
        std::process::exit(130);
    }
}

/// Installs the SIGINT/SIGTERM handler that sets `INTERRUPTED`.
pub(crate) fn catch_interrupts() {
    // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
    unsafe {
        libc::signal(libc::SIGINT, on_signal as *const () as libc::sighandler_t);
        libc::signal(libc::SIGTERM, on_signal as *const () as libc::sighandler_t);
    }
}

/// Shows (phase, done, total) reports of long library work on `bar`.
pub(crate) fn reporter(bar: &ProgressBar) -> impl Fn(&str, u64, u64) + Sync + '_ {
    move |phase, done, total| {
        bar.set_message(phase.to_string());
        bar.set_length(total);
        bar.set_position(done);
    }
}

/// Long library work's watch: reports shown by `report` (see [`reporter`]),
/// stopped by Ctrl-C.
pub(crate) fn watch<'a>(report: &'a (dyn Fn(&str, u64, u64) + Sync)) -> voxfield::Watch<'a> {
    voxfield::Watch {
        progress: report,
        stop: &interrupted,
    }
}

/// Whether Ctrl-C (or SIGTERM) has asked long work to stop.
pub(crate) fn interrupted() -> bool {
    INTERRUPTED.load(std::sync::atomic::Ordering::SeqCst)
}
