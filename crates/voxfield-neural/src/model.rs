//! A trained model of one volume: the network, the value range it was normalised
//! by, and what it came from; the `.vxn` file; the model as a field in the
//! source's voxel index space.
//!
//! ```text
//! \x89VXN\r\n\x1a\n | u32 version | u64 header length | header JSON | parameters | u32 CRC-32
//! ```
//!
//! Parameters are all f16 (little-endian, tables then MLP) when the header's
//! `storage` is `"f16"` (version 1 files always); with quantised tables
//! (`storage.tables == "quantised"`, version 2) they are the MLP's f16 weights
//! followed by the coded table codes (see [`crate::quant`]): zstd in version
//! 2, context-adaptive range coding from version 3.

use std::io::Write;
use std::path::Path;

use serde_json::{json, Value};
use voxfield_core::{Affine, Axes, DType, Endian, Error, Field, Result, VolumeInfo, VolumeSource};

use crate::quant::Coder;
use crate::{HashGridConfig, Net, Quant};

pub const MAGIC: [u8; 8] = *b"\x89VXN\r\n\x1a\n";
pub const VERSION: u32 = 3;

/// A volume's network and the facts needed to decode it.
#[derive(Clone, Debug)]
pub struct NeuralModel {
    pub net: Net,
    /// Source shape (the 3-D view) and element type name.
    pub shape: [usize; 3],
    pub dtype: String,
    /// Values are `lo + (hi − lo)·net(x)`.
    pub lo: f64,
    pub hi: f64,
    pub affine: Option<Affine>,
    /// Training record: epochs, seconds, final PSNR, samples.
    pub record: Value,
    pub width: usize,
    pub hidden: usize,
    /// How the tables are stored: quantised (and the in-memory tables already
    /// on its grid, so a loaded model equals the saved one), or f16.
    pub quant: Option<Quant>,
}

/// f32 → IEEE half, round to nearest even (finite values; the parameters are small).
pub fn f16_bits(x: f32) -> u16 {
    let b = x.to_bits();
    let sign = ((b >> 16) & 0x8000) as u16;
    let exp = ((b >> 23) & 0xff) as i32 - 127 + 15;
    let man = b & 0x7f_ffff;
    if exp >= 31 {
        return sign | 0x7c00; // overflow to infinity
    }
    if exp <= 0 {
        if exp < -10 {
            return sign;
        }
        let m = man | 0x80_0000;
        let shift = (14 - exp) as u32;
        let half = 1 << (shift - 1);
        let mut v = m >> shift;
        let rest = m & ((1 << shift) - 1);
        if rest > half || (rest == half && v & 1 == 1) {
            v += 1;
        }
        return sign | v as u16;
    }
    let mut v = ((exp as u32) << 10) | (man >> 13);
    let rest = man & 0x1fff;
    if rest > 0x1000 || (rest == 0x1000 && v & 1 == 1) {
        v += 1; // may carry into the exponent, which is the right rounding
    }
    sign | v as u16
}

/// IEEE half → f32.
pub fn f16_value(h: u16) -> f32 {
    let sign = if h & 0x8000 != 0 { -1.0 } else { 1.0 };
    let exp = ((h >> 10) & 0x1f) as i32;
    let man = (h & 0x3ff) as f32;
    sign * match exp {
        0 => man * (2.0f32).powi(-24),
        31 => f32::INFINITY,
        e => (1.0 + man / 1024.0) * (2.0f32).powi(e - 15),
    }
}

impl NeuralModel {
    /// The network's input for index-space position `p`: [0,1]³, or None
    /// outside the volume or for NaN input.
    fn unit(&self, p: &[f64; 3]) -> Option<[f32; 3]> {
        let mut x = [0f32; 3];
        for a in 0..3 {
            let n = self.shape[a];
            if !(p[a] >= 0.0 && p[a] <= (n - 1) as f64) {
                return None;
            }
            x[a] = if n > 1 {
                (p[a] / (n - 1) as f64) as f32
            } else {
                0.0
            };
        }
        Some(x)
    }

