//! Tables of numbers — point lists, scattered samples, point clouds to
//! import: an `.npy` (float32/float64, (N, C)) or a CSV/whitespace table (an
//! optional header line naming the columns, `#` comments), read whole.

use std::path::Path;

use voxfield_core::{DType, Error, Result};

use crate::npy;

/// A row-major table of `cols` columns.
pub struct Table {
    pub names: Option<Vec<String>>,
    pub cols: usize,
    pub data: Vec<f64>,
}

impl Table {
    pub fn rows(&self) -> usize {
        self.data.len().checked_div(self.cols).unwrap_or(0)
    }

    /// The listed columns (names from the header, or 0-based indices), row-major.
    pub fn select(&self, path: &Path, spec: &[String]) -> Result<Vec<f64>> {
        let idx: Vec<usize> = spec
            .iter()
            .map(|s| {
                if let Some(i) = self
                    .names
                    .as_ref()
                    .and_then(|n| n.iter().position(|c| c == s))
                {
                    return Ok(i);
                }
                match s.parse::<usize>() {
                    Ok(i) if i < self.cols => Ok(i),
                    _ => Err(Error::invalid(format!(
                        "{}: no column {s:?} (columns: {})",
                        path.display(),
                        match &self.names {
                            Some(n) => n.join(", "),
                            None => format!("0 to {} by position, no header", self.cols - 1),
                        }
                    ))),
                }
            })
            .collect::<Result<_>>()?;
        let mut out = Vec::with_capacity(self.rows() * idx.len());
        for row in self.data.chunks_exact(self.cols) {
            out.extend(idx.iter().map(|&i| row[i]));
        }
        Ok(out)
    }
}

/// Loads any table: `.npy` by extension, text otherwise.
pub fn load_table(path: &Path) -> Result<Table> {
    crate::safety::regular_input(path)?;
    let is_npy = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("npy"));
    if is_npy {
        load_npy(path)
    } else {
        load_text(path)
    }
}

fn load_npy(path: &Path) -> Result<Table> {
    let a = npy::read_array(path)?;
    if !matches!(a.dtype, DType::F32 | DType::F64) {
        return Err(Error::format(
            path,
            format!("points must be float32 or float64, not {}", a.dtype),
        ));
    }
    let cols = match a.shape.as_slice() {
        [_, c] => *c,
        [0] => 0,
        s => {
            return Err(Error::format(
                path,
                format!("points must have shape (N, C), got {s:?}"),
            ))
        }
    };
    Ok(Table {
        names: None,
        cols,
        data: a.data,
    })
}

fn load_text(path: &Path) -> Result<Table> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    let mut data = Vec::new();
    let mut names = None;
    let mut cols = 0;
    let mut first_data_line = true;
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let fields: Vec<&str> = line
            .split(|c: char| c == ',' || c == ';' || c.is_whitespace())
            .filter(|s| !s.is_empty())
            .collect();
        let before = data.len();
        let parsed = fields
            .iter()
            .try_for_each(|c| c.parse::<f64>().map(|v| data.push(v)).map_err(|_| ()));
        match parsed {
            Ok(()) if cols == 0 || fields.len() == cols => cols = fields.len(),
            Ok(()) => {
                return Err(Error::format(
                    path,
                    format!(
                        "line {}: expected {cols} columns, found {}",
                        n + 1,
                        fields.len()
                    ),
                ))
            }
            Err(()) if first_data_line => {
                data.truncate(before);
                names = Some(
                    fields
                        .iter()
                        .map(|s| s.trim_matches('"').to_string())
                        .collect(),
                );
                cols = fields.len();
            }
            Err(()) => {
                return Err(Error::format(
                    path,
                    format!("line {}: '{line}' is not {cols} numbers", n + 1),
                ))
            }
        }
        first_data_line = false;
    }
    Ok(Table { names, cols, data })
}
