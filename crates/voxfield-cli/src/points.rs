//! Point lists for `voxfield sample`: an (N,3) `.npy` (float32/float64) or a CSV
//! with three numeric columns (an optional header line, `#` comments).

use std::path::Path;

use anyhow::{bail, Context};
use voxfield_core::DType;
use voxfield_io::npy;

/// Loads points as N×3 row-major f64.
pub fn load(path: &Path) -> anyhow::Result<Vec<f64>> {
    let is_npy = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("npy"));
    if is_npy {
        load_npy(path)
    } else {
        load_csv(path)
    }
}

fn load_npy(path: &Path) -> anyhow::Result<Vec<f64>> {
    let a = npy::read_array(path)?;
    if !matches!(a.dtype, DType::F32 | DType::F64) {
        bail!(
            "{}: points must be float32 or float64, not {}",
            path.display(),
            a.dtype
        );
    }
    match a.shape.as_slice() {
        [_, 3] => Ok(a.data),
        [0] => Ok(vec![]),
        s => bail!(
            "{}: points must have shape (N, 3), got {s:?}",
            path.display()
        ),
    }
}

fn load_csv(path: &Path) -> anyhow::Result<Vec<f64>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let mut out = Vec::new();
    let mut first_data_line = true;
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let cols: Vec<&str> = line
            .split(|c: char| c == ',' || c == ';' || c.is_whitespace())
            .filter(|s| !s.is_empty())
            .collect();
        let nums: Result<Vec<f64>, _> = cols.iter().map(|c| c.parse::<f64>()).collect();
        match nums {
            Ok(v) if v.len() == 3 => out.extend(v),
            Ok(v) => bail!(
                "{} line {}: expected 3 columns, found {}",
                path.display(),
                n + 1,
                v.len()
            ),
            Err(_) if first_data_line => {} // a header line
            Err(_) => bail!(
                "{} line {}: '{line}' is not three numbers",
                path.display(),
                n + 1
            ),
        }
        first_data_line = false;
    }
    Ok(out)
}
