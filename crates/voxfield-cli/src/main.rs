//! The `voxfield` command-line tool: a thin shell that parses arguments, opens
//! sources and calls the engines. Exit codes: 0 success, 1 error, 2 bad usage.

mod args;
mod commands;
mod demo;
mod environment;
mod field_source;
mod neural;
mod phantom;
mod points;
mod rbf;
mod render;
mod sample;
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
        eprintln!("voxfield: error: {e:#}");
        std::process::exit(1);
    }
}
