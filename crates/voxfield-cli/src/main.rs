//! The `voxfield` command-line tool: a thin shell that parses arguments, opens
//! sources and calls the engines. Exit codes: 0 success, 1 error, 2 bad usage.

mod args;
mod commands;
mod demo;
mod environment;
mod field_source;
mod neural;
mod phantom;
mod picture;
mod points;
mod rbf;
mod render;
mod sample;
mod serve;
mod slice;
mod vectors;
mod volumes;
mod work;

use clap::Parser;

fn main() {
    // A closed pipe (`voxfield info ... | head`) ends the process quietly, as other
    // command-line tools do, instead of a panic on the next print.
    // SAFETY: restoring the default disposition of SIGPIPE before any thread starts.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    let cli = args::Cli::parse();
    if let Err(e) = commands::run(cli) {
        eprintln!("voxfield: error: {}", printable(&format!("{e:#}")));
        std::process::exit(1);
    }
}

/// `s` with control characters escaped: names from a file (an HDF5 object,
/// a Zarr key) must not drive the user's terminal.
pub(crate) fn printable(s: &str) -> std::borrow::Cow<'_, str> {
    if !s.chars().any(|c| c.is_control() && c != '\n') {
        return s.into();
    }
    s.chars()
        .map(|c| {
            if c.is_control() && c != '\n' {
                c.escape_default().to_string()
            } else {
                c.to_string()
            }
        })
        .collect::<String>()
        .into()
}