    /// The value at index-space position `p` (NaN outside the volume or for NaN input).
    pub fn value(&self, p: &[f64; 3]) -> f64 {
        match self.unit(p) {
            Some(x) => self.lo + (self.hi - self.lo) * self.net.predict(&x) as f64,
            None => f64::NAN,
        }
    }

    /// Values of the voxels (i, j, k) for k in `ks` (in the volume), through
    /// the row-coherent encoding: what whole-grid decoding uses.
    pub fn row(&self, i: usize, j: usize, ks: std::ops::Range<usize>) -> Vec<f64> {
        let unit = |g: usize, a: usize| {
            if self.shape[a] > 1 {
                (g as f64 / (self.shape[a] - 1) as f64) as f32
            } else {
                0.0
            }
        };
        let zs: Vec<f32> = ks.map(|k| unit(k, 2)).collect();
        let mut ys = vec![0f32; zs.len()];
        self.net.predict_row(unit(i, 0), unit(j, 1), &zs, &mut ys);
        ys.iter()
            .map(|&y| self.lo + (self.hi - self.lo) * y as f64)
            .collect()
    }

    /// Values at many index-space positions (as `value`, batched through the
    /// MLP; one thread).
    pub fn values(&self, points: &[[f64; 3]], out: &mut [f64]) {
        let units: Vec<Option<[f32; 3]>> = points.iter().map(|p| self.unit(p)).collect();
        let xs: Vec<[f32; 3]> = units.iter().map(|u| u.unwrap_or([0.0; 3])).collect();
        let mut ys = vec![0f32; xs.len()];
        self.net.predict_many(&xs, &mut ys);
        for ((o, y), u) in out.iter_mut().zip(ys).zip(&units) {
            *o = match u {
                Some(_) => self.lo + (self.hi - self.lo) * y as f64,
                None => f64::NAN,
            };
        }
    }

    fn header(&self, table_bytes: usize) -> Value {
        let c = &self.net.grid.cfg;
        let storage = match &self.quant {
            None => json!("f16"),
            Some(q) => {
                let codes = match q.coder {
                    Coder::Zstd => "i8 + 128",
                    Coder::Range => "i8 in ±127",
                };
                json!({"tables": "quantised", "step": q.step, "codes": codes,
                       "table_bytes": table_bytes, "mlp": "f16", "coder": q.coder.name()})
            }
        };
        json!({
            "shape": self.shape, "dtype": self.dtype, "lo": self.lo, "hi": self.hi,
            "affine": self.affine.map(|a| a.rows()),
            "encoding": {"levels": c.levels, "features": c.features, "log2_table": c.log2_table,
                         "base": c.base, "per_level_scale": c.per_level_scale},
            "mlp": {"width": self.width, "hidden": self.hidden},
            "params": self.net.n_params(), "storage": storage,
            "training": self.record,
        })
    }

