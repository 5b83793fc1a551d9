//! Sources against files written by nibabel, pynrrd and numpy
//! (`tests/fixtures/make_fixtures.py`), plus bad input and the O(1) open.

use std::io::Write;
use std::path::{Path, PathBuf};

use voxfield_core::{Affine, DType, Endian, VolumeSource};
use voxfield_io::{npy, open, OpenOptions, RawOptions};

fn fx(p: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures")
        .join(p)
}

fn affine_from_npy(p: &str) -> Affine {
    let a = npy::read_array(&fx(p)).unwrap().data;
    let mut m = [[0.0; 4]; 4];
    for i in 0..16 {
        m[i / 4][i % 4] = a[i];
    }
    Affine::from_rows(m).unwrap()
}

fn assert_affine(got: Affine, want: Affine) {
    for (g, w) in got
        .rows()
        .iter()
        .flatten()
        .zip(want.rows().iter().flatten())
    {
        assert!((g - w).abs() < 1e-5, "affine {got:?} vs {want:?}");
    }
}

/// Every voxel (with the source's value scale) equals the reference's C-order array.
fn assert_values(src: &dyn VolumeSource, values_npy: &str) {
    let want = npy::read_array(&fx(values_npy)).unwrap();
    let info = src.info();
    assert_eq!(want.shape, info.shape.to_vec());
    let mut got = vec![0.0; want.data.len()];
    src.read_box([0; 3], info.shape, &mut got).unwrap();
    let (m, q) = info.value_scale.unwrap_or((1.0, 0.0));
    for (i, (g, w)) in got.iter().zip(&want.data).enumerate() {
        assert!(
            (g * m + q - w).abs() < 1e-9,
            "{values_npy}[{i}]: {} vs {w}",
            g * m + q
        );
    }
}

fn open_default(p: &Path) -> Box<dyn VolumeSource> {
    open(p, &OpenOptions::default()).unwrap()
}

#[test]
fn nifti_sform_with_scaling_plain_and_gzip() {
    for f in ["nifti/sform.nii", "nifti/sform.nii.gz"] {
        let v = open_default(&fx(f));
        assert_eq!(v.info().format, "nifti");
        assert_eq!(v.info().dtype, DType::I16);
        assert_eq!(v.info().value_scale, Some((2.0, -1.0)));
        assert_affine(
            v.info().affine.unwrap(),
            affine_from_npy("nifti/sform_affine.npy"),
        );
        assert_values(v.as_ref(), "nifti/sform_values.npy");
        assert_eq!(
            v.info().notes.is_empty(),
            !f.ends_with(".gz"),
            "gzip must be reported"
        );
    }
}

#[test]
fn nifti_qform_noform_and_big_endian() {
    let q = open_default(&fx("nifti/qform.nii"));
    assert_affine(
        q.info().affine.unwrap(),
        affine_from_npy("nifti/qform_affine.npy"),
    );
    assert_values(q.as_ref(), "nifti/qform_values.npy");
    let z = open_default(&fx("nifti/noform.nii"));
    assert_affine(
        z.info().affine.unwrap(),
        affine_from_npy("nifti/noform_affine.npy"),
    );
    let be = open_default(&fx("nifti/big_endian.nii"));
    assert_eq!(
        (be.info().dtype, be.info().endian),
        (DType::F64, Endian::Big)
    );
    assert_values(be.as_ref(), "nifti/big_endian_values.npy");
}

#[test]
fn nrrd_raw_gzip_attached_and_detached() {
    let want = affine_from_npy("nrrd/affine.npy");
    for f in [
        "nrrd/raw.nrrd",
        "nrrd/gzip.nrrd",
        "nrrd/detached.nhdr",
        "nrrd/detached_gz.nhdr",
    ] {
        let v = open_default(&fx(f));
        assert_eq!(v.info().format, "nrrd", "{f}");
        assert_affine(v.info().affine.unwrap(), want);
        assert_values(v.as_ref(), "nrrd/values.npy");
    }
    let b = open_default(&fx("nrrd/big_i16.nrrd"));
    assert_eq!((b.info().dtype, b.info().endian), (DType::I16, Endian::Big));
    assert_affine(
        b.info().affine.unwrap(),
        Affine::from_spacing_origin([1.5, 2.0, 0.5], [0.0; 3]),
    );
    assert_values(b.as_ref(), "nrrd/big_i16_values.npy");
}

