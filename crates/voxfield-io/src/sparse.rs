//! Sparse volumes: PyData `sparse` COO archives (`sparse.save_npz`) and
//! (N,3)-coordinates + (N,)-values `.npy` pairs. Never densified: the non-zeros go
//! into a hash map (one pass, built on first use) and lookups are O(1); every
//! other voxel is the fill value.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use voxfield_core::{
    check_chunk, DType, Endian, Error, Result, SparseVoxels, VolumeInfo, VolumeSource,
};

use rayon::prelude::*;

use crate::npy::{parse_array, split_array};
use crate::npz::Npz;

/// A multiply-shift hasher for u64 keys (linear voxel indices): fast and good
/// enough for keys that are not adversarial.
#[derive(Default)]
pub struct IndexHasher(u64);
impl Hasher for IndexHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 ^ b as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }
    fn write_u64(&mut self, v: u64) {
        let x = v.wrapping_mul(0x9E37_79B9_7F4A_7C15);
        self.0 = x ^ (x >> 29);
    }
}

type Map = HashMap<u64, f64, BuildHasherDefault<IndexHasher>>;

/// Where the non-zeros come from.
enum Origin {
    Npz(PathBuf),
    Pair { coords: PathBuf, values: PathBuf },
}

pub struct SparseVolume {
    info: VolumeInfo,
    fill: f64,
    origin: Origin,
    map: OnceLock<std::result::Result<Shards, String>>,
}

/// The non-zeros, split by key into shards built in parallel.
struct Shards {
    maps: Vec<Map>,
}

impl Shards {
    /// Each worker fills its own shard from one pass over the keys.
    fn build(keys: &[u64], values: &[f64]) -> Self {
        let nshards = (rayon::current_num_threads() * 2).next_power_of_two();
        let maps = (0..nshards)
            .into_par_iter()
            .map(|s| {
                let mut m =
                    Map::with_capacity_and_hasher(keys.len() / nshards + 16, Default::default());
                for (k, v) in keys.iter().zip(values) {
                    if (*k as usize) & (nshards - 1) == s {
                        *m.entry(*k).or_insert(0.0) += v;
                    }
                }
                m
            })
            .collect();
        Shards { maps }
    }

    #[inline]
    fn get(&self, key: u64) -> Option<f64> {
        self.maps[(key as usize) & (self.maps.len() - 1)]
            .get(&key)
            .copied()
    }
    fn len(&self) -> usize {
        self.maps.iter().map(|m| m.len()).sum()
    }
}

/// Element `e` of an integer array's raw bytes.
fn int_at(raw: &[u8], e: usize, dtype: DType, endian: Endian) -> i64 {
    let n = dtype.size();
    let v = voxfield_core::voxel::read_f64(&raw[e * n..e * n + n], dtype, endian);
    // Integers up to 2^53 are exact in f64, far beyond any volume's shape.
    v as i64
}

/// Chunk edge used when a sparse volume is read chunk by chunk (convert, read_box).
const BRICK: usize = 32;

impl SparseVolume {
    /// Opens a `sparse.save_npz` archive: reads its shape and fill value only.
    pub fn open_npz(path: &Path) -> Result<Self> {
        let npz = Npz::open(path)?;
        let names = npz.names();
        for need in ["coords.npy", "data.npy", "shape.npy"] {
            if !names.contains(&need) {
                return Err(Error::format(
                    path,
                    format!("not a sparse COO archive (as written by sparse.save_npz): no '{need}' (members: {})", names.join(", ")),
                ));
            }
        }
        if names.contains(&"format.npy") {
            let f = npz.read("format.npy")?;
            let utf32_coo: Vec<u8> = "coo"
                .chars()
                .flat_map(|c| (c as u32).to_le_bytes())
                .collect();
            if !f
                .windows(utf32_coo.len())
                .any(|w| w == utf32_coo.as_slice())
                && !f.windows(3).any(|w| w == b"coo")
            {
                return Err(Error::format(
                    path,
                    "sparse archive is not in COO format (only 'coo' is supported)",
                ));
            }
        }
        let shape = parse_array(&npz.read("shape.npy")?)
            .map_err(|m| Error::format(path, format!("shape.npy: {m}")))?;
        let fill = match names.contains(&"fill_value.npy") {
            true => parse_array(&npz.read("fill_value.npy")?)
                .map_err(|m| Error::format(path, format!("fill_value.npy: {m}")))?
                .data
                .first()
                .copied()
                .unwrap_or(0.0),
            false => 0.0,
        };
        let head = npz.read_prefix("data.npy", 4096)?;
        let dtype = crate::npy::parse_header_bytes(&head)
            .map_err(|m| Error::format(path, format!("data.npy: {m}")))?
            .dtype;
        let shape: Vec<usize> = shape.data.iter().map(|&v| v as usize).collect();
        Self::new(path, &shape, dtype, fill, Origin::Npz(path.to_path_buf()))
    }

