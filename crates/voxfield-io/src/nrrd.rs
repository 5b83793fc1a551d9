//! NRRD (`.nrrd` attached, `.nhdr` detached): raw and gzip encodings, `space
//! directions`/`space origin` (or `spacings`) as the affine. NRRD stores its first
//! axis fastest, so axis 0 here is the first entry of `sizes` (as pynrrd reports it).

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

use voxfield_core::{
    Affine, Axes, Axis, AxisKind, DType, Endian, Error, IndexRequest, Result, VolumeInfo,
};

use crate::mapped::{file_len, gunzip_to_temp, open_file, MappedVolume};

/// Opens an NRRD volume of any dimension: the axes whose `kinds` are `domain` or
/// `space` (or whose `space directions` entry is a vector) are spatial; the others
/// (`vector`, `list`, colours, `time`, ...) are selected by `index`.
pub fn open(path: &Path, index: &IndexRequest) -> Result<MappedVolume> {
    let (fields, header_len) = read_fields(path)?;
    let get = |k: &str| fields.get(k).map(String::as_str);
    let req = |k: &str| {
        get(k).ok_or_else(|| Error::format(path, format!("NRRD header has no '{k}' field")))
    };

    let dtype = parse_type(req("type")?).map_err(|m| Error::format(path, m))?;
    let dim: usize = req("dimension")?
        .trim()
        .parse()
        .map_err(|_| Error::format(path, "bad 'dimension' field"))?;
    let sizes: Vec<usize> = req("sizes")?
        .split_whitespace()
        .map(str::parse)
        .collect::<std::result::Result<_, _>>()
        .map_err(|_| Error::format(path, "bad 'sizes' field"))?;
    if sizes.len() != dim {
        return Err(Error::format(
            path,
            format!(
                "'sizes' has {} entries but 'dimension' is {dim}",
                sizes.len()
            ),
        ));
    }
    let axes = Axes::select(path, nrrd_axes(&fields, &sizes), index)?;
    let endian = match get("endian") {
        Some(e) => e
            .trim()
            .parse()
            .map_err(|e: Error| Error::format(path, e.to_string()))?,
        None if dtype.size() == 1 => Endian::NATIVE,
        None => {
            return Err(Error::format(
                path,
                "NRRD header has no 'endian' field for a multi-byte type",
            ))
        }
    };
    let encoding = req("encoding")?.trim().to_ascii_lowercase();
    let gzip = match encoding.as_str() {
        "raw" => false,
        "gzip" | "gz" => true,
        e => {
            return Err(Error::format(
                path,
                format!("NRRD encoding '{e}' is not supported (raw and gzip are)"),
            ))
        }
    };
    let line_skip: usize = get("line skip")
        .or(get("lineskip"))
        .map_or(Ok(0), |s| s.trim().parse())
        .map_err(|_| Error::format(path, "bad 'line skip' field"))?;
    let byte_skip: i64 = get("byte skip")
        .or(get("byteskip"))
        .map_or(Ok(0), |s| s.trim().parse())
        .map_err(|_| Error::format(path, "bad 'byte skip' field"))?;
    if line_skip > 0 {
        return Err(Error::format(path, "NRRD 'line skip' is not supported"));
    }
    let affine = if axes.spatial_dims() == 3 {
        Some(nrrd_affine(&fields, &axes.spatial).map_err(|m| Error::format(path, m))?)
    } else {
        None // 1-D and 2-D images are sampled in index space
    };

    let (data_path, start) = match get("data file").or(get("datafile")) {
        Some(df) if df.trim().starts_with("LIST") || df.split_whitespace().count() > 1 => {
            return Err(Error::format(
                path,
                format!(
                    "NRRD 'data file: {}' spreads the data over several files, which voxfield does \
                     not read (one detached data file is supported)",
                    df.trim()
                ),
            ))
        }
        Some(df) => (
            detached_path(path, df.trim()).map_err(|m| Error::format(path, m))?,
            0u64,
        ),
        None => (path.to_path_buf(), header_len),
    };
    let nbytes = sizes
        .iter()
        .try_fold(dtype.size() as u64, |a, &n| a.checked_mul(n as u64))
        .ok_or_else(|| Error::format(path, format!("sizes {sizes:?} overflow")))?;
    let mut notes = vec![];
    let (file, offset) = if gzip {
        let (f, n) = gunzip_to_temp(&data_path, start)?;
        notes.push(format!(
            "{} holds gzip-encoded data, which cannot be memory-mapped: decompressed {:.1} MiB once to a temporary file",
            data_path.display(),
            n as f64 / (1 << 20) as f64
        ));
        let skip = if byte_skip < 0 {
            n.saturating_sub(nbytes)
        } else {
            byte_skip as u64
        };
        (f, skip)
    } else {
        let skip = if byte_skip < 0 {
            file_len(&data_path)?.saturating_sub(nbytes)
        } else {
            start + byte_skip as u64
        };
        (open_file(&data_path)?, skip)
    };
    let mut info = VolumeInfo::selected("nrrd", path, axes, &sizes, dtype, endian);
    info.affine = affine;
    info.bytes_on_disk = file_len(path)?
        + if data_path != path {
            file_len(&data_path)?
        } else {
            0
        };
    info.notes = notes;
    MappedVolume::new(&file, info, offset, true, false).map_err(|e| match e {
        Error::Format { msg, .. } => Error::format(&data_path, msg),
        e => e,
    })
}

