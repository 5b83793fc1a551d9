//! Hostile inputs and outputs (issue 9, item 4): every failure class the probe found,
//! one case each. Nothing may panic, block, abort on an allocation, replace a special
//! file, overwrite an input or exit 0 with a lying output. Device and FIFO nodes are
//! made inside a temporary folder, never at a system path.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use voxfield_io::npy;

fn fx(p: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures")
        .join(p)
}

/// Runs voxfield with a 20 s limit (a blocked read fails the test instead of hanging
/// it); returns (exit code, stderr).
fn run(args: &[&str]) -> (Option<i32>, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_voxfield"))
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run voxfield");
    let t = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            let out = child.wait_with_output().unwrap();
            let err = String::from_utf8_lossy(&out.stderr).to_string();
            assert!(
                !err.contains("panicked"),
                "voxfield {args:?} panicked: {err}"
            );
            return (status.code(), err);
        }
        if t.elapsed() > Duration::from_secs(20) {
            child.kill().unwrap();
            panic!("voxfield {args:?} blocked for 20 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn fails(args: &[&str], needle: &str) {
    let (code, err) = run(args);
    assert_eq!(code, Some(1), "voxfield {args:?}: {err}");
    assert!(
        err.contains(needle),
        "voxfield {args:?}: '{err}' lacks '{needle}'"
    );
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn mkfifo(p: &Path) {
    let c = std::ffi::CString::new(s(p)).unwrap();
    // SAFETY: a valid NUL-terminated path inside the test's temporary folder.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o644) }, 0);
}

fn is_fifo(p: &Path) -> bool {
    use std::os::unix::fs::FileTypeExt;
    std::fs::symlink_metadata(p).unwrap().file_type().is_fifo()
}

struct Case {
    dir: tempfile::TempDir,
}

impl Case {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let vol: Vec<f32> = (0..4 * 5 * 6).map(|i| i as f32).collect();
        npy::write_npy(&dir.path().join("vol.npy"), &[4, 5, 6], &vol).unwrap();
        npy::write_npy(
            &dir.path().join("pts.npy"),
            &[2, 3],
            &[1.0f64, 1.0, 1.0, 2.0, 2.5, 3.0],
        )
        .unwrap();
        Case { dir }
    }
    fn p(&self, n: &str) -> PathBuf {
        self.dir.path().join(n)
    }
}

#[test]
fn outputs_never_destroy_or_lie() {
    let c = Case::new();
    let (vol, pts) = (c.p("vol.npy"), c.p("pts.npy"));
    let sample = |out: &Path| {
        vec!["sample", s(&vol), "--points", s(&pts), "--out", s(out)]
            .into_iter()
            .map(String::from)
            .collect::<Vec<_>>()
    };
    fn args(v: &[String]) -> Vec<&str> {
        v.iter().map(String::as_str).collect()
    }
    // A FIFO as --out is refused and stays a FIFO.
    let fifo = c.p("out.fifo");
    mkfifo(&fifo);
    let v = sample(&fifo);
    fails(&args(&v), "FIFO");
    assert!(is_fifo(&fifo));
    // A symlink as --out: the target is written, the link stays a link.
    let target = c.p("target.npy");
    let link = c.p("link.npy");
    std::os::unix::fs::symlink(&target, &link).unwrap();
    let v = sample(&link);
    assert_eq!(run(&args(&v)).0, Some(0));
    assert!(std::fs::symlink_metadata(&link)
        .unwrap()
        .file_type()
        .is_symlink());
    assert_eq!(npy::read_array(&target).unwrap().shape, vec![2]);
    // --out equal to an input: refused, the input unchanged.
    let before = std::fs::read(&vol).unwrap();
    let v = sample(&vol);
    fails(&args(&v), "overwrite the input");
    let v = sample(&pts);
    fails(&args(&v), "overwrite the input");
    assert_eq!(std::fs::read(&vol).unwrap(), before);
    fails(&["convert", s(&vol), s(&vol)], "overwrite the input");
    // Sizes that overflow or would be allocated whole.
    let big = c.p("s.npy");
    let slice = |size: &str, out: &Path| {
        run(&[
            "slice",
            s(&vol),
            "--origin",
            "0,0,0",
            "--u",
            "1,0,0",
            "--v",
            "0,1,0",
            "--size",
            size,
            "--out",
            s(out),
        ])
    };
    let (code, err) = slice("4294967296,4294967296", &big);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("too large"), "{err}");
    assert!(!big.exists());
    let (code, err) = slice("20000,20000", &c.p("s.png"));
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("PNG") && err.contains(".npy"), "{err}");
    // A large .npy slice is streamed band by band: its header matches its bytes.
    let (code, err) = slice("3000,2000", &big);
    assert_eq!(code, Some(0), "{err}");
    let a = npy::read_array(&big).unwrap();
    assert_eq!(a.shape, vec![2000, 3000]);
    // A stale temporary of a killed process is removed by the next write.
    let stale = c.p(".o.npy.voxfield-tmp-4194399-abcdef");
    std::fs::write(&stale, b"partial").unwrap();
    let v = sample(&c.p("o.npy"));
    assert_eq!(run(&args(&v)).0, Some(0));
    assert!(!stale.exists());
}

