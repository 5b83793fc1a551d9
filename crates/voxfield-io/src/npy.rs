//! numpy `.npy` files (format versions 1, 2 and 3): header parsing for zero-copy
//! mapping, and an atomic writer for results.

use std::io::Write;
use std::path::Path;

use voxfield_core::{Axes, DType, Endian, Error, IndexRequest, Result, VolumeInfo};

use crate::mapped::{file_len, open_file, MappedVolume};

/// What an `.npy` header says.
#[derive(Clone, Debug, PartialEq)]
pub struct NpyHeader {
    pub version: (u8, u8),
    pub dtype: DType,
    pub endian: Endian,
    pub fortran_order: bool,
    pub shape: Vec<usize>,
    /// Byte offset of the first element.
    pub data_offset: u64,
}

const MAGIC: &[u8] = b"\x93NUMPY";

/// Reads and parses the header of `path` (reads at most the header's bytes).
pub fn read_header(path: &Path) -> Result<NpyHeader> {
    use std::io::Read;
    let mut f = open_file(path)?;
    let mut pre = [0u8; 12];
    let got = read_up_to(&mut f, &mut pre).map_err(|e| Error::io(path, e))?;
    if got < 10 || &pre[..6] != MAGIC {
        return Err(Error::format(
            path,
            "not a .npy file (missing \\x93NUMPY magic)",
        ));
    }
    let version = (pre[6], pre[7]);
    let (hlen, start) = match version.0 {
        1 => (u16::from_le_bytes([pre[8], pre[9]]) as usize, 10usize),
        2 | 3 if got == 12 => (
            u32::from_le_bytes([pre[8], pre[9], pre[10], pre[11]]) as usize,
            12usize,
        ),
        2 | 3 => return Err(Error::format(path, "truncated .npy header")),
        v => {
            return Err(Error::format(
                path,
                format!("unsupported .npy format version {v}.{}", version.1),
            ))
        }
    };
    if hlen > 64 << 20 {
        return Err(Error::format(
            path,
            format!("implausible .npy header length {hlen}"),
        ));
    }
    let mut text = vec![0u8; hlen];
    let already = got - start;
    text[..already.min(hlen)].copy_from_slice(&pre[start..start + already.min(hlen)]);
    if hlen > already {
        f.read_exact(&mut text[already..])
            .map_err(|_| Error::format(path, "truncated .npy header"))?;
    }
    let text = String::from_utf8_lossy(&text);
    parse_header_dict(&text, version, (start + hlen) as u64).map_err(|m| Error::format(path, m))
}

fn read_up_to(f: &mut std::fs::File, buf: &mut [u8]) -> std::io::Result<usize> {
    use std::io::Read;
    let mut n = 0;
    while n < buf.len() {
        match f.read(&mut buf[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}

fn parse_header_dict(text: &str, version: (u8, u8), data_offset: u64) -> Result<NpyHeader, String> {
    let descr = dict_value(text, "descr").ok_or("header has no 'descr'")?;
    let descr = descr.trim();
    if descr.starts_with('[') {
        return Err(format!(
            "structured dtype {descr} is not supported; a volume needs a plain numeric dtype"
        ));
    }
    let descr = descr.trim_matches(|c| c == '\'' || c == '"');
    let (dtype, endian) = parse_descr(descr)?;
    let fo = dict_value(text, "fortran_order").ok_or("header has no 'fortran_order'")?;
    let fortran_order = match fo.trim() {
        "True" => true,
        "False" => false,
        o => return Err(format!("bad 'fortran_order' value {o}")),
    };
    let shape_s = dict_value(text, "shape").ok_or("header has no 'shape'")?;
    let inner = shape_s
        .trim()
        .strip_prefix('(')
        .and_then(|s| s.strip_suffix(')'))
        .ok_or_else(|| format!("bad 'shape' value {shape_s}"))?;
    let shape = inner
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| s.trim_end_matches('L').parse::<usize>())
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|_| format!("bad 'shape' value ({inner})"))?;
    Ok(NpyHeader {
        version,
        dtype,
        endian,
        fortran_order,
        shape,
        data_offset,
    })
}

/// The text of the value for `key` in a Python dict literal, up to the next
/// top-level comma or closing brace.
fn dict_value<'a>(text: &'a str, key: &str) -> Option<&'a str> {
    let pos = text
        .find(&format!("'{key}'"))
        .or_else(|| text.find(&format!("\"{key}\"")))?;
    let rest = &text[pos + key.len() + 2..];
    let rest = rest.trim_start().strip_prefix(':')?;
    let mut depth = 0i32;
    let mut quote: Option<char> = None;
    for (i, c) in rest.char_indices() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '\'' | '"') => quote = Some(c),
            (None, '(' | '[') => depth += 1,
            (None, ')' | ']') => depth -= 1,
            (None, ',' | '}') if depth == 0 => return Some(&rest[..i]),
            _ => {}
        }
    }
    None
}

