//! The Zarr v3 / OME-Zarr 0.5 view of a field: `NAME.ome.zarr/zarr.json` (a
//! group whose `ome.multiscales` lists every level with its scale and
//! translation), `NAME.ome.zarr/L/zarr.json` and chunks at `L/c/I/J/K`
//! (full chunks, the far edges padded with the fill value 0).

use serde_json::{json, Value};

use crate::field::ServedField;
use crate::{Codec, Reply};

/// What a path under `/zarr/` names.
#[derive(Debug, PartialEq)]
pub enum Key {
    Group,
    Array(usize),
    Chunk(usize, [usize; 3]),
}

/// Parses the segments after `NAME.ome.zarr/`.
pub fn parse(segs: &[&str]) -> Result<Key, Reply> {
    match segs {
        [] | ["zarr.json"] => Ok(Key::Group),
        [level, "zarr.json"] => Ok(Key::Array(crate::number(level, "level")?)),
        [level, "c", i, j, k] => Ok(Key::Chunk(
            crate::number(level, "level")?,
            [
                crate::number(i, "chunk index")?,
                crate::number(j, "chunk index")?,
                crate::number(k, "chunk index")?,
            ],
        )),
        _ => Err(Reply::NotFound(format!(
            "no such key in a voxfield Zarr view: '{}' (zarr.json, LEVEL/zarr.json or LEVEL/c/I/J/K)",
            segs.join("/")
        ))),
    }
}

/// The group's `zarr.json`.
pub fn group(f: &ServedField) -> Value {
    let axes: Vec<Value> = f
        .axis_names
        .iter()
        .map(|n| {
            let mut a = json!({"name": n, "type": "space"});
            if let Some(u) = &f.unit {
                a["unit"] = json!(u);
            }
            a
        })
        .collect();
    let datasets: Vec<Value> = f
        .levels
        .iter()
        .enumerate()
        .map(|(i, l)| {
            let m = l.affine.rows();
            json!({
                "path": i.to_string(),
                "coordinateTransformations": [
                    {"type": "scale", "scale": [m[0][0], m[1][1], m[2][2]]},
                    {"type": "translation", "translation": [m[0][3], m[1][3], m[2][3]]},
                ],
            })
        })
        .collect();
    json!({
        "zarr_format": 3,
        "node_type": "group",
        "attributes": {
            "ome": {
                "version": "0.5",
                "multiscales": [{
                    "name": f.name,
                    "axes": axes,
                    "datasets": datasets,
                    "type": if f.kind == "volume" { "mean" } else { "model evaluated at voxel centres" },
                    "metadata": {"source": f.kind, "served_by": "voxfield"},
                }],
            }
        }
    })
}

/// Level `level`'s array `zarr.json`.
pub fn array(f: &ServedField, level: usize, codec: Codec) -> Value {
    let l = &f.levels[level];
    let mut codecs = vec![json!({"name": "bytes", "configuration": {"endian": "little"}})];
    if let Codec::Zstd(level) = codec {
        codecs.push(json!({"name": "zstd", "configuration": {"level": level, "checksum": false}}));
    }
    let fill = match f.dtype {
        voxfield::DType::Bool => json!(false),
        d if d.is_float() => json!(0.0),
        _ => json!(0),
    };
    json!({
        "zarr_format": 3,
        "node_type": "array",
        "shape": l.shape,
        "data_type": f.dtype.name(),
        "chunk_grid": {"name": "regular", "configuration": {"chunk_shape": f.chunk}},
        "chunk_key_encoding": {"name": "default", "configuration": {"separator": "/"}},
        "fill_value": fill,
        "codecs": codecs,
        "dimension_names": f.axis_names,
        "attributes": {},
    })
}

/// The bytes of chunk `c` of `level`: a full chunk (padded with zeros past the
/// level's edge), encoded with `codec`.
pub fn chunk(f: &ServedField, level: usize, c: [usize; 3], codec: Codec) -> Result<Vec<u8>, Reply> {
    let grid = f.grid(level);
    if (0..3).any(|a| c[a] >= grid[a]) {
        return Err(Reply::NotFound(format!(
            "{}: chunk {c:?} is past level {level}'s chunk grid {grid:?}",
            f.name
        )));
    }
    let (start, size) = f.chunk_box(level, c);
    let data = f.read(level, start, size).map_err(Reply::from)?;
    let e = f.dtype.size();
    let full = f.chunk;
    let raw = if size == full {
        data
    } else {
        let mut out = vec![0u8; full.iter().product::<usize>() * e];
        let row = size[2] * e;
        for i in 0..size[0] {
            for j in 0..size[1] {
                let from = (i * size[1] + j) * row;
                let to = (i * full[1] + j) * full[2] * e;
                out[to..to + row].copy_from_slice(&data[from..from + row]);
            }
        }
        out
    };
    match codec {
        Codec::Raw => Ok(raw),
        Codec::Zstd(level) => {
            zstd::bulk::compress(&raw, level).map_err(|e| Reply::Internal(format!("zstd: {e}")))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys() {
        assert_eq!(parse(&[]).unwrap(), Key::Group);
        assert_eq!(parse(&["zarr.json"]).unwrap(), Key::Group);
        assert_eq!(parse(&["2", "zarr.json"]).unwrap(), Key::Array(2));
        assert_eq!(
            parse(&["1", "c", "0", "3", "12"]).unwrap(),
            Key::Chunk(1, [0, 3, 12])
        );
        assert!(matches!(
            parse(&["1", "c", "0", "3"]),
            Err(Reply::NotFound(_))
        ));
        assert!(matches!(
            parse(&["1", "c", "0", "-3", "1"]),
            Err(Reply::BadRequest(_))
        ));
        assert!(matches!(parse(&[".zgroup"]), Err(Reply::NotFound(_))));
    }
}
