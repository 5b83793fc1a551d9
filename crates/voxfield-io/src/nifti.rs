//! NIfTI-1 (`.nii`, `.nii.gz`, `.hdr`/`.img` pairs): header, affine (sform, else
//! qform, else the Analyze-style fallback nibabel uses) and `scl_slope`/`scl_inter`.

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use voxfield_core::{
    Affine, Axes, Axis, AxisKind, DType, Endian, Error, IndexRequest, Result, VolumeInfo,
};

use crate::mapped::{file_len, gunzip_to_temp, is_gzip, open_file, MappedVolume};

/// Opens a NIfTI-1 volume (a 4-D or 5-D image at the time point or component
/// `index` selects). A gzip file is decompressed once to a temporary file.
pub fn open(path: &Path, index: &IndexRequest) -> Result<MappedVolume> {
    let gz = is_gzip(path);
    let (mut file, notes) = if gz {
        let (f, n) = gunzip_to_temp(path, 0)?;
        let note = format!(
            "{} is gzip-compressed and cannot be memory-mapped: decompressed {:.1} MiB once to a temporary file",
            path.display(),
            n as f64 / (1 << 20) as f64
        );
        (f, vec![note])
    } else {
        (open_file(path)?, vec![])
    };
    let mut raw = [0u8; 348];
    read_exact_at_start(&mut file, &mut raw)
        .map_err(|_| Error::format(path, "truncated NIfTI header (needs 348 bytes)"))?;
    let h = Header::parse(&raw).map_err(|m| Error::format(path, m))?;
    let (data_file, data_path) = if h.single_file {
        (file, path.to_path_buf())
    } else {
        let img = img_path(path);
        (open_file(&img)?, img)
    };
    let axes = Axes::select(path, h.axes.clone(), index)?;
    let shape: Vec<usize> = h.axes.iter().map(|a| a.len).collect();
    let mut info = VolumeInfo::selected("nifti", path, axes, &shape, h.dtype, h.endian);
    info.affine = Some(h.affine);
    info.bytes_on_disk = file_len(path)?;
    info.value_scale = h.value_scale;
    info.notes = notes;
    let offset = if h.single_file { h.vox_offset } else { 0 };
    MappedVolume::new(&data_file, info, offset, true, false).map_err(|e| match e {
        Error::Format { msg, .. } => Error::format(data_path, msg),
        e => e,
    })
}

fn read_exact_at_start(f: &mut File, buf: &mut [u8]) -> std::io::Result<()> {
    use std::io::{Seek, SeekFrom};
    f.seek(SeekFrom::Start(0))?;
    f.read_exact(buf)
}

fn img_path(hdr: &Path) -> PathBuf {
    let up = hdr.extension().is_some_and(|e| e == "HDR");
    hdr.with_extension(if up { "IMG" } else { "img" })
}

struct Header {
    endian: Endian,
    /// x, y, z (length 1 when absent), then t, u, v, w as the header has them.
    axes: Vec<Axis>,
    dtype: DType,
    vox_offset: u64,
    affine: Affine,
    value_scale: Option<(f64, f64)>,
    single_file: bool,
}