    /// The whole file's bytes (what `save` writes).
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        let f16 = |ps: &[f32], out: &mut Vec<u8>| {
            for &p in ps {
                out.extend_from_slice(&f16_bits(p).to_le_bytes());
            }
        };
        let mut params = vec![];
        let (tables, mlp) = self.net.params.split_at(self.net.grid.n_params);
        let table_bytes = match &self.quant {
            None => {
                f16(tables, &mut params);
                f16(mlp, &mut params);
                0
            }
            Some(q) => {
                f16(mlp, &mut params);
                let z = q.encode(&self.net);
                params.extend_from_slice(&z);
                z.len()
            }
        };
        let header = serde_json::to_vec(&self.header(table_bytes))
            .map_err(|e| Error::invalid(e.to_string()))?;
        let mut body = Vec::with_capacity(24 + header.len() + params.len());
        body.extend_from_slice(&MAGIC);
        body.extend_from_slice(&VERSION.to_le_bytes());
        body.extend_from_slice(&(header.len() as u64).to_le_bytes());
        body.extend_from_slice(&header);
        body.extend_from_slice(&params);
        let crc = crc32fast::hash(&body);
        body.extend_from_slice(&crc.to_le_bytes());
        Ok(body)
    }

    /// Writes the model atomically.
    pub fn save(&self, path: &Path) -> Result<()> {
        let bytes = self.to_bytes()?;
        voxfield_io::npy::write_atomic(path, |w| w.write_all(&bytes))
    }

    /// The header only (for `info`), after checking the whole file's checksum.
    pub fn read_header(path: &Path) -> Result<Value> {
        let bytes = read_checked(path)?;
        let (h, _, _) = parse_header(path, &bytes)?;
        Ok(h)
    }

    /// Reads a model written by `save`, checking magic, version, checksum and sizes.
    pub fn load(path: &Path) -> Result<Self> {
        let bytes = read_checked(path)?;
        let bad = |m: String| Error::format(path, m);
        let (h, at, version) = parse_header(path, &bytes)?;
        let e = &h["encoding"];
        // Every number is checked as read: a forged header must not saturate
        // or overflow into a different, plausible-looking model.
        let num = |v: &Value, k: &str| {
            v[k].as_f64().filter(|x| x.is_finite()).ok_or_else(|| {
                bad(format!(
                    "header field '{k}' is missing or not a finite number"
                ))
            })
        };
        let int = |v: &Value, k: &str, max: u64| {
            v[k].as_u64()
                .filter(|&x| (1..=max).contains(&x))
                .ok_or_else(|| {
                    bad(format!(
                        "header field '{k}' must be an integer from 1 to {max}"
                    ))
                })
        };
        let cfg = HashGridConfig {
            levels: int(e, "levels", 64)? as usize,
            features: int(e, "features", 64)? as usize,
            log2_table: int(e, "log2_table", 32)? as u32,
            base: int(e, "base", 1 << 24)? as u32,
            per_level_scale: num(e, "per_level_scale")?,
        };
        if !(1.0..=64.0).contains(&cfg.per_level_scale) {
            return Err(bad(format!(
                "header field 'per_level_scale' {} must lie in [1, 64]",
                cfg.per_level_scale
            )));
        }
        let (width, hidden) = (
            int(&h["mlp"], "width", 1 << 16)? as usize,
            int(&h["mlp"], "hidden", 64)? as usize,
        );
        let n = crate::net::checked_params(&cfg, width, hidden)
            .map_err(|m| bad(format!("header describes an implausible network: {m}")))?;
        let params = &bytes[at..bytes.len() - 4];
        let mut net = Net::new(cfg, width, hidden, 0);
        let quant = match &h["storage"] {
            Value::String(s) if s == "f16" => None,
            Value::Null => None,
            st if st["tables"] == "quantised" && version < 2 => {
                return Err(bad(format!(
                    "a version-{version} model cannot hold quantised tables (version 2 added them)"
                )))
            }
            st if st["tables"] == "quantised" => Some(Quant {
                step: st["step"]
                    .as_f64()
                    .filter(|s| *s >= f32::MIN_POSITIVE as f64 && *s <= f32::MAX as f64)
                    .ok_or_else(|| bad("storage 'step' must be a positive normal float32".into()))?
                    as f32,
                coder: match (version, st["coder"].as_str()) {
                    (2, Some("zstd") | None) => Coder::Zstd,
                    (3.., Some("range")) => Coder::Range,
                    (v, c) => {
                        return Err(bad(format!(
                            "storage 'coder' {c:?} is not one a version-{v} model uses"
                        )))
                    }
                },
            }),
            st => return Err(bad(format!("unknown parameter storage {st}"))),
        };
        let n_mlp = net.n_params() - net.grid.n_params;
        let expected = match &quant {
            None => 2 * n,
            Some(_) => 2 * n_mlp + h["storage"]["table_bytes"].as_u64().unwrap_or(0) as usize,
        };
        if params.len() != expected {
            return Err(bad(format!(
                "holds {} parameter bytes, the header's network needs {expected}",
                params.len(),
            )));
        }
        let f16 = |out: &mut [f32], b: &[u8]| {
            for (p, b) in out.iter_mut().zip(b.chunks_exact(2)) {
                *p = f16_value(u16::from_le_bytes([b[0], b[1]]));
            }
        };
        let split = net.grid.n_params;
        let quant = match &quant {
            None => {
                f16(&mut net.params, params);
                None
            }
            Some(q) => {
                f16(&mut net.params[split..], &params[..2 * n_mlp]);
                q.decode(&mut net, &params[2 * n_mlp..]).map_err(bad)?;
                Some(q.clone())
            }
        };
        let shape: Option<Vec<usize>> = h["shape"].as_array().and_then(|a| {
            a.iter()
                .map(|v| {
                    v.as_u64()
                        .filter(|&n| (1..=MAX_AXIS).contains(&n))
                        .map(|n| n as usize)
                })
                .collect()
        });
        let shape: [usize; 3] = shape.and_then(|s| s.try_into().ok()).ok_or_else(|| {
            bad(format!(
                "header 'shape' is not three lengths from 1 to {MAX_AXIS}"
            ))
        })?;
        let dtype = h["dtype"]
            .as_str()
            .filter(|d| d.parse::<DType>().is_ok())
            .ok_or_else(|| {
                bad(format!(
                    "header 'dtype' {} is not a known dtype",
                    h["dtype"]
                ))
            })?
            .to_string();
        let (lo, hi) = (num(&h, "lo")?, num(&h, "hi")?);
        let (min, max) = representable(dtype.parse().expect("checked above"));
        // Decoded values may overshoot the range a little: it must stay finite
        // (and inside the dtype) with room to spare.
        if !(lo <= hi && min <= lo && hi <= max && ((hi - lo) * 4.0).is_finite()) {
            return Err(bad(format!(
                "header value range [{lo}, {hi}] is not a finite range of {dtype} values"
            )));
        }
        let affine = match h["affine"].as_array() {
            None => None,
            Some(_) => {
                let rows: [[f64; 4]; 4] = serde_json::from_value(h["affine"].clone())
                    .map_err(|_| bad("header 'affine' is not a 4×4 matrix".into()))?;
                Some(Affine::from_rows(rows).map_err(|e| bad(e.to_string()))?)
            }
        };
        Ok(NeuralModel {
            net,
            shape,
            dtype,
            lo,
            hi,
            affine,
            record: h["training"].clone(),
            width,
            hidden,
            quant,
        })
    }
}