/// The little-endian `.npy` descriptor of `dt` (the inverse of [`parse_descr`]).
pub fn descr(dt: DType) -> &'static str {
    match dt {
        DType::F32 => "<f4",
        DType::F64 => "<f8",
        DType::U8 => "|u1",
        DType::I8 => "|i1",
        DType::U16 => "<u2",
        DType::I16 => "<i2",
        DType::U32 => "<u4",
        DType::I32 => "<i4",
        DType::U64 => "<u8",
        DType::I64 => "<i8",
        DType::Bool => "|b1",
    }
}

/// numpy type strings such as `<f4`, `|u1`, `>i2`, `|b1`.
pub fn parse_descr(d: &str) -> Result<(DType, Endian), String> {
    let (endian, body) = match d.chars().next() {
        Some('<') => (Endian::Little, &d[1..]),
        Some('>') => (Endian::Big, &d[1..]),
        Some('|') | Some('=') => (Endian::NATIVE, &d[1..]),
        _ => (Endian::NATIVE, d),
    };
    let dtype = match body {
        "b1" | "?" => DType::Bool,
        "u1" => DType::U8,
        "i1" => DType::I8,
        "u2" => DType::U16,
        "i2" => DType::I16,
        "u4" => DType::U32,
        "i4" => DType::I32,
        "u8" => DType::U64,
        "i8" => DType::I64,
        "f4" => DType::F32,
        "f8" => DType::F64,
        "f2" => return Err("dtype float16 ('f2') is not supported".into()),
        b if b.starts_with('c') => return Err(format!("complex dtype '{d}' is not supported")),
        _ => return Err(format!("unsupported dtype '{d}'")),
    };
    Ok((dtype, endian))
}

/// Opens an `.npy` file of rank 1 to 5 (or more) as a memory-mapped volume (O(1):
/// reads only the header); `index` selects the non-spatial axes (all but the last 3).
pub fn open(path: &Path, index: &IndexRequest) -> Result<MappedVolume> {
    let h = read_header(path)?;
    let axes = Axes::select(path, Axes::default_for(&h.shape), index)?;
    let mut info = VolumeInfo::selected("npy", path, axes, &h.shape, h.dtype, h.endian);
    info.bytes_on_disk = file_len(path)?;
    let f = open_file(path)?;
    MappedVolume::new(&f, info, h.data_offset, h.fortran_order, true)
}

/// Element types `write_npy` can store.
pub trait NpyElement: Copy + Send + Sync + 'static {
    const DESCR: &'static str;
    fn write_le(self, out: &mut Vec<u8>);

    /// Writes `data` little-endian: its own bytes on little-endian machines
    /// (one copy, no per-element work), element by element otherwise.
    fn write_all_le(data: &[Self], w: &mut impl std::io::Write) -> std::io::Result<()>;
}
macro_rules! npy_elem {
    ($($t:ty => $d:literal),*) => {$(
        impl NpyElement for $t {
            const DESCR: &'static str = $d;
            #[inline]
            fn write_le(self, out: &mut Vec<u8>) { out.extend_from_slice(&self.to_le_bytes()); }
            fn write_all_le(data: &[Self], w: &mut impl std::io::Write) -> std::io::Result<()> {
                if cfg!(target_endian = "little") {
                    // SAFETY: a plain number type: every byte is initialised and any
                    // alignment is valid for u8.
                    let bytes = unsafe {
                        std::slice::from_raw_parts(data.as_ptr() as *const u8, std::mem::size_of_val(data))
                    };
                    return w.write_all(bytes);
                }
                let mut buf = Vec::with_capacity(1 << 16);
                for chunk in data.chunks(8192) {
                    buf.clear();
                    chunk.iter().for_each(|v| v.write_le(&mut buf));
                    w.write_all(&buf)?;
                }
                Ok(())
            }
        }
    )*};
}
npy_elem!(u8 => "|u1", i8 => "|i1", u16 => "<u2", i16 => "<i2", u32 => "<u4", i32 => "<i4",
          u64 => "<u8", i64 => "<i8", f32 => "<f4", f64 => "<f8");
