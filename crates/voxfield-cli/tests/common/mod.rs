//! Helpers shared by the CLI's integration tests.
#![allow(dead_code)] // each test crate uses its own subset

use std::path::Path;
use std::process::Command;

/// Runs `voxfield args`: (exit code, stderr); a panic is a failure whatever the code.
pub fn run(args: &[&str]) -> (i32, String) {
    let o = Command::new(env!("CARGO_BIN_EXE_voxfield"))
        .args(args)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr).to_string();
    assert!(!err.contains("panicked"), "{args:?}: {err}");
    (o.status.code().unwrap_or(-1), err)
}

/// A path as an argument.
pub fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}