fn read_checked(path: &Path) -> Result<Vec<u8>> {
    voxfield_io::safety::regular_input(path)?;
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    if bytes.len() < 24 || !bytes.starts_with(&MAGIC) {
        return Err(Error::format(
            path,
            "not a voxfield neural model (.vxn magic missing)",
        ));
    }
    let (body, tail) = bytes.split_at(bytes.len() - 4);
    if crc32fast::hash(body) != u32::from_le_bytes(tail.try_into().expect("4 bytes")) {
        return Err(Error::format(
            path,
            "checksum mismatch: the model file is corrupt or truncated",
        ));
    }
    Ok(bytes)
}

/// The values `dtype` holds (floats: finite, with room for decoding's
/// overshoot in f64).
fn representable(dtype: DType) -> (f64, f64) {
    dtype.int_range().unwrap_or(match dtype {
        DType::F32 => (f32::MIN as f64, f32::MAX as f64),
        _ => (f64::MIN / 8.0, f64::MAX / 8.0),
    })
}

/// The longest axis a model header may give (2^31 voxels).
const MAX_AXIS: u64 = 1 << 31;

/// The header JSON, where the parameters start, and the format version.
fn parse_header(path: &Path, b: &[u8]) -> Result<(Value, usize, u32)> {
    let version = u32::from_le_bytes(b[8..12].try_into().expect("4 bytes"));
    if !(1..=VERSION).contains(&version) {
        return Err(Error::format(
            path,
            format!("model format version {version}; this voxfield reads 1 to {VERSION}"),
        ));
    }
    let len = u64::from_le_bytes(b[12..20].try_into().expect("8 bytes")) as usize;
    let end = 20usize
        .checked_add(len)
        .filter(|&e| e <= b.len() - 4)
        .ok_or_else(|| Error::format(path, "header length runs past the end of the file"))?;
    let h = serde_json::from_slice(&b[20..end])
        .map_err(|e| Error::format(path, format!("bad model header: {e}")))?;
    Ok((h, end, version))
}

