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
    // `voxfield compress meta-train ...` is the hidden `meta-train` command.
    let mut argv: Vec<std::ffi::OsString> = std::env::args_os().collect();
    if argv.get(1).is_some_and(|a| a == "compress")
        && argv.get(2).is_some_and(|a| a == "meta-train")
    {
        argv.remove(1);
    }
    let cli = args::Cli::parse_from(argv);
    if let Err(e) = commands::run(cli) {
        eprintln!("voxfield: error: {e:#}");
        std::process::exit(1);
    }
}
