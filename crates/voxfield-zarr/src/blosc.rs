//! Blosc 1 frames as c-blosc writes them (through zarrs' `blosc-src`
//! binding): for codecs outside a zarrs array, such as the bytes→bytes
//! compressor after a zarr-vectors store's `vlen-bytes`.

use voxfield_core::{Error, Result};
use zarrs::array::codec::{
    blosc_compress_bytes, blosc_decompress_bytes, blosc_validate, BloscCompressionLevel,
    BloscCompressor, BloscShuffleMode,
};

/// A blosc configuration, as Zarr v3's `blosc` codec names it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Blosc {
    /// blosclz, lz4, lz4hc, snappy, zlib or zstd.
    pub cname: String,
    /// 0–9.
    pub clevel: u8,
    /// noshuffle, shuffle or bitshuffle.
    pub shuffle: String,
    pub typesize: usize,
    /// 0: c-blosc picks it.
    pub blocksize: usize,
}

fn compressor(cname: &str) -> Option<BloscCompressor> {
    Some(match cname {
        "blosclz" => BloscCompressor::BloscLZ,
        "lz4" => BloscCompressor::LZ4,
        "lz4hc" => BloscCompressor::LZ4HC,
        "snappy" => BloscCompressor::Snappy,
        "zlib" => BloscCompressor::Zlib,
        "zstd" => BloscCompressor::Zstd,
        _ => return None,
    })
}

fn shuffle(s: &str) -> Option<BloscShuffleMode> {
    Some(match s {
        "noshuffle" => BloscShuffleMode::NoShuffle,
        "shuffle" => BloscShuffleMode::Shuffle,
        "bitshuffle" => BloscShuffleMode::BitShuffle,
        _ => return None,
    })
}

impl Blosc {
    /// Checks the names and ranges (an error says which is wrong).
    pub fn check(&self) -> std::result::Result<(), String> {
        compressor(&self.cname).ok_or_else(|| {
            format!(
                "blosc cname {}: blosclz, lz4, lz4hc, snappy, zlib or zstd",
                self.cname
            )
        })?;
        shuffle(&self.shuffle).ok_or_else(|| {
            format!(
                "blosc shuffle {}: noshuffle, shuffle or bitshuffle",
                self.shuffle
            )
        })?;
        if self.clevel > 9 {
            return Err(format!("blosc clevel {} is not 0-9", self.clevel));
        }
        if self.typesize == 0 || self.typesize > 255 {
            return Err(format!("blosc typesize {} is not 1-255", self.typesize));
        }
        Ok(())
    }

    /// One blosc frame of `src` (single-threaded: c-blosc's frames do not
    /// depend on the thread count).
    pub fn compress(&self, src: &[u8]) -> std::result::Result<Vec<u8>, String> {
        self.check()?;
        let level =
            BloscCompressionLevel::try_from(self.clevel).map_err(|l| format!("clevel {l}"))?;
        blosc_compress_bytes(
            src,
            level,
            shuffle(&self.shuffle).expect("checked"),
            self.typesize,
            compressor(&self.cname).expect("checked"),
            self.blocksize,
            1,
        )
        .map_err(|e| e.to_string())
    }
}

/// The bytes of a blosc frame, refusing a corrupt header or one that claims
/// more than `max` bytes (a forged size must not allocate).
pub fn decompress(src: &[u8], max: usize, what: &str) -> Result<Vec<u8>> {
    let n =
        blosc_validate(src).ok_or_else(|| Error::format(what, "blosc: not a valid blosc frame"))?;
    if n > max {
        return Err(Error::format(
            what,
            format!("blosc: the frame claims {n} bytes, over the {max} allowed"),
        ));
    }
    blosc_decompress_bytes(src, n, 1).map_err(|e| Error::format(what, format!("blosc: {e}")))
}
