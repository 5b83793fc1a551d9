//! The `.vxr` model file: magic, format version, JSON header (`ModelInfo`),
//! little-endian cell records, CRC-32 of everything before it. Written to a
//! temporary name and renamed into place.
//!
//! ```text
//! \x89VXR\r\n\x1a\n | u32 version | u64 header length | header JSON |
//! per cell: f64 lo[3] hi[3] width[3] centre[3] scale shape, u8 open_lo[3] open_hi[3] grown, u8 pad,
//!           u64 m, u64 terms, f64 centres[dim·m], lambda[channels·m], poly[channels·terms] |
//! u32 crc32
//! ```

use std::io::Write;
use std::path::Path;

use voxfield_core::le::Cursor;
use voxfield_core::{Error, Result};

use crate::blend::CellBox;
use crate::cell::{Buckets, Cell};
use crate::kernel::{Kernel, Scaled};
use crate::model::{ModelInfo, RbfModel};

pub const MAGIC: [u8; 8] = voxfield_core::VXR_MAGIC;
pub const VERSION: u32 = 1;

/// Whether `bytes` start like a `.vxr` model.
pub fn is_vxr(bytes: &[u8]) -> bool {
    bytes.starts_with(&MAGIC)
}

/// A writer that keeps a running CRC-32.
struct Crc<W: Write> {
    inner: W,
    hasher: crc32fast::Hasher,
}

impl<W: Write> Write for Crc<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

fn f64s(w: &mut impl Write, v: &[f64]) -> std::io::Result<()> {
    let mut buf = Vec::with_capacity(v.len().min(8192) * 8);
    for chunk in v.chunks(8192) {
        buf.clear();
        for x in chunk {
            buf.extend_from_slice(&x.to_le_bytes());
        }
        w.write_all(&buf)?;
    }
    Ok(())
}

/// One cell record (see the module doc).
fn write_cell(w: &mut impl Write, c: &Cell, dim: usize) -> std::io::Result<()> {
    let b = &c.bounds;
    let mut fixed = Vec::with_capacity(14);
    fixed.extend_from_slice(&b.lo);
    fixed.extend_from_slice(&b.hi);
    fixed.extend_from_slice(&b.width);
    fixed.extend_from_slice(&c.centre);
    fixed.push(c.scale);
    fixed.push(c.kernel.shape);
    f64s(w, &fixed)?;
    let flags: Vec<u8> = b
        .open_lo
        .iter()
        .chain(&b.open_hi)
        .chain(std::iter::once(&c.grown))
        .map(|&f| f as u8)
        .chain(std::iter::once(0))
        .collect();
    w.write_all(&flags)?;
    w.write_all(&(c.len(dim) as u64).to_le_bytes())?;
    w.write_all(&(c.terms as u64).to_le_bytes())?;
    f64s(w, &c.centres)?;
    f64s(w, &c.lambda)?;
    f64s(w, &c.poly)
}

/// The cells of solved domains as bytes (to ship them between processes): per
/// domain its id and cell count (u64), then its cell records.
pub fn encode_cells(cells: &[(usize, Vec<Cell>)], dim: usize) -> Vec<u8> {
    let mut out = Vec::new();
    for (g, list) in cells {
        out.extend_from_slice(&(*g as u64).to_le_bytes());
        out.extend_from_slice(&(list.len() as u64).to_le_bytes());
        for c in list {
            write_cell(&mut out, c, dim).expect("writing to memory");
        }
    }
    out
}