/// A model as a field over the source's voxel index space (or world space
/// through `to_index`, the inverse of the source's affine).
pub struct NeuralField<'a> {
    pub model: &'a NeuralModel,
    pub to_index: Option<Affine>,
}

impl Field for NeuralField<'_> {
    fn sample_block(&self, points: &[[f64; 3]], out: &mut [f64]) -> Result<()> {
        use rayon::prelude::*;
        points
            .par_chunks(1024)
            .zip(out.par_chunks_mut(1024))
            .for_each(|(p, o)| {
                let index: Vec<[f64; 3]> = match &self.to_index {
                    Some(a) => p.iter().map(|q| a.apply(*q)).collect(),
                    None => p.to_vec(),
                };
                self.model.values(&index, o);
            });
        Ok(())
    }

    fn batch_hint(&self) -> usize {
        usize::MAX
    }
}

/// A model seen as a volume of its decoded voxels (the source's shape and
/// dtype, rounded and clipped for integers), decoded chunk by chunk on demand:
/// every verb that reads volumes (`convert`, `info`, `compare`) reads models too.
pub struct NeuralVolume {
    pub model: NeuralModel,
    info: VolumeInfo,
}

impl NeuralVolume {
    pub fn new(model: NeuralModel, path: &Path) -> Result<Self> {
        let dtype: DType = model.dtype.parse()?;
        let shape = model.shape;
        let mut info = VolumeInfo::selected(
            "vxn",
            path,
            Axes::plain(shape),
            &shape.map(|n| n.min(32)),
            dtype,
            Endian::NATIVE,
        );
        info.affine = model.affine;
        info.bytes_on_disk = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
        info.check_sizes()?;
        Ok(NeuralVolume { model, info })
    }

    /// The same voxels stored as `dtype` (e.g. `f32` to keep what the network
    /// says between integer levels).
    pub fn with_dtype(mut self, dtype: DType) -> Self {
        self.info.dtype = dtype;
        self
    }
}

impl VolumeSource for NeuralVolume {
    fn info(&self) -> &VolumeInfo {
        &self.info
    }
    /// A model's field is its network evaluated directly; its voxels (below)
    /// are what `convert`, `compare` and `decompress` read.
    fn model_kind(&self) -> Option<&'static str> {
        Some("neural model")
    }
    fn model_field(&self, to_index: Option<Affine>) -> Option<Box<dyn Field + '_>> {
        Some(Box::new(NeuralField {
            model: &self.model,
            to_index,
        }))
    }
    fn read_chunk(&self, idx: [usize; 3], out: &mut [u8]) -> Result<()> {
        voxfield_core::check_chunk(&self.info, idx, out.len())?;
        let cs = self.info.chunk_shape;
        let start = [0, 1, 2].map(|a| idx[a] * cs[a]);
        self.decode(start, cs, out);
        Ok(())
    }

    /// Evaluates exactly the voxels of the box (not whole chunks: a plane read
    /// would otherwise decode 32 planes per chunk), rows in parallel.
    fn read_box_native(&self, start: [usize; 3], size: [usize; 3], out: &mut [u8]) -> Result<()> {
        let shape = self.info.shape;
        if (0..3).any(|a| start[a] + size[a] > shape[a]) {
            return Err(voxfield_core::Error::invalid(format!(
                "box start {start:?} size {size:?} exceeds volume shape {shape:?}"
            )));
        }
        if out.len() != size.iter().product::<usize>() * self.info.dtype.size() {
            return Err(voxfield_core::Error::invalid(
                "read_box_native: output length does not match box",
            ));
        }
        self.decode(start, size, out);
        Ok(())
    }
}