#[test]
fn a_closed_stdout_ends_quietly() {
    let c = Case::new();
    let mut child = Command::new(env!("CARGO_BIN_EXE_voxfield"))
        .args(["info", s(&c.p("vol.npy"))])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take()); // the reader goes away, as `| head -0` would
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn special_files_as_inputs_are_refused_not_read() {
    let c = Case::new();
    let fifo = c.p("in.fifo");
    mkfifo(&fifo);
    let out = c.p("o.npy");
    fails(
        &["info", s(&fifo), "--shape", "2,2,2", "--dtype", "u8"],
        "regular",
    );
    fails(
        &[
            "sample",
            s(&c.p("vol.npy")),
            "--points",
            s(&fifo),
            "--out",
            s(&out),
        ],
        "regular",
    );
    fails(
        &[
            "rbf",
            "eval",
            s(&fifo),
            "--points",
            s(&c.p("pts.npy")),
            "--out",
            s(&out),
        ],
        "regular",
    );
    let nrrd = c.p("x.nrrd");
    mkfifo(&nrrd);
    fails(&["info", s(&nrrd)], "regular");
    fails(
        &["info", "/dev/zero", "--shape", "2,2,2", "--dtype", "u8"],
        "regular",
    );
    // A header that never ends.
    let endless = c.p("endless.nrrd");
    let mut b = b"NRRD0004\n".to_vec();
    b.extend(std::iter::repeat_n(b'a', 3 << 20));
    std::fs::write(&endless, b).unwrap();
    fails(&["info", s(&endless)], "1 MiB");
    // Diagnosis: a symlink loop is not "no such file"; a Zarr path that is a file.
    let a = c.p("loop_a.npy");
    let b = c.p("loop_b.npy");
    std::os::unix::fs::symlink(&b, &a).unwrap();
    std::os::unix::fs::symlink(&a, &b).unwrap();
    fails(&["info", s(&a)], "symbolic links");
    let zfile = c.p("file.zarr");
    std::fs::write(&zfile, b"{}").unwrap();
    fails(&["info", s(&zfile)], "regular file, not a Zarr");
    let list = c.p("list.nhdr");
    std::fs::write(&list, b"NRRD0004\ntype: uchar\ndimension: 3\nsizes: 2 2 2\nencoding: raw\ndata file: LIST\na.raw\nb.raw\n").unwrap();
    fails(&["info", s(&list)], "several files");
}

