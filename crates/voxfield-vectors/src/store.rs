//! A zarr-vectors store: root metadata, levels, and vertex reads (whole
//! level or bounding box) with their vertex attributes.

use std::path::{Path, PathBuf};

use rayon::prelude::*;
use serde_json::Value;
use voxfield_core::{Error, Result};

use crate::cells::{read_json, CellArray};
use crate::location::Location;

/// The oldest format this reader accepts (0.9.0 broke everything before it).
const MIN_VERSION: (u64, u64, u64) = (0, 9, 0);

/// An open store.
#[derive(Clone, Debug)]
pub struct Store {
    /// The store's folder, or its URL (for messages; writes need a local store).
    pub path: PathBuf,
    /// Where its bytes are read from.
    pub loc: Location,
    pub version: String,
    pub dims: usize,
    /// Level-0 chunk size in physical units.
    pub chunk_shape: Vec<f64>,
    /// Data bounds (min, max corners).
    pub bounds: [Vec<f64>; 2],
    pub geometry_types: Vec<String>,
    pub base_bin_shape: Option<Vec<f64>>,
    /// The root `zarr_vectors` attributes as stored.
    pub attrs: Value,
}

/// What a level's group says about it.
#[derive(Clone, Debug)]
pub struct LevelInfo {
    pub level: u64,
    pub vertex_count: Option<u64>,
    pub chunk_shape: Vec<f64>,
    pub bin_shape: Option<Vec<f64>>,
    pub coarsening_method: Option<String>,
    pub arrays_present: Vec<String>,
    /// The level's `zarr_vectors_level` attributes as stored.
    pub attrs: Value,
}

/// Raw rows of one array, in the order of the vertices they belong to.
#[derive(Clone, Debug)]
pub struct Column {
    pub name: String,
    /// numpy dtype name (`float32`, `int64`, …).
    pub dtype: String,
    /// Values per row (1 for a scalar attribute).
    pub width: usize,
    /// Little-endian element bytes, row-major.
    pub bytes: Vec<u8>,
}

impl Column {
    /// The values as f64, row-major.
    pub fn to_f64(&self) -> Vec<f64> {
        decode_f64(&self.bytes, &self.dtype)
    }
}

/// The vertices of a level (or of a box in it) and their attributes.
#[derive(Clone, Debug)]
pub struct Points {
    pub positions: Column,
    pub attributes: Vec<Column>,
}