    /// An (N,3) integer coordinates `.npy` and an (N,) values `.npy`, in a volume of `shape`.
    pub fn open_pair(coords: &Path, values: &Path, shape: [usize; 3], fill: f64) -> Result<Self> {
        let dtype = crate::npy::read_header(values)?.dtype;
        Self::new(
            coords,
            &shape,
            dtype,
            fill,
            Origin::Pair {
                coords: coords.into(),
                values: values.into(),
            },
        )
    }

    fn new(path: &Path, shape: &[usize], dtype: DType, fill: f64, origin: Origin) -> Result<Self> {
        let shape3 = voxfield_core::volume_shape(path, shape)?;
        let chunk = shape3.map(|n| n.min(BRICK));
        let info = VolumeInfo {
            format: "sparse",
            path: path.to_path_buf(),
            shape: shape3,
            dtype,
            endian: Endian::NATIVE,
            chunk_shape: chunk,
            affine: None,
            bytes_on_disk: std::fs::metadata(path).map(|m| m.len()).unwrap_or(0),
            value_scale: None,
            notes: vec![],
            axes: voxfield_core::Axes::plain(shape3),
        };
        Ok(Self {
            info,
            fill,
            origin,
            map: OnceLock::new(),
        })
    }

    /// A sparse volume from coordinates already in memory (`coords` holds the three
    /// rows of a (3, nnz) array, as PyData sparse keeps them): indexed at once, in
    /// one parallel pass; the caller's arrays are not kept.
    pub fn from_memory(
        coords: [&[i64]; 3],
        values: &[f64],
        shape: [usize; 3],
        dtype: DType,
        fill: f64,
    ) -> Result<Self> {
        let path = Path::new("<sparse array>");
        let n = values.len();
        if coords.iter().any(|c| c.len() != n) {
            return Err(Error::invalid(format!(
                "sparse coordinates and {n} values differ in length"
            )));
        }
        let v = Self::new(path, &shape, dtype, fill, Origin::Npz(path.to_path_buf()))?;
        let keys = v
            .keys(n, &|i| [coords[0][i], coords[1][i], coords[2][i]])
            .map_err(Error::invalid)?;
        let _ = v.map.set(Ok(Shards::build(&keys, values)));
        Ok(v)
    }

    pub fn fill_value(&self) -> f64 {
        self.fill
    }

    /// Reads the non-zeros once and indexes them (duplicates are summed, as COO
    /// does): keys are computed in parallel, then each worker fills its own shard.
    fn build(&self) -> std::result::Result<Shards, String> {
        let (keys, values) = match &self.origin {
            Origin::Npz(p) => {
                let npz = Npz::open(p).map_err(|e| e.to_string())?;
                let (cb, vb) = rayon::join(|| npz.read("coords.npy"), || npz.read("data.npy"));
                let (cb, vb) = (
                    cb.map_err(|e| e.to_string())?,
                    vb.map_err(|e| e.to_string())?,
                );
                let values = parse_array(&vb).map_err(|m| format!("data.npy: {m}"))?.data;
                let (h, raw) = split_array(&cb).map_err(|m| format!("coords.npy: {m}"))?;
                let nnz = values.len();
                if h.shape != [3, nnz] || h.dtype.is_float() {
                    return Err(format!(
                        "coords.npy has shape {:?} {}, expected (3, {nnz}) integers",
                        h.shape, h.dtype
                    ));
                }
                // sparse stores coords as (ndim, nnz), in C order unless Fortran.
                let at = |axis: usize, i: usize| -> i64 {
                    let e = if h.fortran_order {
                        i * 3 + axis
                    } else {
                        axis * nnz + i
                    };
                    int_at(raw, e, h.dtype, h.endian)
                };
                (self.keys(nnz, &|i| [at(0, i), at(1, i), at(2, i)])?, values)
            }
            Origin::Pair { coords, values } => {
                let cb = std::fs::read(coords).map_err(|e| format!("{}: {e}", coords.display()))?;
                let (h, raw) =
                    split_array(&cb).map_err(|m| format!("{}: {m}", coords.display()))?;
                if h.shape.len() != 2 || h.shape[1] != 3 || h.dtype.is_float() || h.fortran_order {
                    return Err(format!(
                        "{}: coordinates must be a C-order (N, 3) integer array, got {:?} {}",
                        coords.display(),
                        h.shape,
                        h.dtype
                    ));
                }
                let v = crate::npy::read_array(values).map_err(|e| e.to_string())?;
                if v.data.len() != h.shape[0] {
                    return Err(format!(
                        "{} has {} values for {} coordinates",
                        values.display(),
                        v.data.len(),
                        h.shape[0]
                    ));
                }
                let at = |i: usize| [0, 1, 2].map(|a| int_at(raw, 3 * i + a, h.dtype, h.endian));
                (self.keys(h.shape[0], &at)?, v.data)
            }
        };
        Ok(Shards::build(&keys, &values))
    }