/// Header fields (lower-cased keys) and the byte length of the header including the blank line.
fn read_fields(path: &Path) -> Result<(HashMap<String, String>, u64)> {
    let mut r = BufReader::new(open_file(path)?);
    let mut line = String::new();
    let mut consumed = 0u64;
    let mut fields = HashMap::new();
    let mut first = true;
    loop {
        line.clear();
        let n = std::io::Read::take(&mut r, (1 << 20) + 1 - consumed.min(1 << 20))
            .read_line(&mut line)
            .map_err(|_| Error::format(path, "NRRD header is not text"))?;
        if n == 0 {
            if first {
                return Err(Error::format(path, "empty file, not NRRD"));
            }
            break; // a detached header may end without a blank line
        }
        consumed += n as u64;
        if consumed > 1 << 20 {
            return Err(Error::format(
                path,
                "NRRD header runs past 1 MiB without its blank line: not a NRRD header",
            ));
        }
        let l = line.trim_end_matches(['\n', '\r']);
        if first {
            if !l.starts_with("NRRD000") {
                return Err(Error::format(
                    path,
                    "not a NRRD file (missing NRRD000X magic)",
                ));
            }
            first = false;
            continue;
        }
        if l.is_empty() {
            break;
        }
        if l.starts_with('#') || l.contains(":=") {
            continue;
        }
        let (k, v) = l
            .split_once(": ")
            .ok_or_else(|| Error::format(path, format!("bad NRRD header line '{l}'")))?;
        let key = k.trim().to_ascii_lowercase();
        let list = (key == "data file" || key == "datafile") && v.trim().starts_with("LIST");
        fields.insert(key, v.to_string());
        if list {
            break; // the file names follow, one per line
        }
        if consumed > 1 << 20 {
            return Err(Error::format(path, "NRRD header longer than 1 MiB"));
        }
    }
    Ok((fields, consumed))
}

fn detached_path(header: &Path, df: &str) -> Result<PathBuf, String> {
    if df.starts_with("LIST") || df.split_whitespace().count() > 1 {
        return Err(format!(
            "multi-file NRRD data ('data file: {df}') is not supported"
        ));
    }
    let p = Path::new(df);
    Ok(if p.is_absolute() {
        p.to_path_buf()
    } else {
        header.parent().unwrap_or(Path::new(".")).join(p)
    })
}

fn parse_type(t: &str) -> Result<DType, String> {
    Ok(match t.trim() {
        "signed char" | "int8" | "int8_t" => DType::I8,
        "uchar" | "unsigned char" | "uint8" | "uint8_t" => DType::U8,
        "short" | "short int" | "signed short" | "signed short int" | "int16" | "int16_t" => {
            DType::I16
        }
        "ushort" | "unsigned short" | "unsigned short int" | "uint16" | "uint16_t" => DType::U16,
        "int" | "signed int" | "int32" | "int32_t" => DType::I32,
        "uint" | "unsigned int" | "uint32" | "uint32_t" => DType::U32,
        "longlong"
        | "long long"
        | "long long int"
        | "signed long long"
        | "signed long long int"
        | "int64"
        | "int64_t" => DType::I64,
        "ulonglong" | "unsigned long long" | "unsigned long long int" | "uint64" | "uint64_t" => {
            DType::U64
        }
        "float" => DType::F32,
        "double" => DType::F64,
        o => return Err(format!("unsupported NRRD type '{o}'")),
    })
}

fn parse_vector(s: &str) -> Result<Vec<f64>, String> {
    let inner = s
        .trim()
        .strip_prefix('(')
        .and_then(|s| s.strip_suffix(')'))
        .ok_or_else(|| format!("bad NRRD vector '{s}'"))?;
    inner
        .split(',')
        .map(|t| {
            t.trim()
                .parse::<f64>()
                .map_err(|_| format!("bad number in NRRD vector '{s}'"))
        })
        .collect()
}