impl NpyElement for bool {
    const DESCR: &'static str = "|b1";
    fn write_le(self, out: &mut Vec<u8>) {
        out.push(self as u8);
    }
    fn write_all_le(data: &[Self], w: &mut impl std::io::Write) -> std::io::Result<()> {
        let bytes: Vec<u8> = data.iter().map(|&b| b as u8).collect();
        w.write_all(&bytes)
    }
}

/// The bytes of a version-1 header for a C-order array (padded to 64 bytes, as numpy does).
pub fn header_bytes(descr: &str, shape: &[usize]) -> Vec<u8> {
    let dims: Vec<String> = shape.iter().map(|n| n.to_string()).collect();
    let shape_s = if dims.len() == 1 {
        format!("({},)", dims[0])
    } else {
        format!("({})", dims.join(", "))
    };
    let mut dict = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape_s}, }}");
    let total = 10 + dict.len() + 1;
    dict.push_str(&" ".repeat((64 - total % 64) % 64));
    dict.push('\n');
    let mut out = Vec::with_capacity(10 + dict.len());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&[1, 0]);
    out.extend_from_slice(&(dict.len() as u16).to_le_bytes());
    out.extend_from_slice(dict.as_bytes());
    out
}

/// Writes a C-order array to `path` atomically (temporary name, then rename).
pub fn write_npy<T: NpyElement>(path: &Path, shape: &[usize], data: &[T]) -> Result<()> {
    if shape.iter().product::<usize>() != data.len() {
        return Err(Error::invalid(format!(
            "write_npy: shape {shape:?} does not match {} elements",
            data.len()
        )));
    }
    write_atomic(path, |w| {
        w.write_all(&header_bytes(T::DESCR, shape))?;
        T::write_all_le(data, w)
    })
}

/// Writes through `fill` into a temporary file beside `path`, then renames it into
/// place, so an interrupted write never leaves a partial file under the real name.
pub fn write_atomic(
    path: &Path,
    fill: impl FnOnce(&mut std::io::BufWriter<&std::fs::File>) -> std::io::Result<()>,
) -> Result<()> {
    let target = crate::safety::output_target(path)?;
    let path = target.as_path();
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    crate::safety::remove_stale_temporaries(path);
    let mut builder = tempfile::Builder::new();
    let prefix = crate::safety::temp_prefix(path);
    builder.prefix(&prefix);
    #[cfg(unix)]
    {
        // Results are ordinary files: readable by others, as `File::create` (with
        // the usual umask) would make them, not tempfile's private 0600.
        use std::os::unix::fs::PermissionsExt;
        builder.permissions(std::fs::Permissions::from_mode(0o644));
    }
    let tmp = builder.tempfile_in(dir).map_err(|e| Error::io(dir, e))?;
    {
        let mut w = std::io::BufWriter::with_capacity(1 << 20, tmp.as_file());
        fill(&mut w).map_err(|e| Error::io(path, e))?;
        w.flush().map_err(|e| Error::io(path, e))?;
    }
    tmp.persist(path).map_err(|e| Error::io(path, e.error))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn descr_is_the_inverse_of_parse_descr() {
        use DType::*;
        for dt in [Bool, U8, I8, U16, I16, U32, I32, U64, I64, F32, F64] {
            let (back, _) = parse_descr(descr(dt)).unwrap();
            assert_eq!(back, dt, "{}", descr(dt));
        }
    }

    #[test]
    fn parses_numpy_headers() {
        let h = parse_header_dict(
            "{'descr': '>i2', 'fortran_order': True, 'shape': (3, 4, 5), }",
            (1, 0),
            128,
        )
        .unwrap();
        assert_eq!(h.dtype, DType::I16);
        assert_eq!(h.endian, Endian::Big);
        assert!(h.fortran_order);
        assert_eq!(h.shape, vec![3, 4, 5]);
        let h = parse_header_dict(
            "{'descr': '|b1', 'fortran_order': False, 'shape': (7,), }",
            (1, 0),
            0,
        )
        .unwrap();
        assert_eq!((h.dtype, h.shape), (DType::Bool, vec![7]));
        assert!(parse_header_dict(
            "{'descr': '<f2', 'fortran_order': False, 'shape': (1,2,3), }",
            (1, 0),
            0
        )
        .unwrap_err()
        .contains("float16"));
        assert!(parse_header_dict(
            "{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (1,), }",
            (1, 0),
            0
        )
        .unwrap_err()
        .contains("structured"));
    }

    #[test]
    fn header_is_64_aligned() {
        for shape in [vec![1usize], vec![3, 4, 5], vec![123456, 7, 890]] {
            assert_eq!(header_bytes("<f4", &shape).len() % 64, 0);
        }
    }
}