impl Points {
    pub fn len(&self) -> usize {
        self.positions.bytes.len()
            / (self.positions.width * itemsize(&self.positions.dtype).unwrap_or(1))
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The size of a numpy dtype name's element, for the numeric dtypes
/// zarr-vectors stores.
pub fn itemsize(dtype: &str) -> Option<usize> {
    Some(match dtype {
        "float64" | "int64" | "uint64" => 8,
        "float32" | "int32" | "uint32" => 4,
        "float16" | "int16" | "uint16" => 2,
        "int8" | "uint8" | "bool" => 1,
        _ => return None,
    })
}

/// Element `i` of little-endian `bytes` of `dtype` as f64.
/// Little-endian values of a numeric `dtype` as float64.
pub(crate) fn decode_f64(bytes: &[u8], dtype: &str) -> Vec<f64> {
    let s = itemsize(dtype).expect("a checked dtype");
    (0..bytes.len() / s)
        .map(|i| value(bytes, dtype, i))
        .collect()
}

fn value(bytes: &[u8], dtype: &str, i: usize) -> f64 {
    let s = itemsize(dtype).expect("a checked dtype");
    let b = &bytes[i * s..(i + 1) * s];
    match dtype {
        "float64" => f64::from_le_bytes(b.try_into().expect("8 bytes")),
        "float32" => f32::from_le_bytes(b.try_into().expect("4 bytes")) as f64,
        "int64" => i64::from_le_bytes(b.try_into().expect("8 bytes")) as f64,
        "int32" => i32::from_le_bytes(b.try_into().expect("4 bytes")) as f64,
        "int16" => i16::from_le_bytes(b.try_into().expect("2 bytes")) as f64,
        "uint16" => u16::from_le_bytes(b.try_into().expect("2 bytes")) as f64,
        "uint32" => u32::from_le_bytes(b.try_into().expect("4 bytes")) as f64,
        "uint64" => u64::from_le_bytes(b.try_into().expect("8 bytes")) as f64,
        "int8" => b[0] as i8 as f64,
        _ => b[0] as f64,
    }
}

fn floats(v: &Value) -> Option<Vec<f64>> {
    v.as_array()?.iter().map(Value::as_f64).collect()
}

fn parse_version(v: &str) -> Option<(u64, u64, u64)> {
    let mut it = v.split('.').map(|p| p.parse::<u64>().ok());
    Some((it.next()??, it.next()??, it.next().flatten().unwrap_or(0)))
}

impl Store {
    /// Opens a store: its root group's `zarr_vectors` attributes, version ≥ 0.9.0.
    /// `path` may be a URL (`http(s)://`, `s3://`): the store is then read
    /// remotely, only the objects a read touches fetched.
    pub fn open(path: &Path) -> Result<Store> {
        match path.to_str() {
            Some(s) if voxfield_zarr::remote::is_url(s) => Self::open_at(Location::open(s)?),
            _ => Self::open_at(Location::local(path)),
        }
    }

    fn open_at(loc: Location) -> Result<Store> {
        let path = loc.path();
        let root = loc.json()?;
        let meta_path = path.join("zarr.json");
        let bad = |m: String| Error::format(&meta_path, m);
        if root["node_type"] != "group" || root["zarr_format"] != 3 {
            return Err(bad(
                "not a Zarr v3 group (zarr-vectors stores are Zarr v3)".into()
            ));
        }
        let zv = &root["attributes"]["zarr_vectors"];
        let version = zv["zv_version"]
            .as_str()
            .ok_or_else(|| bad("no zarr_vectors.zv_version: not a zarr-vectors store".into()))?;
        match parse_version(version) {
            Some(v) if v >= MIN_VERSION => {}
            _ => {
                return Err(bad(format!(
                    "zarr-vectors format {version} is older than 0.9.0, which changed the layout; rewrite the store with zarr-vectors ≥ 0.9"
                )))
            }
        }
        let chunk_shape =
            floats(&zv["chunk_shape"]).ok_or_else(|| bad("no numeric chunk_shape".into()))?;
        let dims = chunk_shape.len();
        if !(1..=4).contains(&dims) || chunk_shape.iter().any(|c| !(c.is_finite() && *c > 0.0)) {
            return Err(bad(format!(
                "chunk_shape {chunk_shape:?} must be 1-4 positive numbers"
            )));
        }
        let corner = |i: usize| floats(&zv["bounds"][i]).filter(|b| b.len() == dims);
        let bounds = [
            corner(0).ok_or_else(|| bad("no bounds".into()))?,
            corner(1).ok_or_else(|| bad("no bounds".into()))?,
        ];
        Ok(Store {
            path,
            loc,
            version: version.to_string(),
            dims,
            chunk_shape,
            bounds,
            geometry_types: zv["geometry_types"]
                .as_array()
                .map(|g| {
                    g.iter()
                        .filter_map(|s| s.as_str().map(String::from))
                        .collect()
                })
                .unwrap_or_default(),
            base_bin_shape: floats(&zv["base_bin_shape"]),
            attrs: zv.clone(),
        })
    }

    /// The resolution levels (child groups named by integers), ascending.
    /// Cells per shard of level 0's vertices (coarse levels are written
    /// alike), or None for one file per cell.
    pub fn shard_shape(&self) -> Option<Vec<u64>> {
        CellArray::open_at(&self.loc.join("0").join("vertices"), self.dims)
            .ok()
            .and_then(|a| a.shard.map(|s| s.shape))
    }

    pub fn levels(&self) -> Result<Vec<u64>> {
        let mut out: Vec<u64> = match self.loc.children()? {
            Some(names) => names.iter().filter_map(|n| n.parse().ok()).collect(),
            None => self.levels_unlisted()?,
        };
        out.sort_unstable();
        out.dedup();
        Ok(out)
    }

    /// The levels of a store that cannot be listed: those `multiscales`
    /// names that exist, else 0, 1, 2, … up to the first missing one.
    fn levels_unlisted(&self) -> Result<Vec<u64>> {
        let root = self.loc.json()?;
        if let Some(ds) = root["attributes"]["multiscales"][0]["datasets"].as_array() {
            let named: Vec<u64> = ds
                .iter()
                .filter_map(|d| d["path"].as_str()?.parse().ok())
                .collect();
            if !named.is_empty() {
                return Ok(named);
            }
        }
        let mut out = vec![];
        for l in 0u64..64 {
            if !self.loc.join(&l.to_string()).exists()? {
                break;
            }
            out.push(l);
        }
        Ok(out)
    }

    /// A level's metadata.
    pub fn level(&self, level: u64) -> Result<LevelInfo> {
        let Some(meta) = self.loc.join(&level.to_string()).try_json()? else {
            return Err(Error::invalid(format!(
                "{} has no level {level} (levels: {:?})",
                self.path.display(),
                self.levels()?
            )));
        };
        let lv = &meta["attributes"]["zarr_vectors_level"];
        let chunk_shape = floats(&lv["chunk_shape"])
            .filter(|c| c.len() == self.dims)
            .unwrap_or_else(|| self.chunk_shape.clone());
        Ok(LevelInfo {
            level,
            vertex_count: lv["vertex_count"].as_u64(),
            chunk_shape,
            bin_shape: floats(&lv["bin_shape"]),
            coarsening_method: lv["coarsening_method"].as_str().map(String::from),
            arrays_present: lv["arrays_present"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|s| s.as_str().map(String::from))
                        .collect()
                })
                .unwrap_or_default(),
            attrs: lv.clone(),
        })
    }