impl Header {
    fn parse(b: &[u8; 348]) -> Result<Self, String> {
        let le = i32::from_le_bytes(b[0..4].try_into().unwrap());
        let be = i32::from_be_bytes(b[0..4].try_into().unwrap());
        let endian = match (le, be) {
            (348, _) => Endian::Little,
            (_, 348) => Endian::Big,
            (540, _) | (_, 540) => return Err("NIfTI-2 headers are not supported yet".into()),
            _ => {
                return Err(format!(
                    "not a NIfTI-1 header (sizeof_hdr = {le}, expected 348)"
                ))
            }
        };
        let r = Reader { b, endian };
        let magic = &b[344..348];
        let single_file = match magic {
            b"n+1\0" => true,
            b"ni1\0" => false,
            m => {
                return Err(format!(
                    "bad NIfTI magic {:?} (expected \"n+1\" or \"ni1\")",
                    String::from_utf8_lossy(m)
                ))
            }
        };
        let dim: Vec<i64> = (0..8).map(|i| r.i16(40 + 2 * i) as i64).collect();
        let ndim = dim[0];
        if !(1..=7).contains(&ndim) {
            return Err(format!("bad dim[0] = {ndim} (expected 1..7)"));
        }
        let mut shape = [1usize; 3];
        for a in 0..3 {
            if (a as i64) < ndim {
                let n = dim[a + 1];
                if n <= 0 {
                    return Err(format!(
                        "dim[{}] = {n}: every axis length must be positive",
                        a + 1
                    ));
                }
                shape[a] = n as usize;
            }
        }
        // Axes beyond the third (t, then u, v, w) are selected by index.
        let mut dims = shape.to_vec();
        for i in 4..=ndim as usize {
            if dim[i] <= 0 {
                return Err(format!(
                    "dim[{i}] = {}: every axis length must be positive",
                    dim[i]
                ));
            }
            dims.push(dim[i] as usize);
        }
        let units = b[123];
        let space_unit = match units & 0x07 {
            1 => Some("meter"),
            2 => Some("millimeter"),
            3 => Some("micrometer"),
            _ => None,
        };
        let time_unit = match units & 0x38 {
            8 => Some("second"),
            16 => Some("millisecond"),
            24 => Some("microsecond"),
            _ => None,
        };
        let axes = dims
            .iter()
            .enumerate()
            .map(|(a, &len)| {
                let (name, kind, unit) = match a {
                    0..=2 => (["x", "y", "z"][a], AxisKind::Space, space_unit),
                    3 => ("t", AxisKind::Time, time_unit),
                    _ => (["u", "v", "w"][a - 4], AxisKind::Other, None),
                };
                Axis {
                    name: name.into(),
                    kind,
                    unit: unit.map(str::to_string),
                    len,
                }
            })
            .collect();
        let code = r.i16(70);
        let dtype = match code {
            2 => DType::U8,
            4 => DType::I16,
            8 => DType::I32,
            16 => DType::F32,
            64 => DType::F64,
            256 => DType::I8,
            512 => DType::U16,
            768 => DType::U32,
            1024 => DType::I64,
            1280 => DType::U64,
            c => return Err(format!("unsupported NIfTI datatype code {c} (complex, RGB and float128 are not volumes voxfield samples)")),
        };
        let vox_offset = r.f32(108);
        if !(vox_offset.is_finite() && vox_offset >= 0.0) {
            return Err(format!("bad vox_offset {vox_offset}"));
        }
        let vox_offset = vox_offset as u64;
        if single_file && vox_offset < 348 {
            return Err(format!(
                "vox_offset {vox_offset} lies inside the 348-byte header"
            ));
        }
        let slope = r.f32(112) as f64;
        let inter = r.f32(116) as f64;
        let value_scale = (slope.is_finite()
            && slope != 0.0
            && inter.is_finite()
            && (slope, inter) != (1.0, 0.0))
            .then_some((slope, inter));
        let affine = header_affine(&r, shape)?;
        Ok(Header {
            endian,
            axes,
            dtype,
            vox_offset,
            affine,
            value_scale,
            single_file,
        })
    }
}

struct Reader<'a> {
    b: &'a [u8; 348],
    endian: Endian,
}
impl Reader<'_> {
    fn i16(&self, o: usize) -> i16 {
        let a = [self.b[o], self.b[o + 1]];
        match self.endian {
            Endian::Little => i16::from_le_bytes(a),
            Endian::Big => i16::from_be_bytes(a),
        }
    }
    fn f32(&self, o: usize) -> f32 {
        let a: [u8; 4] = self.b[o..o + 4].try_into().unwrap();
        match self.endian {
            Endian::Little => f32::from_le_bytes(a),
            Endian::Big => f32::from_be_bytes(a),
        }
    }
}