/// A small array read whole and converted to f64 (for point lists and fixtures,
/// never for volumes).
#[derive(Clone, Debug)]
pub struct NpyArray {
    pub shape: Vec<usize>,
    /// C-order values.
    pub data: Vec<f64>,
    pub dtype: DType,
}

/// Reads a whole `.npy` of any supported dtype and layout into C-order f64.
pub fn read_array(path: &Path) -> Result<NpyArray> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    parse_array(&bytes).map_err(|m| Error::format(path, m))
}

/// The header of an in-memory `.npy` prefix (at least its header bytes).
pub fn parse_header_bytes(bytes: &[u8]) -> Result<NpyHeader, String> {
    if bytes.len() < 10 || &bytes[..6] != MAGIC {
        return Err("not a .npy array (missing \\x93NUMPY magic)".into());
    }
    let (hlen, start) = match bytes[6] {
        1 => (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10),
        2 | 3 if bytes.len() >= 12 => (
            u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize,
            12,
        ),
        v => return Err(format!("unsupported .npy format version {v}")),
    };
    let text = bytes
        .get(start..start + hlen)
        .ok_or("truncated .npy header")?;
    parse_header_dict(
        &String::from_utf8_lossy(text),
        (bytes[6], bytes[7]),
        (start + hlen) as u64,
    )
}

/// The header and the element bytes of a whole in-memory `.npy` (no conversion).
pub fn split_array(bytes: &[u8]) -> Result<(NpyHeader, &[u8]), String> {
    let h = parse_header_bytes(bytes)?;
    let start = h.data_offset as usize;
    let need = h.shape.iter().product::<usize>() * h.dtype.size();
    let data = bytes.get(start..start + need).ok_or_else(|| {
        format!(
            "array is truncated: shape {:?} needs {need} data bytes",
            h.shape
        )
    })?;
    Ok((h, data))
}

/// Parses the bytes of a whole `.npy` (for example a member of an `.npz`).
pub fn parse_array(bytes: &[u8]) -> Result<NpyArray, String> {
    let (h, data) = split_array(bytes)?;
    let n: usize = h.shape.iter().product();
    let size = h.dtype.size();
    let raw: Vec<f64> = data
        .chunks_exact(size)
        .map(|c| voxfield_core::voxel::read_f64(c, h.dtype, h.endian))
        .collect();
    let data = if h.fortran_order && h.shape.len() > 1 {
        // Transpose Fortran order into C order.
        let nd = h.shape.len();
        let mut fstride = vec![1usize; nd];
        for a in 1..nd {
            fstride[a] = fstride[a - 1] * h.shape[a - 1];
        }
        let mut out = vec![0.0; n];
        let mut idx = vec![0usize; nd];
        for o in out.iter_mut() {
            *o = raw[idx.iter().zip(&fstride).map(|(i, s)| i * s).sum::<usize>()];
            voxfield_core::odometer::step(&mut idx, &h.shape);
        }
        out
    } else {
        raw
    };
    Ok(NpyArray {
        shape: h.shape,
        data,
        dtype: h.dtype,
    })
}