    /// The names of a level's vertex attributes: the store's listing, or
    /// where it cannot list (plain HTTP without index pages) the root's
    /// `attribute_specs`; unknown names are an error asking for them.
    pub fn attribute_names(&self, level: u64) -> Result<Vec<String>> {
        let group = self.loc.join(&level.to_string()).join("vertex_attributes");
        if let Some(names) = group.children()? {
            return Ok(names);
        }
        if let Some(specs) = self.attrs["attribute_specs"]["vertex"].as_object() {
            return Ok(specs.keys().cloned().collect());
        }
        if !group.exists()? {
            return Ok(vec![]);
        }
        Err(Error::format(
            &self.path,
            format!(
                "the server cannot list level {level}'s vertex attributes (no index page, no \
                 consolidated metadata, no attribute_specs): name them (--attributes / attribute_names=)"
            ),
        ))
    }

    /// The `vertex_attributes` names to read: `asked`, each checked to
    /// exist, or every one there is.
    fn chosen_attributes(&self, level: u64, asked: Option<&[String]>) -> Result<Vec<String>> {
        let Some(asked) = asked else {
            return self.attribute_names(level);
        };
        // Named ones need no listing. Remotely their metadata read (which
        // the read does anyway) tells whether they exist: no extra request.
        if self.loc.is_remote() {
            return Ok(asked.to_vec());
        }
        let group = self.loc.join(&level.to_string()).join("vertex_attributes");
        for n in asked {
            if !group.join(n).exists()? {
                return Err(self.no_attribute(level, n));
            }
        }
        Ok(asked.to_vec())
    }

    /// "level L has no vertex attribute 'n'; it has: …".
    fn no_attribute(&self, level: u64, n: &str) -> Error {
        let present = self.attribute_names(level).unwrap_or_default();
        Error::format(
            &self.path,
            format!(
                "level {level} has no vertex attribute '{n}'; it has: {}",
                if present.is_empty() {
                    "none".to_string()
                } else {
                    present.join(", ")
                }
            ),
        )
    }

    /// Opens vertex attribute `name` of `level`; a missing one is named as such.
    pub(crate) fn attribute_array(&self, level: u64, name: &str) -> Result<CellArray> {
        let node = self
            .loc
            .join(&level.to_string())
            .join("vertex_attributes")
            .join(name);
        CellArray::open_at(&node, self.dims).map_err(|e| match node.exists() {
            Ok(false) => self.no_attribute(level, name),
            _ => e,
        })
    }