fn header_affine(r: &Reader, shape: [usize; 3]) -> Result<Affine, String> {
    let qform_code = r.i16(252);
    let sform_code = r.i16(254);
    let pix: Vec<f64> = (0..8).map(|i| r.f32(76 + 4 * i) as f64).collect();
    let m = if sform_code > 0 {
        let row = |o: usize| [0, 1, 2, 3].map(|i| r.f32(o + 4 * i) as f64);
        [row(280), row(296), row(312), [0.0, 0.0, 0.0, 1.0]]
    } else if qform_code > 0 {
        let (b, c, d) = (r.f32(256) as f64, r.f32(260) as f64, r.f32(264) as f64);
        let a2 = 1.0 - (b * b + c * c + d * d);
        let (a, b, c, d) = if a2 < 1e-7 {
            let n = (b * b + c * c + d * d).sqrt();
            (0.0, b / n, c / n, d / n)
        } else {
            (a2.sqrt(), b, c, d)
        };
        let rot = [
            [
                a * a + b * b - c * c - d * d,
                2.0 * (b * c - a * d),
                2.0 * (b * d + a * c),
            ],
            [
                2.0 * (b * c + a * d),
                a * a + c * c - b * b - d * d,
                2.0 * (c * d - a * b),
            ],
            [
                2.0 * (b * d - a * c),
                2.0 * (c * d + a * b),
                a * a + d * d - c * c - b * b,
            ],
        ];
        let qfac = if pix[0] < 0.0 { -1.0 } else { 1.0 };
        let z = [pix[1], pix[2], pix[3] * qfac];
        let off = [r.f32(268) as f64, r.f32(272) as f64, r.f32(276) as f64];
        let mut m = [[0.0; 4]; 4];
        for i in 0..3 {
            for j in 0..3 {
                m[i][j] = rot[i][j] * z[j];
            }
            m[i][3] = off[i];
        }
        m[3] = [0.0, 0.0, 0.0, 1.0];
        m
    } else {
        // Analyze fallback, as nibabel: x flipped, origin at the volume centre.
        let z = [1, 2, 3].map(|i| if pix[i] == 0.0 { 1.0 } else { pix[i].abs() });
        let zf = [-z[0], z[1], z[2]];
        let mut m = [[0.0; 4]; 4];
        for i in 0..3 {
            m[i][i] = zf[i];
            m[i][3] = -((shape[i] as f64 - 1.0) / 2.0) * zf[i];
        }
        m[3] = [0.0, 0.0, 0.0, 1.0];
        m
    };
    Affine::from_rows(m).map_err(|e| {
        format!("bad affine in header (sform_code {sform_code}, qform_code {qform_code}): {e}")
    })
}

/// A single-file NIfTI-1 header (348 bytes plus the 4-byte empty extension flag)
/// for a 3-D `shape` whose data follows in x-fastest (Fortran) order; the affine
/// goes in the sform (code 2, aligned), identity when there is none. `bool` is
/// stored as `uint8`.
pub fn header_bytes(shape: [usize; 3], dtype: DType, affine: Option<&Affine>) -> Result<Vec<u8>> {
    let mut h = vec![0u8; 352];
    let put_i16 = |h: &mut [u8], o: usize, v: i16| h[o..o + 2].copy_from_slice(&v.to_le_bytes());
    let put_f32 = |h: &mut [u8], o: usize, v: f32| h[o..o + 4].copy_from_slice(&v.to_le_bytes());
    h[0..4].copy_from_slice(&348i32.to_le_bytes());
    let dims = shape.map(|n| i16::try_from(n).ok().filter(|&d| d > 0));
    let [Some(d0), Some(d1), Some(d2)] = dims else {
        return Err(Error::invalid(format!(
            "shape {shape:?}: NIfTI-1 stores axis lengths from 1 to 32767 (write Zarr instead)"
        )));
    };
    for (i, d) in [3, d0, d1, d2, 1, 1, 1, 1].into_iter().enumerate() {
        put_i16(&mut h, 40 + 2 * i, d);
    }
    let (code, bits) = match dtype {
        DType::U8 | DType::Bool => (2, 8),
        DType::I8 => (256, 8),
        DType::I16 => (4, 16),
        DType::U16 => (512, 16),
        DType::I32 => (8, 32),
        DType::U32 => (768, 32),
        DType::I64 => (1024, 64),
        DType::U64 => (1280, 64),
        DType::F32 => (16, 32),
        DType::F64 => (64, 64),
    };
    put_i16(&mut h, 70, code);
    put_i16(&mut h, 72, bits);
    let rows = affine.map_or(
        Affine::from_spacing_origin([1.0; 3], [0.0; 3]).rows(),
        |a| a.rows(),
    );
    put_f32(&mut h, 76, 1.0);
    for a in 0..3 {
        let norm = (0..3).map(|r| rows[r][a] * rows[r][a]).sum::<f64>().sqrt();
        put_f32(&mut h, 80 + 4 * a, norm as f32);
    }
    put_f32(&mut h, 108, 352.0);
    put_f32(&mut h, 112, 1.0);
    put_i16(&mut h, 254, 2);
    for (r, o) in [280, 296, 312].into_iter().enumerate() {
        for c in 0..4 {
            put_f32(&mut h, o + 4 * c, rows[r][c] as f32);
        }
    }
    h[344..348].copy_from_slice(b"n+1\0");
    Ok(h)
}