/// Reads what [`encode_cells`] wrote for a model of `dim`-D points with
/// `channels` values and `kernel`.
pub fn decode_cells(
    bytes: &[u8],
    dim: usize,
    channels: usize,
    kernel: Kernel,
) -> Result<Vec<(usize, Vec<Cell>)>> {
    let mut r = Cursor::new(bytes, 0);
    let mut out = Vec::new();
    let bad = |m: String| Error::invalid(format!("bad cell bytes: {m}"));
    while r.at < bytes.len() {
        let g = read_count(&mut r).map_err(bad)?;
        let count = read_count(&mut r).map_err(bad)?;
        if count > (bytes.len() - r.at) / 136 {
            return Err(bad(format!("{count} cells in {} bytes", bytes.len())));
        }
        let cells = (0..count)
            .map(|_| read_cell(&mut r, dim, channels, kernel))
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(bad)?;
        out.push((g, cells));
    }
    Ok(out)
}

impl RbfModel {
    /// Writes the model to `path` atomically.
    pub fn save(&self, path: &Path) -> Result<()> {
        let header = serde_json::to_vec(&self.info).map_err(|e| Error::invalid(e.to_string()))?;
        voxfield_io::npy::write_atomic(path, |w| {
            let mut w = Crc {
                inner: w,
                hasher: crc32fast::Hasher::new(),
            };
            w.write_all(&MAGIC)?;
            w.write_all(&VERSION.to_le_bytes())?;
            w.write_all(&(header.len() as u64).to_le_bytes())?;
            w.write_all(&header)?;
            for c in &self.cells {
                write_cell(&mut w, c, self.info.dim)?;
            }
            let crc = w.hasher.clone().finalize();
            w.inner.write_all(&crc.to_le_bytes())?;
            Ok(())
        })
    }

    /// Reads a model written by [`RbfModel::save`], checking magic, version,
    /// checksum and every length.
    pub fn load(path: &Path) -> Result<RbfModel> {
        voxfield_io::safety::regular_input(path)?;
        let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
        parse(&bytes).map_err(|m| Error::format(path, m))
    }
}

/// Reads the header (for `voxfield info`), after checking the whole file's
/// checksum in a streaming pass (no cell is parsed or kept).
pub fn read_info(path: &Path) -> Result<ModelInfo> {
    use std::io::{Read, Seek};
    voxfield_io::safety::regular_input(path)?;
    let mut f = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    verify_crc(&mut f).map_err(|m| Error::format(path, m))?;
    f.rewind().map_err(|e| Error::io(path, e))?;
    let mut head = [0u8; 20];
    f.read_exact(&mut head)
        .map_err(|_| Error::format(path, "truncated .vxr model (no header)"))?;
    let len = check_head(&head).map_err(|m| Error::format(path, m))?;
    let mut json = vec![0u8; len];
    f.read_exact(&mut json)
        .map_err(|_| Error::format(path, "truncated .vxr model (header cut short)"))?;
    serde_json::from_slice(&json).map_err(|e| Error::format(path, format!("bad model header: {e}")))
}

/// Checks the trailing CRC-32 against everything before it, reading in blocks.
fn verify_crc(f: &mut std::fs::File) -> std::result::Result<(), String> {
    use std::io::Read;
    let len = f.metadata().map_err(|e| e.to_string())?.len();
    if len < 24 {
        return Err("truncated .vxr model".into());
    }
    let mut h = crc32fast::Hasher::new();
    let mut left = len - 4;
    let mut buf = vec![0u8; 1 << 20];
    while left > 0 {
        let n = left.min(buf.len() as u64) as usize;
        f.read_exact(&mut buf[..n]).map_err(|e| e.to_string())?;
        h.update(&buf[..n]);
        left -= n as u64;
    }
    let mut tail = [0u8; 4];
    f.read_exact(&mut tail).map_err(|e| e.to_string())?;
    if h.finalize() != u32::from_le_bytes(tail) {
        return Err("checksum mismatch: the model file is corrupt or truncated".into());
    }
    Ok(())
}

fn check_head(b: &[u8]) -> std::result::Result<usize, String> {
    if b.len() < 20 || !is_vxr(b) {
        return Err("not a voxfield RBF model (.vxr magic missing)".into());
    }
    let version = u32::from_le_bytes(b[8..12].try_into().unwrap());
    if version != VERSION {
        return Err(format!(
            "model format version {version}; this voxfield reads version {VERSION}"
        ));
    }
    let len = u64::from_le_bytes(b[12..20].try_into().unwrap());
    usize::try_from(len)
        .ok()
        .filter(|&l| l < 1 << 30)
        .ok_or_else(|| format!("implausible header length {len}"))
}

