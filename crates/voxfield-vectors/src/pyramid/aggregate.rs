//! Vertex and object attributes carried to a coarser level.

use std::path::Path;

use serde_json::{json, Value};
use voxfield_core::{Error, Result};

use super::options::Aggregation;
use super::source::{Members, Source};
use crate::cells::{read_json, CellArray};
use crate::manifests::{sentinel_bytes, write_object_attributes};
use crate::store::{decode_f64, itemsize, Store};
use crate::write::Attribute;

/// One aggregated vertex attribute of a new level, rows in metanode id order.
pub(super) struct Aggregated {
    pub(super) name: String,
    pub(super) attrs: Value,
    /// Bytes per row.
    pub(super) row: usize,
    pub(super) bytes: Vec<u8>,
}

pub(super) fn encode(v: &[f64], dtype: &str) -> Vec<u8> {
    let mut b = Vec::with_capacity(v.len() * 8);
    for &x in v {
        match dtype {
            "float32" => b.extend((x as f32).to_le_bytes()),
            "float64" => b.extend(x.to_le_bytes()),
            "int8" => b.extend((x as i8).to_le_bytes()),
            "uint8" => b.extend((x as u8).to_le_bytes()),
            "int16" => b.extend((x as i16).to_le_bytes()),
            "uint16" => b.extend((x as u16).to_le_bytes()),
            "int32" => b.extend((x as i32).to_le_bytes()),
            "uint32" => b.extend((x as u32).to_le_bytes()),
            "int64" => b.extend((x as i64).to_le_bytes()),
            _ => b.extend((x as u64).to_le_bytes()),
        }
    }
    b
}

/// Each vertex attribute of the source level aggregated over the members of
/// each metanode (member row `g` belongs to metanode `id_of_row[g]`).
pub(super) fn aggregate(
    store: &Store,
    source: u64,
    src: &Source,
    members: Members,
    id_of_row: &[u32],
    m: usize,
    agg: Aggregation,
) -> Result<Vec<Aggregated>> {
    let dir = store
        .path
        .join(source.to_string())
        .join("vertex_attributes");
    let mut out = vec![];
    for name in store.attribute_names(source)? {
        let a = CellArray::open(&dir.join(&name), store.dims)?;
        let dtype = a.attrs["dtype"].as_str().unwrap_or("float32").to_string();
        if itemsize(&dtype).is_none() {
            continue;
        }
        let width = a.attrs["row_shape"]
            .as_array()
            .map(|r| r.iter().filter_map(Value::as_u64).product::<u64>() as usize)
            .unwrap_or(1)
            .max(1);
        // The attribute's rows, numbered as the source vertices are.
        let mut values = Vec::with_capacity(src.pos.len() / store.dims * width);
        for (k, c) in src.chunks.iter().enumerate() {
            let v = decode_f64(&a.read(c)?, &dtype);
            let rows = src.starts[k + 1] - src.starts[k];
            if v.len() != rows * width {
                return Err(Error::format(
                    &a.path,
                    format!("chunk {c:?} has {} values for {rows} vertices", v.len()),
                ));
            }
            values.extend(v);
        }
        let mut groups: Vec<Vec<usize>> = vec![vec![]; m];
        for g in members() {
            groups[id_of_row[g] as usize].push(g);
        }
        let out_dtype = match agg {
            Aggregation::Count => "int64".to_string(),
            Aggregation::Mean if !dtype.starts_with("float") => "float64".to_string(),
            Aggregation::Sum if dtype.starts_with("float") => "float64".to_string(),
            Aggregation::Sum if dtype.starts_with('u') => "uint64".to_string(),
            Aggregation::Sum => "int64".to_string(),
            _ => dtype.clone(),
        };
        let w = if agg == Aggregation::Count { 1 } else { width };
        let mut result = Vec::with_capacity(m * w);
        for g in &groups {
            for ch in 0..w {
                let it = g.iter().map(|&r| values[r * width + ch]);
                result.push(match agg {
                    Aggregation::Mean => it.sum::<f64>() / g.len().max(1) as f64,
                    Aggregation::Sum => it.sum(),
                    Aggregation::Min => it.fold(f64::INFINITY, f64::min),
                    Aggregation::Max => it.fold(f64::NEG_INFINITY, f64::max),
                    Aggregation::Count => g.len() as f64,
                    Aggregation::First => it.into_iter().next().unwrap_or(f64::NAN),
                    Aggregation::Mode => {
                        // The most frequent value; ties to the smallest.
                        let mut v: Vec<f64> = it.collect();
                        v.sort_by(f64::total_cmp);
                        let (mut best, mut best_n, mut i) = (f64::NAN, 0, 0);
                        while i < v.len() {
                            let j = v[i..].iter().take_while(|&&x| x == v[i]).count();
                            if j > best_n {
                                (best, best_n) = (v[i], j);
                            }
                            i += j.max(1);
                        }
                        best
                    }
                });
            }
        }
        let mut attrs = json!({"zv_array": "attribute", "name": name, "dtype": out_dtype,
            "row_shape": if w > 1 { vec![w] } else { vec![] }});
        if w > 1 {
            attrs["channel_names"] = a.attrs["channel_names"].clone();
        }
        out.push(Aggregated {
            row: w * itemsize(&out_dtype).expect("numeric"),
            bytes: encode(&result, &out_dtype),
            name,
            attrs,
        });
    }
    Ok(out)
}

/// Copies the source level's object attributes for the kept rows; other
/// rows take the dtype's "absent" sentinel, as zarr-vectors writes them.
pub(super) fn copy_object_attributes(src_dir: &Path, dst: &Path, keep: &[usize]) -> Result<()> {
    let from = src_dir.join("object_attributes");
    for name in &crate::cells::child_nodes(&from) {
        let meta = read_json(&from.join(name))?;
        let dtype = meta["data_type"].as_str().unwrap_or("").to_string();
        let size = itemsize(&dtype).ok_or_else(|| {
            Error::format(from.join(name).join("zarr.json"), format!("dtype {dtype}"))
        })?;
        let shape: Vec<usize> = meta["shape"]
            .as_array()
            .map(|s| {
                s.iter()
                    .filter_map(Value::as_u64)
                    .map(|v| v as usize)
                    .collect()
            })
            .unwrap_or_default();
        let (n, width) = (
            shape.first().copied().unwrap_or(0),
            shape.get(1).copied().unwrap_or(1),
        );
        let row = width * size;
        let data = crate::objects::read_dense(
            &crate::location::Location::local(&from.join(name)),
            n * row,
        )?;
        let fill = sentinel_bytes(&dtype).expect("numeric");
        let mut out: Vec<u8> = fill.iter().cycle().take(n * row).copied().collect();
        for &r in keep.iter().filter(|&&r| r < n) {
            out[r * row..(r + 1) * row].copy_from_slice(&data[r * row..(r + 1) * row]);
        }
        let a = Attribute {
            name,
            dtype: &dtype,
            width,
            bytes: &out,
        };
        write_object_attributes(dst, &[a], n, Some(&crate::manifests::LEVEL_ZSTD))?;
    }
    Ok(())
}