    /// The vertices of `level` — all, or those inside `bbox` (min and max
    /// corners, inclusive, as zarr-vectors) — with the named vertex
    /// attributes (all of them with `None`), chunk by chunk in ascending
    /// chunk order, each chunk's rows in stored order. Only the chunks the
    /// box touches are read.
    pub fn read_points(
        &self,
        level: u64,
        bbox: Option<(&[f64], &[f64])>,
        attributes: Option<&[String]>,
    ) -> Result<Points> {
        let dir = self.loc.join(&level.to_string());
        let d = self.dims;
        let names = self.chosen_attributes(level, attributes)?;
        // The level's, the vertices' and the attributes' metadata at once:
        // remotely each is a round trip.
        let (info, (vertices, opened)) = self.loc.install(|| {
            rayon::join(
                || self.level(level),
                || {
                    rayon::join(
                        || CellArray::open_at(&dir.join("vertices"), d),
                        || {
                            names
                                .par_iter()
                                .map(|n| self.attribute_array(level, n))
                                .collect::<Result<Vec<_>>>()
                        },
                    )
                },
            )
        });
        let (info, vertices, opened) = (info?, vertices?, opened?);
        let dtype = vertices.attrs["dtype"]
            .as_str()
            .unwrap_or("float32")
            .to_string();
        if !matches!(dtype.as_str(), "float32" | "float64") {
            return Err(Error::format(
                vertices.path.join("zarr.json"),
                format!("vertex dtype {dtype} is not float32 or float64"),
            ));
        }
        let attrs: Vec<(String, CellArray, String, usize)> = names
            .iter()
            .zip(opened)
            .map(|(name, a)| {
                let meta = a.path.join("zarr.json");
                if a.attrs.get("categories").is_some() {
                    return Err(Error::format(
                        &meta,
                        "dictionary-encoded (string) attributes are not read yet",
                    ));
                }
                let dt = a.attrs["dtype"].as_str().unwrap_or("float32").to_string();
                if itemsize(&dt).is_none() {
                    return Err(Error::format(
                        &meta,
                        format!("attribute dtype {dt} is not numeric"),
                    ));
                }
                let width = a.attrs["row_shape"]
                    .as_array()
                    .map(|r| r.iter().filter_map(Value::as_u64).product::<u64>() as usize)
                    .unwrap_or(1)
                    .max(1);
                Ok((name.clone(), a, dt, width))
            })
            .collect::<Result<_>>()?;
        let mut chunks = vertices.nonempty.clone();
        if let Some((lo, hi)) = bbox {
            if lo.len() != d || hi.len() != d {
                return Err(Error::invalid(format!(
                    "a bounding box needs {d} coordinates per corner"
                )));
            }
            if let Some(a) = (0..d).find(|&a| lo[a].is_nan() || hi[a].is_nan() || lo[a] > hi[a]) {
                return Err(Error::invalid(format!(
                    "bounding box axis {a}: min {} must not exceed max {} (and neither may be NaN)",
                    lo[a], hi[a]
                )));
            }
            let cs = &info.chunk_shape;
            chunks.retain(|c| {
                (0..d).all(|a| {
                    (c[a] as f64) >= (lo[a] / cs[a]).floor()
                        && (c[a] as f64) <= (hi[a] / cs[a]).floor()
                })
            });
        }
        chunks.sort();
        chunks.dedup();
        let vsize = itemsize(&dtype).expect("float dtype") * d;
        // Every (chunk, array) cell at once — remotely each is a round trip.
        let arrays: Vec<&CellArray> = std::iter::once(&vertices)
            .chain(attrs.iter().map(|a| &a.1))
            .collect();
        let na = arrays.len();
        let mut cells: Vec<Vec<u8>> = self.loc.install(|| {
            (0..chunks.len() * na)
                .into_par_iter()
                .map(|t| arrays[t % na].read(&chunks[t / na]))
                .collect::<Result<_>>()
        })?;
        let per_chunk: Vec<(Vec<u8>, Vec<Vec<u8>>)> = chunks
            .par_iter()
            .zip(cells.par_chunks_mut(na))
            .map(|(c, got)| -> Result<(Vec<u8>, Vec<Vec<u8>>)> {
                let v = std::mem::take(&mut got[0]);
                if v.len() % vsize != 0 {
                    return Err(Error::format(
                        &vertices.path,
                        format!("chunk {c:?} holds {} bytes, not whole rows of {vsize}", v.len()),
                    ));
                }
                let rows = v.len() / vsize;
                let mut cols = vec![];
                for ((name, a, dt, width), b) in attrs.iter().zip(&mut got[1..]) {
                    let b = std::mem::take(b);
                    let want = rows * width * itemsize(dt).expect("checked");
                    if b.len() != want {
                        return Err(Error::format(
                            &a.path,
                            format!("attribute {name}, chunk {c:?}: {} bytes for {rows} vertices (want {want})", b.len()),
                        ));
                    }
                    cols.push(b);
                }
                // Keep the rows inside the box (inclusive, as zarr-vectors filters).
                if let Some((lo, hi)) = bbox {
                    let keep: Vec<usize> = (0..rows)
                        .filter(|&r| (0..d).all(|a| {
                            let x = value(&v, &dtype, r * d + a);
                            x >= lo[a] && x <= hi[a]
                        }))
                        .collect();
                    let pick = |b: &[u8], row: usize| -> Vec<u8> {
                        keep.iter().flat_map(|&r| b[r * row..(r + 1) * row].to_vec()).collect()
                    };
                    let cols = cols
                        .iter()
                        .zip(&attrs)
                        .map(|(b, (_, _, dt, w))| pick(b, w * itemsize(dt).expect("checked")))
                        .collect();
                    return Ok((pick(&v, vsize), cols));
                }
                Ok((v, cols))
            })
            .collect::<Result<_>>()?;
        let mut positions = Column {
            name: "positions".into(),
            dtype: dtype.clone(),
            width: d,
            bytes: vec![],
        };
        let mut columns: Vec<Column> = attrs
            .iter()
            .map(|(name, _, dt, w)| Column {
                name: name.clone(),
                dtype: dt.clone(),
                width: *w,
                bytes: vec![],
            })
            .collect();
        for (v, cols) in per_chunk {
            positions.bytes.extend(v);
            for (c, b) in columns.iter_mut().zip(cols) {
                c.bytes.extend(b);
            }
        }
        Ok(Points {
            positions,
            attributes: columns,
        })
    }
}