#[test]
fn checks_are_not_skipped_and_values_not_changed_silently() {
    let c = Case::new();
    let (vol, pts, out) = (c.p("vol.npy"), c.p("pts.npy"), c.p("o.npy"));
    let plane = |extra: &[&str]| {
        let mut v = vec![
            "slice",
            s(&vol),
            "--origin",
            "0,0,0",
            "--u",
            "1,0,0",
            "--v",
            "0,1,0",
            "--size",
            "4,4",
            "--out",
            s(&out),
        ];
        v.extend_from_slice(extra);
        run(&v)
    };
    let (code, err) = plane(&["--thickness=-4"]);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("thickness"), "{err}");
    fails(
        &[
            "sample",
            s(&vol),
            "--points",
            s(&pts),
            "--out",
            s(&out),
            "--threads",
            "100000",
        ],
        "--threads",
    );
    fails(
        &["convert", s(&vol), s(&c.p("a.zarr")), "--threads", "100000"],
        "--threads",
    );
    fails(
        &[
            "convert",
            s(&vol),
            s(&c.p("g.zarr")),
            "--codec",
            "gzip",
            "--level",
            "22",
        ],
        "0..=9",
    );
    fails(
        &[
            "convert",
            s(&vol),
            s(&c.p("b.zarr")),
            "--codec",
            "blosc",
            "--level",
            "22",
        ],
        "0..=9",
    );
    fails(
        &[
            "convert",
            s(&vol),
            s(&c.p("c.zarr")),
            "--chunks",
            "100000,100000,100000",
        ],
        "MiB per chunk",
    );
    fails(
        &[
            "sample",
            s(&vol),
            "--points",
            s(&pts),
            "--out",
            s(&out),
            "--world",
        ],
        "no affine",
    );
    fails(
        &[
            "sample",
            s(&vol),
            "--points",
            s(&pts),
            "--out",
            s(&out),
            "--scale-level",
            "1",
        ],
        "not a multiscale",
    );
    // RBF: zero points per cell.
    let table = c.p("t.csv");
    std::fs::write(&table, "x,y,v\n0,0,1\n1,0,2\n0,1,3\n1,1,4\n0.5,0.5,5\n").unwrap();
    fails(
        &[
            "rbf",
            "fit",
            s(&table),
            "-o",
            s(&c.p("m.vxr")),
            "--points-per-cell",
            "0",
        ],
        "points per cell",
    );
    // `info` checks a model's checksum.
    assert_eq!(
        run(&["rbf", "fit", s(&table), "-o", s(&c.p("m.vxr"))]).0,
        Some(0)
    );
    let mut m = std::fs::read(c.p("m.vxr")).unwrap();
    let k = m.len() - 40;
    m[k] ^= 0x10;
    std::fs::write(c.p("bad.vxr"), &m).unwrap();
    fails(&["info", s(&c.p("bad.vxr"))], "checksum");
}

#[test]
fn sizes_from_untrusted_metadata_are_checked_before_allocating() {
    let c = Case::new();
    // A Zarr array whose chunks are far larger than the array.
    let store = c.p("huge.zarr");
    std::fs::create_dir(&store).unwrap();
    std::fs::write(
        store.join("zarr.json"),
        r#"{"zarr_format":3,"node_type":"array","shape":[3,3,3],"data_type":"float64",
            "chunk_grid":{"name":"regular","configuration":{"chunk_shape":[1000000,1000000,1000000]}},
            "chunk_key_encoding":{"name":"default","configuration":{"separator":"/"}},
            "fill_value":0.0,"codecs":[{"name":"bytes","configuration":{"endian":"little"}}]}"#,
    )
    .unwrap();
    let out = c.p("o.npy");
    fails(
        &[
            "sample",
            s(&store),
            "--points",
            s(&c.p("pts.npy")),
            "--out",
            s(&out),
        ],
        "MiB",
    );
    fails(&["convert", s(&store), s(&c.p("copy.zarr"))], "MiB");
    let _ = fx("golden");
}

/// Issue 22: a FIFO or a device named like an HDF5 file (or a Zarr store's
/// chunk) is refused at once by every verb that reads it, never read or waited on.
#[test]
fn fifos_and_devices_named_as_hdf5_are_refused_without_blocking() {
    let c = Case::new();
    let fifo = c.p("f.h5");
    mkfifo(&fifo);
    let zero = c.p("z.h5");
    std::os::unix::fs::symlink("/dev/zero", &zero).unwrap();
    for p in [&fifo, &zero] {
        let src = format!("{}:/v", s(p));
        fails(&["info", &src], "not a regular file");
        fails(
            &["render", &src, "-o", s(&c.p("r.png"))],
            "not a regular file",
        );
        fails(&["convert", &src, s(&c.p("o.zarr"))], "not a regular file");
    }
    assert!(!c.p("r.png").exists() && !c.p("o.zarr").exists());
}