#[test]
fn raw_with_offset_order_and_endianness() {
    // The same int16 volume as the golden fixture, re-encoded by hand as raw bytes.
    let src = npy::read_array(&fx("golden/vol_5x7x3_int16.npy")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    for (fortran, endian) in [(false, Endian::Little), (true, Endian::Big)] {
        let p = dir.path().join("v.raw");
        let mut bytes = vec![0xAB; 17]; // a 17-byte preamble
        let (s0, s1, s2) = (5, 7, 3);
        let idx = |n: usize| -> usize {
            if !fortran {
                return n;
            }
            let (i, j, k) = (n % s0, (n / s0) % s1, n / (s0 * s1));
            (i * s1 + j) * s2 + k
        };
        for n in 0..src.data.len() {
            let v = src.data[idx(n)] as i16;
            bytes.extend_from_slice(&if endian == Endian::Big {
                v.to_be_bytes()
            } else {
                v.to_le_bytes()
            });
        }
        bytes.extend_from_slice(b"footer");
        std::fs::write(&p, &bytes).unwrap();
        let raw = RawOptions {
            shape: [5, 7, 3],
            dtype: DType::I16,
            offset: 17,
            fortran,
            endian,
        };
        let v = open(
            &p,
            &OpenOptions {
                raw: Some(raw),
                ..Default::default()
            },
        )
        .unwrap();
        let mut got = vec![0.0; src.data.len()];
        v.read_box([0; 3], [5, 7, 3], &mut got).unwrap();
        assert_eq!(got, src.data);
    }
}

fn err_of(p: &Path, opts: &OpenOptions) -> String {
    match open(p, opts) {
        Ok(_) => panic!("{} opened but should not", p.display()),
        Err(e) => e.to_string(),
    }
}

fn write(p: &Path, bytes: &[u8]) {
    std::fs::File::create(p).unwrap().write_all(bytes).unwrap();
}

#[test]
fn bad_input_gives_clear_errors_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let good = std::fs::read(fx("golden/vol_5x7x3_float32.npy")).unwrap();
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("truncated.npy", good[..good.len() - 10].to_vec(), "truncated"),
        ("header_only.npy", good[..40].to_vec(), "truncated .npy header"),
        ("extra.npy", [good.clone(), vec![0; 8]].concat(), "disagrees with the header"),
        ("f16.npy", npy::header_bytes("<f2", &[2, 2, 2]).into_iter().chain([0u8; 16]).collect(), "float16"),
        ("c8.npy", npy::header_bytes("<c8", &[1, 1, 1]).into_iter().chain([0u8; 8]).collect(), "complex"),
        ("scalar.npy", npy::header_bytes("<f4", &[]).into_iter().chain([0u8; 4]).collect(), "no axes"),
        ("empty.npy", npy::header_bytes("<f4", &[3, 0]).into_iter().collect(), "zero-length"),
        ("zero.npy", npy::header_bytes("<f4", &[3, 0, 4]).to_vec(), "zero-length"),
        ("notnpy.npy", b"hello world, definitely not numpy".to_vec(), "magic"),
        ("bad.nii", vec![0; 400], "sizeof_hdr"),
        ("bad.nrrd", b"NRRD0004\ntype: float\ndimension: 3\nsizes: 2 2 2\nencoding: raw\n\n".to_vec(), "endian"),
        ("ascii.nrrd", b"NRRD0004\ntype: uchar\ndimension: 3\nsizes: 2 2 2\nencoding: ascii\n\n1 2 3 4 5 6 7 8".to_vec(), "ascii"),
        ("short.nrrd", b"NRRD0004\ntype: uchar\ndimension: 3\nsizes: 2 2 2\nencoding: raw\n\n1234".to_vec(), "truncated"),
    ];
    for (name, bytes, needle) in cases {
        let p = d.join(name);
        write(&p, &bytes);
        let e = err_of(&p, &OpenOptions::default());
        assert!(e.contains(needle), "{name}: '{e}' lacks '{needle}'");
        assert!(e.contains(name), "{name}: '{e}' does not name the file");
    }
    let e = err_of(&d.join("missing.npy"), &OpenOptions::default());
    assert!(
        e.contains("missing.npy") && e.to_lowercase().contains("no such file"),
        "{e}"
    );
    // Raw: offset past the end, zero shape, undeclared layout.
    let p = d.join("v.raw");
    write(&p, &[0u8; 64]);
    let raw = |offset, shape| OpenOptions {
        raw: Some(RawOptions {
            shape,
            dtype: DType::U8,
            offset,
            fortran: false,
            endian: Endian::Little,
        }),
        ..Default::default()
    };
    assert!(err_of(&p, &raw(100, [2, 2, 2])).contains("past the end"));
    assert!(err_of(&p, &raw(0, [2, 0, 2])).contains("zero-length"));
    assert!(err_of(&p, &raw(0, [4, 4, 8])).contains("truncated"));
    assert!(err_of(&p, &OpenOptions::default()).contains("--shape"));
    // NIfTI with a NaN in its sform.
    let mut nii = std::fs::read(fx("nifti/sform.nii")).unwrap();
    nii[280..284].copy_from_slice(&f32::NAN.to_le_bytes());
    let p = d.join("nan_affine.nii");
    write(&p, &nii);
    let e = err_of(&p, &OpenOptions::default());
    assert!(
        e.contains("non-finite") && e.contains("nan_affine.nii"),
        "{e}"
    );
}

#[test]
fn opening_a_multi_gib_sparse_file_reads_no_data() {
    // A 4 GiB .npy whose data is a hole: open must parse the header only.
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("huge.npy");
    let shape = [1024usize, 1024, 1024];
    let header = npy::header_bytes("<f4", &shape);
    let f = std::fs::File::create(&p).unwrap();
    (&f).write_all(&header).unwrap();
    f.set_len(header.len() as u64 + 4 * (1u64 << 30)).unwrap();
    drop(f);
    let read_before = rchar();
    let t = std::time::Instant::now();
    let v = open_default(&p);
    let elapsed = t.elapsed();
    let read = rchar() - read_before;
    assert_eq!(v.info().shape, shape);
    assert!(read < 64 * 1024, "open read {read} bytes");
    assert!(elapsed.as_millis() < 500, "open took {elapsed:?}");
    // A voxel in the middle is readable (and zero: a hole).
    assert_eq!(v.contiguous().unwrap().get([512, 1000, 3]), 0.0);
}

/// Bytes this process has read through read(2)-like calls (mmap faults excluded).
fn rchar() -> u64 {
    let s = std::fs::read_to_string("/proc/self/io").unwrap();
    s.lines()
        .find_map(|l| l.strip_prefix("rchar: "))
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}