/// A count field of a cell record (a u64 that must fit usize).
fn read_count(r: &mut Cursor) -> std::result::Result<usize, String> {
    usize::try_from(r.u64()?).map_err(|_| "implausible count".to_string())
}

/// One cell record (see the module doc).
fn read_cell(
    r: &mut Cursor,
    dim: usize,
    channels: usize,
    kernel: Kernel,
) -> std::result::Result<Cell, String> {
    let f = r.f64s(14)?;
    let flags = r.take(8)?;
    let m = read_count(r)?;
    let terms = read_count(r)?;
    if terms > 4 {
        return Err(format!("bad cell record: {terms} polynomial terms"));
    }
    let centres = r.f64s(dim.checked_mul(m).ok_or("implausible count")?)?;
    let lambda = r.f64s(channels.checked_mul(m).ok_or("implausible count")?)?;
    let poly = r.f64s(channels * terms)?;
    let arr = |i: usize| [f[i], f[i + 1], f[i + 2]];
    let flag = |i: usize| [flags[i] != 0, flags[i + 1] != 0, flags[i + 2] != 0];
    let scaled = Scaled {
        kernel,
        shape: f[13],
    };
    let buckets = kernel
        .is_compact()
        .then(|| Buckets::new(dim, m, &centres, 1.0 / scaled.shape));
    Ok(Cell {
        bounds: CellBox {
            lo: arr(0),
            hi: arr(3),
            width: arr(6),
            open_lo: flag(0),
            open_hi: flag(3),
        },
        centre: arr(9),
        scale: f[12],
        kernel: scaled,
        centres,
        lambda,
        poly,
        terms,
        buckets,
        grown: flags[6] != 0,
    })
}

fn parse(bytes: &[u8]) -> std::result::Result<RbfModel, String> {
    let len = check_head(bytes)?;
    if bytes.len() < 24 + len {
        return Err("truncated .vxr model".into());
    }
    let (body, tail) = bytes.split_at(bytes.len() - 4);
    let stored = u32::from_le_bytes(tail.try_into().unwrap());
    if crc32fast::hash(body) != stored {
        return Err("checksum mismatch: the model file is corrupt or truncated".into());
    }
    let info: ModelInfo = serde_json::from_slice(&body[20..20 + len])
        .map_err(|e| format!("bad model header: {e}"))?;
    let kernel: Kernel = info.kernel.parse().map_err(|e: Error| e.to_string())?;
    let dim = info.dim;
    if !(1..=3).contains(&dim)
        || info.channels == 0
        || info.grid.dim != dim
        || info.grid.count[..dim].contains(&0)
        || info.grid.count[..dim]
            .iter()
            .try_fold(1usize, |a, &n| a.checked_mul(n))
            .is_none_or(|g| g > 1 << 28)
    {
        return Err(format!(
            "bad model header: dim {dim}, channels {}",
            info.channels
        ));
    }
    let mut r = Cursor::new(body, 20 + len);
    // Each cell record takes at least 136 bytes: a count beyond what the file holds
    // is refused before anything is allocated for it.
    let room = (body.len() - r.at) / 136;
    if info.cells > room {
        return Err(format!(
            "bad model header: {} cells, but the file holds at most {room}",
            info.cells
        ));
    }
    let mut cells = Vec::with_capacity(info.cells);
    for _ in 0..info.cells {
        cells.push(read_cell(&mut r, dim, info.channels, kernel)?);
    }
    if r.at != body.len() {
        return Err(format!(
            "{} unexpected bytes after the cells",
            body.len() - r.at
        ));
    }
    Ok(RbfModel::new(info, kernel, cells))
}