/// Issue 23: `render` meets hostile inputs, outputs and sizes before users do.
/// Each gets exit 1 and a message; nothing is written or replaced.
#[test]
fn render_meets_hostile_inputs_outputs_and_sizes() {
    let c = Case::new();
    let vol = c.p("vol.npy");
    let out = c.p("r.png");
    let render = |src: &Path, extra: &[&str], needle: &str| {
        let mut a = vec!["render", s(src), "-o", s(&out)];
        a.extend_from_slice(extra);
        fails(&a, needle);
        assert!(!out.exists(), "render {extra:?} left {}", out.display());
    };
    // A truncated .npy and a truncated .vxn.
    let bytes = std::fs::read(&vol).unwrap();
    std::fs::write(c.p("short.npy"), &bytes[..bytes.len() - 7]).unwrap();
    render(&c.p("short.npy"), &[], "short.npy");
    std::fs::write(c.p("m.vxn"), b"\x89VXN\r\n\x1a\n\x01\x00").unwrap();
    render(&c.p("m.vxn"), &[], "m.vxn");
    // A Zarr header claiming 10^12 voxels (no chunk written): refused before
    // any allocation, for the lattice and for direct evaluation.
    let z = c.p("huge.zarr");
    std::fs::create_dir(&z).unwrap();
    std::fs::write(
        z.join("zarr.json"),
        r#"{"zarr_format":3,"node_type":"array","shape":[10000,10000,10000],"data_type":"float32",
        "chunk_grid":{"name":"regular","configuration":{"chunk_shape":[64,64,64]}},
        "chunk_key_encoding":{"name":"default","configuration":{"separator":"/"}},
        "fill_value":0.0,"codecs":[{"name":"bytes","configuration":{"endian":"little"}}]}"#,
    )
    .unwrap();
    render(&z, &["--size", "64,64"], "memory budget");
    render(&z, &["--size", "512,512", "--direct"], "samples");
    // A FIFO as input never blocks.
    let fifo = c.p("in.npy");
    mkfifo(&fifo);
    render(&fifo, &[], "not a regular file");
    // Absurd sizes, counts and budgets.
    for (extra, needle) in [
        (&["--size", "100000,4"][..], "size"),
        (&["--size", "8192,8192", "--frames", "4"], "pixels"),
        (&["--frames", "1000000"], "frames"),
        (&["--threads", "0"], "--threads"),
        (&["--threads", "100000"], "--threads"),
        (&["--memory-mb", "0"], "memory budget"),
        (&["--memory-mb", "64", "--direct"], "does not apply"),
        (&["--rbf-grid", "1000000000"], "does not apply to a volume"),
        (&["--step", "1e-9"], "step"),
        (&["--zoom", "1e300"], "zoom"),
    ] {
        render(&vol, extra, needle);
    }
    // Outputs: a FIFO and a link to a device are refused and stay as they were;
    // a link to a file writes the file and stays a link.
    let ofifo = c.p("o.png");
    mkfifo(&ofifo);
    fails(&["render", s(&vol), "-o", s(&ofifo)], "FIFO");
    assert!(is_fifo(&ofifo));
    let dev = c.p("dev.png");
    std::os::unix::fs::symlink("/dev/null", &dev).unwrap();
    fails(&["render", s(&vol), "-o", s(&dev)], "device");
    assert!(std::fs::symlink_metadata(&dev).unwrap().is_symlink());
    let target = c.p("target.png");
    let link = c.p("link.png");
    std::os::unix::fs::symlink(&target, &link).unwrap();
    let (code, err) = run(&["render", s(&vol), "-o", s(&link)]);
    assert_eq!(code, Some(0), "{err}");
    assert!(std::fs::symlink_metadata(&link).unwrap().is_symlink());
    assert_eq!(&std::fs::read(&target).unwrap()[..4], b"\x89PNG");
}
