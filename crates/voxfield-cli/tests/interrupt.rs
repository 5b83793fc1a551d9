//! Ctrl-C during long work: the command exits 130 and leaves nothing at its output.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use voxfield_io::npy;

mod common;
use common::s;

/// Starts `voxfield args`, waits until `ready()` (or 20 s), interrupts it and
/// returns its exit code and stderr.
fn interrupt(args: &[&str], ready: impl Fn() -> bool) -> (Option<i32>, String) {
    let child = Command::new(env!("CARGO_BIN_EXE_voxfield"))
        .args(args)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let t = Instant::now();
    while !ready() && t.elapsed() < Duration::from_secs(20) {
        std::thread::sleep(Duration::from_millis(10));
    }
    // SAFETY: sending a signal to our own child process.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(!err.contains("panicked"), "{err}");
    (out.status.code(), err)
}

fn listing(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    v.sort();
    v
}

#[test]
fn an_interrupted_rbf_fit_exits_130_and_writes_no_model() {
    let dir = tempfile::tempdir().unwrap();
    let d = |n: &str| dir.path().join(n);
    // Enough points that the fit takes seconds; interrupted 400 ms in.
    let n = 400_000;
    let pts: Vec<f64> = (0..n)
        .flat_map(|i| {
            let (x, y) = ((i % 631) as f64 + 0.37 * (i % 11) as f64, (i / 631) as f64);
            [x, y, (0.05 * x).sin() + 0.01 * y]
        })
        .collect();
    npy::write_npy(&d("p.npy"), &[n, 3], &pts).unwrap();
    let start = Instant::now();
    let (src, out) = (d("p.npy"), d("m.vxr"));
    let args = ["rbf", "fit", s(&src), "-o", s(&out)];
    let (code, err) = interrupt(&args, || start.elapsed() > Duration::from_millis(400));
    assert_eq!(code, Some(130), "{err}");
    assert!(err.contains("interrupted"), "{err}");
    assert_eq!(listing(dir.path()), ["p.npy"]);
}

#[test]
fn an_interrupted_convert_exits_130_and_leaves_no_store() {
    let dir = tempfile::tempdir().unwrap();
    let d = |n: &str| dir.path().join(n);
    // Noise compresses slowly at gzip level 9: seconds of chunks to write.
    let shape = [160, 160, 160];
    let mut x = 1u64;
    let vol: Vec<f32> = (0..shape.iter().product::<usize>())
        .map(|_| {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (x >> 40) as f32
        })
        .collect();
    npy::write_npy(&d("v.npy"), &shape, &vol).unwrap();
    let (src, out) = (d("v.npy"), d("v.zarr"));
    let args = [
        "convert",
        s(&src),
        s(&out),
        "--chunks",
        "16,16,16",
        "--codec",
        "gzip",
        "--level",
        "9",
    ];
    // Interrupted once the store is being written (its temporary name appears).
    let (code, err) = interrupt(&args, || listing(dir.path()).len() > 1);
    assert_eq!(code, Some(130), "{err}");
    assert!(err.contains("interrupted"), "{err}");
    assert_eq!(listing(dir.path()), ["v.npy"]);
}
