//! The bytes→bytes compressors a per-chunk array may put after
//! `vlen-bytes`: zstd, gzip and blosc (every shuffle), read and written as
//! zarr-python writes them for zarr-vectors' `compressor=` — `"zstd"` is
//! zstd level 0 without checksum, `"blosc"` Blosc(zstd, bitshuffle, clevel
//! 5, typesize 4). Decoding is bounded: a frame may not claim more than
//! [`MAX_CELL_BYTES`].

use std::io::Read;
use std::path::Path;

use serde_json::{json, Value};
use voxfield_core::{Error, Result};
use voxfield_zarr::blosc::Blosc;

/// The largest decoded cell (1 GiB): a compressed frame claiming more is
/// refused before anything is allocated for it.
pub const MAX_CELL_BYTES: usize = 1 << 30;

/// One compressor after `vlen-bytes`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Compressor {
    Zstd { level: i32, checksum: bool },
    Gzip { level: u32 },
    Blosc(Blosc),
}

impl Compressor {
    /// zarr-vectors' shorthands: `zstd`, `blosc`, and `gzip` (level 5, as
    /// zarr-python's `GzipCodec()`); `none` is no compressor.
    pub fn parse(name: &str) -> Result<Option<Compressor>> {
        Ok(Some(match name {
            "none" => return Ok(None),
            "zstd" => Compressor::Zstd {
                level: 0,
                checksum: false,
            },
            "gzip" => Compressor::Gzip { level: 5 },
            "blosc" => Compressor::Blosc(Blosc {
                cname: "zstd".into(),
                clevel: 5,
                shuffle: "bitshuffle".into(),
                typesize: 4,
                blocksize: 0,
            }),
            other => {
                return Err(Error::invalid(format!(
                    "compressor {other}: none, zstd, gzip or blosc"
                )))
            }
        }))
    }

    /// The codec's Zarr v3 metadata (`codecs` entry).
    pub fn metadata(&self) -> Value {
        match self {
            Compressor::Zstd { level, checksum } => {
                json!({"name": "zstd", "configuration": {"level": level, "checksum": checksum}})
            }
            Compressor::Gzip { level } => {
                json!({"name": "gzip", "configuration": {"level": level}})
            }
            Compressor::Blosc(b) => json!({"name": "blosc", "configuration": {
                "typesize": b.typesize, "cname": b.cname, "clevel": b.clevel,
                "shuffle": b.shuffle, "blocksize": b.blocksize}}),
        }
    }

    /// The compressor a `codecs` entry names (`meta` names the file in errors).
    pub fn from_metadata(c: &Value, meta: &Path) -> Result<Compressor> {
        let cfg = &c["configuration"];
        let bad = |m: String| Error::format(meta, m);
        match c["name"].as_str() {
            Some("zstd") => Ok(Compressor::Zstd {
                level: cfg["level"].as_i64().unwrap_or(0) as i32,
                checksum: cfg["checksum"].as_bool().unwrap_or(false),
            }),
            Some("gzip") => Ok(Compressor::Gzip {
                level: cfg["level"].as_u64().unwrap_or(5).min(9) as u32,
            }),
            Some("blosc") => {
                let b = Blosc {
                    cname: cfg["cname"].as_str().unwrap_or("zstd").into(),
                    clevel: cfg["clevel"].as_u64().unwrap_or(5).min(255) as u8,
                    shuffle: cfg["shuffle"].as_str().unwrap_or("noshuffle").into(),
                    typesize: cfg["typesize"].as_u64().unwrap_or(1).min(4096) as usize,
                    blocksize: cfg["blocksize"].as_u64().unwrap_or(0) as usize,
                };
                b.check().map_err(bad)?;
                Ok(Compressor::Blosc(b))
            }
            other => Err(bad(format!(
                "codec {} is not supported after vlen-bytes (zstd, gzip or blosc)",
                other.unwrap_or("?")
            ))),
        }
    }

    /// `b` compressed (zstd as a single frame with its content size, the
    /// way numcodecs' `Zstd` writes it; gzip with mtime 0).
    pub fn encode(&self, b: &[u8], file: &Path) -> Result<Vec<u8>> {
        match self {
            Compressor::Zstd { level, checksum } => {
                let mut c = zstd::bulk::Compressor::new(*level).map_err(|e| Error::io(file, e))?;
                c.include_checksum(*checksum)
                    .map_err(|e| Error::io(file, e))?;
                c.compress(b).map_err(|e| Error::io(file, e))
            }
            Compressor::Gzip { level } => {
                use std::io::Write;
                let mut e = flate2::GzBuilder::new()
                    .mtime(0)
                    .write(Vec::new(), flate2::Compression::new(*level));
                e.write_all(b).map_err(|err| Error::io(file, err))?;
                e.finish().map_err(|err| Error::io(file, err))
            }
            Compressor::Blosc(bl) => bl
                .compress(b)
                .map_err(|m| Error::format(file, format!("blosc: {m}"))),
        }
    }

    /// `b` decompressed, at most [`MAX_CELL_BYTES`].
    pub fn decode(&self, b: &[u8], file: &Path) -> Result<Vec<u8>> {
        let limit = MAX_CELL_BYTES as u64;
        let too_big = || {
            Error::format(
                file,
                format!("a compressed cell decodes to over {MAX_CELL_BYTES} bytes"),
            )
        };
        let mut out = vec![];
        match self {
            Compressor::Zstd { .. } => {
                let d = zstd::stream::read::Decoder::new(b)
                    .map_err(|e| Error::format(file, format!("zstd: {e}")))?;
                d.take(limit + 1)
                    .read_to_end(&mut out)
                    .map_err(|e| Error::format(file, format!("zstd: {e}")))?;
            }
            Compressor::Gzip { .. } => {
                flate2::read::GzDecoder::new(b)
                    .take(limit + 1)
                    .read_to_end(&mut out)
                    .map_err(|e| Error::format(file, format!("gzip: {e}")))?;
            }
            Compressor::Blosc(_) => {
                return voxfield_zarr::blosc::decompress(
                    b,
                    MAX_CELL_BYTES,
                    &file.display().to_string(),
                )
            }
        }
        if out.len() > MAX_CELL_BYTES {
            return Err(too_big());
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_compressor_round_trips_and_refuses_garbage() {
        let data: Vec<u8> = (0..10_000u32)
            .flat_map(|i| (i as f32).to_le_bytes())
            .collect();
        let f = Path::new("cell");
        for name in ["zstd", "gzip", "blosc"] {
            let c = Compressor::parse(name).unwrap().unwrap();
            let enc = c.encode(&data, f).unwrap();
            assert!(enc.len() < data.len(), "{name} compresses");
            assert_eq!(c.decode(&enc, f).unwrap(), data, "{name}");
            let meta = c.metadata();
            assert_eq!(Compressor::from_metadata(&meta, f).unwrap(), c);
            assert!(
                c.decode(&enc[..enc.len() / 2], f).is_err(),
                "{name} truncated"
            );
        }
        assert!(Compressor::parse("lzma").is_err());
        assert_eq!(Compressor::parse("none").unwrap(), None);
        let bad = json!({"name": "blosc", "configuration": {"cname": "brotli"}});
        assert!(Compressor::from_metadata(&bad, f).is_err());
    }
}