/// The axes of an NRRD array (axis 0 = the first entry of `sizes`, the fastest).
fn nrrd_axes(fields: &HashMap<String, String>, sizes: &[usize]) -> Vec<Axis> {
    let words = |k: &str| -> Option<Vec<String>> {
        let v: Vec<String> = fields
            .get(k)?
            .split_whitespace()
            .map(str::to_string)
            .collect();
        (v.len() == sizes.len()).then_some(v)
    };
    let kinds = words("kinds");
    let dirs = fields.get("space directions").map(|d| {
        // Vectors are parenthesised; "none" marks a non-spatial axis.
        d.split_whitespace()
            .map(|t| t != "none")
            .collect::<Vec<bool>>()
    });
    let dirs = dirs.filter(|d| d.len() == sizes.len());
    let labels = words("labels");
    let mut space_names = ["x", "y", "z"].iter();
    sizes
        .iter()
        .enumerate()
        .map(|(a, &len)| {
            let kind = kinds.as_ref().map(|k| k[a].to_ascii_lowercase());
            let axis_kind = match (kind.as_deref(), &dirs) {
                (Some("domain" | "space"), _) => AxisKind::Space,
                (Some("time"), _) => AxisKind::Time,
                (Some(k), _) if k.contains("color") || k.contains("vector") || k == "list" => {
                    AxisKind::Channel
                }
                (Some(_), _) => AxisKind::Other,
                (None, Some(d)) => {
                    if d[a] {
                        AxisKind::Space
                    } else {
                        AxisKind::Other
                    }
                }
                // No metadata: the last (up to) three axes are spatial.
                (None, None) if sizes.len() <= 3 || a >= sizes.len() - 3 => AxisKind::Space,
                (None, None) => AxisKind::Other,
            };
            let label = labels.as_ref().map(|l| l[a].trim_matches('"').to_string());
            let name = match (label, axis_kind) {
                (Some(l), _) if !l.is_empty() => l,
                (_, AxisKind::Space) => space_names
                    .next()
                    .map_or(format!("axis{a}"), |n| n.to_string()),
                (_, AxisKind::Time) => "t".into(),
                (_, AxisKind::Channel) => "c".into(),
                _ => format!("axis{a}"),
            };
            Axis {
                name,
                kind: axis_kind,
                unit: None,
                len,
            }
        })
        .collect()
}

/// Index → world of the three spatial axes `spatial` (in array order).
fn nrrd_affine(fields: &HashMap<String, String>, spatial: &[usize]) -> Result<Affine, String> {
    let mut m = [[0.0; 4]; 4];
    m[3][3] = 1.0;
    if let Some(dirs) = fields.get("space directions") {
        let all: Vec<&str> = dirs.split_whitespace().collect();
        let cols: Vec<&str> = if all.len() == 3 {
            all.clone()
        } else {
            spatial
                .iter()
                .filter_map(|&a| all.get(a).copied())
                .collect()
        };
        if cols.len() != 3 || cols.contains(&"none") {
            return Err(format!(
                "'space directions' must give a vector for each of the 3 spatial axes, got '{dirs}'"
            ));
        }
        for (j, c) in cols.iter().enumerate() {
            let v = parse_vector(c)?;
            if v.len() != 3 {
                return Err(format!("space direction '{c}' is not 3-D"));
            }
            for i in 0..3 {
                m[i][j] = v[i];
            }
        }
    } else {
        let sp: Vec<f64> = match fields.get("spacings") {
            Some(s) => {
                let all: Vec<f64> = s
                    .split_whitespace()
                    .map(|t| t.parse::<f64>().unwrap_or(f64::NAN))
                    .collect();
                if all.len() == 3 {
                    all
                } else {
                    spatial
                        .iter()
                        .filter_map(|&a| all.get(a).copied())
                        .collect()
                }
            }
            None => vec![1.0; 3],
        };
        if sp.len() != 3 {
            return Err(format!("'spacings' must give 3 numbers, got {sp:?}"));
        }
        for i in 0..3 {
            m[i][i] = if sp[i].is_nan() { 1.0 } else { sp[i] };
        }
    }
    if let Some(o) = fields.get("space origin") {
        let v = parse_vector(o)?;
        if v.len() != 3 {
            return Err(format!("'space origin' is not 3-D: '{o}'"));
        }
        for i in 0..3 {
            m[i][3] = v[i];
        }
    }
    Affine::from_rows(m).map_err(|e| format!("bad NRRD geometry: {e}"))
}
