//! Tables of numbers: point lists for `voxfield sample` and scattered samples for
//! `voxfield rbf` — `voxfield_io::table`'s tables, one reader for every verb.

use std::path::Path;

use anyhow::bail;

pub use voxfield_io::table::load_table;

/// Loads an (N, cols) table of points, refusing any other width.
pub fn load_cols(path: &Path, cols: usize) -> anyhow::Result<Vec<f64>> {
    let t = load_table(path)?;
    if t.rows() > 0 && t.cols != cols {
        bail!(
            "{}: points must have shape (N, {cols}), got {} columns",
            path.display(),
            t.cols
        );
    }
    Ok(t.data)
}