impl NeuralVolume {
    /// Writes the decoded voxels of the box at `start` (C order, native bytes);
    /// voxels outside the volume are left as they are.
    fn decode(&self, start: [usize; 3], size: [usize; 3], out: &mut [u8]) {
        use rayon::prelude::*;
        let (dtype, shape) = (self.info.dtype, self.info.shape);
        let e = dtype.size();
        if size[2] == 0 {
            return;
        }
        out.par_chunks_mut(size[2] * e)
            .enumerate()
            .for_each(|(row, o)| {
                let (i, j) = (start[0] + row / size[1], start[1] + row % size[1]);
                if i >= shape[0] || j >= shape[1] {
                    return;
                }
                let n = size[2].min(shape[2].saturating_sub(start[2]));
                let v = self.model.row(i, j, start[2]..start[2] + n);
                for (b, v) in o.chunks_exact_mut(e).zip(v) {
                    voxfield_core::voxel::store_f64(v, dtype, b);
                }
            });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn half_precision_round_trips_like_ieee() {
        for (x, bits) in [
            (1.0f32, 0x3c00u16),
            (-2.0, 0xc000),
            (0.5, 0x3800),
            (65504.0, 0x7bff),
            (6.1035156e-5, 0x0400),
        ] {
            assert_eq!(f16_bits(x), bits, "{x}");
            assert_eq!(f16_value(bits), x);
        }
        // Round to nearest: 1 + 2^-11 is halfway between 1 and 1 + 2^-10 → even (1).
        assert_eq!(f16_bits(1.0 + 2f32.powi(-11)), 0x3c00);
        assert_eq!(f16_bits(1.0 + 3.0 * 2f32.powi(-11)), 0x3c02);
        // Subnormals.
        assert_eq!(f16_value(f16_bits(1e-6)), 1.013279e-6);
    }

    fn model(coder: Coder) -> NeuralModel {
        let cfg = HashGridConfig::with_finest(4, 2, 8, 4, 20);
        let mut net = Net::new(cfg, 8, 2, 3);
        let mut rng = crate::Rng(9);
        for p in &mut net.params {
            *p = rng.uniform(-0.5, 0.5);
        }
        let q = Quant { step: 0.01, coder };
        q.apply(&mut net);
        for p in &mut net.params[net.grid.n_params..] {
            *p = f16_value(f16_bits(*p));
        }
        NeuralModel {
            net,
            shape: [20, 10, 5],
            dtype: "float32".into(),
            lo: 0.0,
            hi: 1.0,
            affine: None,
            record: json!({}),
            width: 8,
            hidden: 2,
            quant: Some(q),
        }
    }

    fn reload(bytes: &[u8]) -> Result<NeuralModel> {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("m.vxn");
        std::fs::write(&p, bytes).unwrap();
        NeuralModel::load(&p)
    }

    /// A file with its version field set to `v` and the checksum made again.
    fn as_version(mut bytes: Vec<u8>, v: u32) -> Vec<u8> {
        bytes[8..12].copy_from_slice(&v.to_le_bytes());
        let n = bytes.len() - 4;
        let crc = crc32fast::hash(&bytes[..n]);
        bytes[n..].copy_from_slice(&crc.to_le_bytes());
        bytes
    }

    #[test]
    fn range_coded_and_version_2_zstd_tables_read_back_exactly() {
        let m = model(Coder::Range);
        let back = reload(&m.to_bytes().unwrap()).unwrap();
        assert_eq!(back.net.params, m.net.params);
        assert_eq!(back.quant, m.quant);
        // Version 2 wrote zstd-coded bytes under the same layout.
        let old = model(Coder::Zstd);
        let v2 = as_version(old.to_bytes().unwrap(), 2);
        let back = reload(&v2).unwrap();
        assert_eq!(back.net.params, old.net.params);
        assert_eq!(back.quant.unwrap().coder, Coder::Zstd);
        // The coder a version does not use is refused, as is a forged stream.
        let e = reload(&as_version(m.to_bytes().unwrap(), 2)).unwrap_err();
        assert!(e.to_string().contains("coder"), "{e}");
        let mut bytes = m.to_bytes().unwrap();
        let n = bytes.len();
        bytes[n - 10] ^= 0xff;
        let e = reload(&as_version(bytes, VERSION)).unwrap_err();
        assert!(e.to_string().contains("m.vxn"), "{e}");
    }
}
