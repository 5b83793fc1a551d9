//! The Neuroglancer precomputed view of a field: `NAME/info` and unsharded
//! chunks at `NAME/SCALE/X0-X1_Y0-Y1_Z0-Z1`, `raw` (or `jpeg` for uint8 when
//! the server is asked to: a grey image X wide and Y·Z high, lossy).
//!
//! Precomputed's x, y, z are the array's index axes 2, 1, 0, and a chunk is
//! stored x fastest: exactly the C-order bytes of the box `[Z0..Z1, Y0..Y1,
//! X0..X1]`. A client indexing the served data as `[x, y, z]` therefore gets
//! the array transposed. Resolutions are the level's spacing in nanometres
//! (its sign and any rotation dropped: precomputed has neither).

use serde_json::{json, Value};
use voxfield::DType;

use crate::field::ServedField;
use crate::Reply;

/// The precomputed `data_type` of a dtype, when precomputed has one (its
/// names are numpy's, which `DType::name` gives).
pub fn data_type(d: DType) -> Option<&'static str> {
    use DType::*;
    matches!(d, U8 | I8 | U16 | I16 | U32 | I32 | U64 | F32).then(|| d.name())
}

/// Nanometres per unit of a spatial unit name (None: unknown).
pub fn nanometres(unit: &str) -> Option<f64> {
    Some(match unit.to_ascii_lowercase().as_str() {
        "angstrom" => 0.1,
        "nm" | "nanometer" | "nanometre" => 1.0,
        "um" | "µm" | "micrometer" | "micrometre" | "micron" => 1e3,
        "mm" | "millimeter" | "millimetre" => 1e6,
        "cm" | "centimeter" | "centimetre" => 1e7,
        "m" | "meter" | "metre" => 1e9,
        _ => return None,
    })
}

/// The encoding chunks of `f` are served in: jpeg at `quality` for uint8
/// when asked, else raw.
pub fn encoding(f: &ServedField, jpeg: Option<u8>) -> Option<u8> {
    jpeg.filter(|_| f.dtype == DType::U8)
}

/// The `info` JSON, or why this field has no precomputed view.
pub fn info(f: &ServedField, jpeg: Option<u8>) -> Result<Value, Reply> {
    let dt = data_type(f.dtype).ok_or_else(|| {
        Reply::NotFound(format!(
            "{}: precomputed has no {} data type; read it through /zarr/",
            f.name, f.dtype
        ))
    })?;
    let nm = f.unit.as_deref().and_then(nanometres).unwrap_or(1.0);
    let scales: Vec<Value> = f
        .levels
        .iter()
        .enumerate()
        .map(|(i, l)| {
            let spacing = f.spacing(i).map(|s| s * nm);
            json!({
                "key": i.to_string(),
                "size": [l.shape[2], l.shape[1], l.shape[0]],
                "resolution": [spacing[2], spacing[1], spacing[0]],
                "voxel_offset": [0, 0, 0],
                "chunk_sizes": [[f.chunk[2], f.chunk[1], f.chunk[0]]],
                "encoding": if encoding(f, jpeg).is_some() { "jpeg" } else { "raw" },
            })
        })
        .collect();
    Ok(json!({
        "@type": "neuroglancer_multiscale_volume",
        "type": "image",
        "data_type": dt,
        "num_channels": 1,
        "scales": scales,
    }))
}

/// Parses `X0-X1_Y0-Y1_Z0-Z1` into the array box (start, size) it names.
pub fn parse_box(key: &str) -> Result<([usize; 3], [usize; 3]), Reply> {
    let bad = || {
        Reply::BadRequest(format!(
            "chunk key '{key}' is not X0-X1_Y0-Y1_Z0-Z1 (whole numbers, X0 < X1)"
        ))
    };
    let parts: Vec<&str> = key.split('_').collect();
    if parts.len() != 3 {
        return Err(bad());
    }
    let mut start = [0usize; 3];
    let mut size = [0usize; 3];
    for (p, part) in parts.iter().enumerate() {
        let (a, b) = part.split_once('-').ok_or_else(bad)?;
        let (a, b) = (
            crate::number(a, "chunk bound")?,
            crate::number(b, "chunk bound")?,
        );
        if a >= b {
            return Err(bad());
        }
        // x, y, z are array axes 2, 1, 0.
        start[2 - p] = a;
        size[2 - p] = b - a;
    }
    Ok((start, size))
}

/// The bytes of the box `key` of scale `level`, encoded as the info says.
pub fn chunk(f: &ServedField, level: usize, key: &str, jpeg: Option<u8>) -> Result<Vec<u8>, Reply> {
    info(f, jpeg)?;
    let (start, size) = parse_box(key)?;
    let Some(l) = f.levels.get(level) else {
        return Err(Reply::NotFound(format!("{}: no scale {level}", f.name)));
    };
    if (0..3).any(|a| start[a] + size[a] > l.shape[a]) {
        return Err(Reply::NotFound(format!(
            "{}: chunk {key} is past scale {level}'s size {:?} (x, y, z)",
            f.name,
            [l.shape[2], l.shape[1], l.shape[0]]
        )));
    }
    let raw = f.read(level, start, size).map_err(Reply::from)?;
    match encoding(f, jpeg) {
        None => Ok(raw),
        Some(quality) => jpeg_chunk(&raw, size, quality),
    }
}

/// A uint8 box as precomputed's jpeg: x across, y then z down.
fn jpeg_chunk(raw: &[u8], size: [usize; 3], quality: u8) -> Result<Vec<u8>, Reply> {
    let side = |n: usize| {
        u16::try_from(n).map_err(|_| {
            Reply::BadRequest(format!(
                "a jpeg chunk of {size:?} voxels is over JPEG's 65535 pixels per side: ask smaller chunks"
            ))
        })
    };
    let (w, h) = (side(size[2])?, side(size[0] * size[1])?);
    let mut out = Vec::new();
    jpeg_encoder::Encoder::new(&mut out, quality)
        .encode(raw, w, h, jpeg_encoder::ColorType::Luma)
        .map_err(|e| Reply::Internal(format!("jpeg: {e}")))?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunk_keys_are_x_y_z_of_axes_2_1_0() {
        assert_eq!(
            parse_box("0-64_64-128_5-9").unwrap(),
            ([5, 64, 0], [4, 64, 64])
        );
        for bad in [
            "0-64_0-64",
            "0-64_0-64_0-64_0-1",
            "9-3_0-1_0-1",
            "a-b_0-1_0-1",
            "0-1_0-1_-1-2",
            "0_0_0",
        ] {
            assert!(parse_box(bad).is_err(), "{bad}");
        }
        assert_eq!(nanometres("millimeter"), Some(1e6));
        assert_eq!(data_type(DType::F64), None);
    }
}