impl Store {
    /// Refuses a write to a remote store, naming the operation.
    pub fn local_only(&self, what: &str) -> Result<()> {
        match self.loc.is_remote() {
            true => Err(Error::invalid(format!(
                "{}: {what} needs a local store (remote stores are read-only here)",
                self.path.display()
            ))),
            false => Ok(()),
        }
    }

    /// Removes a coarse level, as zarr-vectors' `remove_resolution_level`:
    /// level 0 stays; the group goes (renamed aside first, so a crash never
    /// leaves half a level under its name), and the root's `multiscales`
    /// datasets and `ome` nodes forget it.
    pub fn remove_level(&self, level: u64) -> Result<()> {
        if level == 0 {
            return Err(Error::invalid(
                "level 0 (full resolution) cannot be removed",
            ));
        }
        self.level(level)?;
        self.local_only("removing a level")?;
        let dir = self.path.join(level.to_string());
        let aside = self
            .path
            .join(format!(".{level}.removing-{}", std::process::id()));
        std::fs::rename(&dir, &aside).map_err(|e| Error::io(&dir, e))?;
        let root_path = self.path.join("zarr.json");
        let mut root = read_json(&self.path)?;
        let name = level.to_string();
        if let Some(ds) = root["attributes"]["multiscales"][0]["datasets"].as_array_mut() {
            ds.retain(|d| d["path"].as_str() != Some(&name));
        }
        if let Some(nodes) = root["attributes"]["ome"]["nodes"].as_array_mut() {
            nodes.retain(|n| n["name"].as_str() != Some(&name));
        }
        let tmp = self.path.join("zarr.json.partial");
        let text = serde_json::to_string_pretty(&root).expect("JSON values serialise");
        std::fs::write(&tmp, text).map_err(|e| Error::io(&tmp, e))?;
        std::fs::rename(&tmp, &root_path).map_err(|e| Error::io(&root_path, e))?;
        std::fs::remove_dir_all(&aside).map_err(|e| Error::io(&aside, e))
    }
}