    /// Linear indices of the entries, checked against the shape.
    fn keys(
        &self,
        n: usize,
        coord: &(dyn Fn(usize) -> [i64; 3] + Sync),
    ) -> std::result::Result<Vec<u64>, String> {
        let s = self.info.shape;
        (0..n)
            .into_par_iter()
            .map(|i| {
                let c = coord(i);
                if (0..3).any(|a| c[a] < 0 || c[a] as u64 >= s[a] as u64) {
                    return Err(format!(
                        "entry {i}: coordinate ({}, {}, {}) is outside the shape {s:?}",
                        c[0], c[1], c[2]
                    ));
                }
                Ok((c[0] as u64 * s[1] as u64 + c[1] as u64) * s[2] as u64 + c[2] as u64)
            })
            .collect()
    }

    fn map(&self) -> Result<&Shards> {
        self.map
            .get_or_init(|| self.build())
            .as_ref()
            .map_err(|m| Error::format(&self.info.path, m.clone()))
    }

    #[inline]
    fn lookup(map: &Shards, shape: [usize; 3], idx: [usize; 3], fill: f64) -> f64 {
        let key =
            ((idx[0] as u64) * shape[1] as u64 + idx[1] as u64) * shape[2] as u64 + idx[2] as u64;
        map.get(key).unwrap_or(fill)
    }
}

struct Lookup<'a> {
    map: &'a Shards,
    shape: [usize; 3],
    fill: f64,
}

impl SparseVoxels for Lookup<'_> {
    fn get(&self, idx: [usize; 3]) -> f64 {
        SparseVolume::lookup(self.map, self.shape, idx, self.fill)
    }
    fn len(&self) -> usize {
        self.map.len()
    }
}

impl VolumeSource for SparseVolume {
    fn info(&self) -> &VolumeInfo {
        &self.info
    }

    fn sparse(&self) -> Option<Result<Box<dyn SparseVoxels + '_>>> {
        Some(self.map().map(|map| {
            Box::new(Lookup {
                map,
                shape: self.info.shape,
                fill: self.fill,
            }) as Box<dyn SparseVoxels>
        }))
    }

    fn read_chunk(&self, idx: [usize; 3], out: &mut [u8]) -> Result<()> {
        check_chunk(&self.info, idx, out.len())?;
        let map = self.map()?;
        let cs = self.info.chunk_shape;
        let size = self.info.dtype.size();
        let mut n = 0;
        for i in 0..cs[0] {
            for j in 0..cs[1] {
                for k in 0..cs[2] {
                    let g = [idx[0] * cs[0] + i, idx[1] * cs[1] + j, idx[2] * cs[2] + k];
                    let v = if (0..3).all(|a| g[a] < self.info.shape[a]) {
                        Self::lookup(map, self.info.shape, g, self.fill)
                    } else {
                        self.fill
                    };
                    write_native(self.info.dtype, v, &mut out[n..n + size]);
                    n += size;
                }
            }
        }
        Ok(())
    }
}

/// Stores `v` as one native-endian element of `dtype`.
fn write_native(dtype: DType, v: f64, out: &mut [u8]) {
    match dtype {
        DType::Bool => out[0] = (v != 0.0) as u8,
        DType::U8 => out[0] = v as u8,
        DType::I8 => out[0] = v as i8 as u8,
        DType::U16 => out.copy_from_slice(&(v as u16).to_ne_bytes()),
        DType::I16 => out.copy_from_slice(&(v as i16).to_ne_bytes()),
        DType::U32 => out.copy_from_slice(&(v as u32).to_ne_bytes()),
        DType::I32 => out.copy_from_slice(&(v as i32).to_ne_bytes()),
        DType::U64 => out.copy_from_slice(&(v as u64).to_ne_bytes()),
        DType::I64 => out.copy_from_slice(&(v as i64).to_ne_bytes()),
        DType::F32 => out.copy_from_slice(&(v as f32).to_ne_bytes()),
        DType::F64 => out.copy_from_slice(&v.to_ne_bytes()),
    }
}
