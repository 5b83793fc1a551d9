//! A minimal reader for `.npz` archives (zip, stored or deflated, zip64 aware):
//! numpy's `savez`/`savez_compressed` and PyData sparse's `save_npz` write them.

use std::io::Read;

use std::path::Path;
use voxfield_core::le::{u16_at, u32_at, u64_at};

use voxfield_core::{Error, Result};

/// One member's location in the archive.
struct Member {
    name: String,
    method: u16,
    compressed: u64,
    uncompressed: u64,
    header_offset: u64,
}

/// An `.npz` archive, memory-mapped.
pub struct Npz {
    path: std::path::PathBuf,
    // Mapped, not read: opening touches only the central directory, and each
    // member is inflated straight from the page cache when asked for.
    bytes: memmap2::Mmap,
    members: Vec<Member>,
}

impl Npz {
    pub fn open(path: &Path) -> Result<Self> {
        let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
        if file.metadata().map_err(|e| Error::io(path, e))?.len() == 0 {
            return Err(Error::format(
                path,
                "not a valid .npz (zip) archive: the file is empty",
            ));
        }
        // SAFETY: read-only map; like every mapped reader we rely on the file not
        // being truncated while it is open.
        let bytes = unsafe { memmap2::Mmap::map(&file) }.map_err(|e| Error::io(path, e))?;
        let members = Self::directory(&bytes)
            .ok_or_else(|| Error::format(path, "not a valid .npz (zip) archive"))?;
        Ok(Self {
            path: path.to_path_buf(),
            bytes,
            members,
        })
    }

    fn directory(b: &[u8]) -> Option<Vec<Member>> {
        // End of central directory: the last occurrence of its signature.
        let eocd = (0..b.len().saturating_sub(21))
            .rev()
            .take(66_000)
            .find(|&i| u32_at(b, i) == Some(0x0605_4b50))?;
        let mut count = u16_at(b, eocd + 10)? as u64;
        let mut cd = u32_at(b, eocd + 16)? as u64;
        if count == 0xFFFF || cd == 0xFFFF_FFFF {
            // zip64 end of central directory locator, just before the EOCD.
            let loc = eocd.checked_sub(20)?;
            if u32_at(b, loc)? != 0x0706_4b50 {
                return None;
            }
            let z64 = u64_at(b, loc + 8)? as usize;
            count = u64_at(b, z64 + 32)?;
            cd = u64_at(b, z64 + 48)?;
        }
        let mut out = vec![];
        let mut p = cd as usize;
        for _ in 0..count {
            if u32_at(b, p)? != 0x0201_4b50 {
                return None;
            }
            let method = u16_at(b, p + 10)?;
            let mut compressed = u32_at(b, p + 20)? as u64;
            let mut uncompressed = u32_at(b, p + 24)? as u64;
            let (nlen, xlen, clen) = (
                u16_at(b, p + 28)? as usize,
                u16_at(b, p + 30)? as usize,
                u16_at(b, p + 32)? as usize,
            );
            let mut header_offset = u32_at(b, p + 42)? as u64;
            let name = String::from_utf8_lossy(b.get(p + 46..p + 46 + nlen)?).into_owned();
            // zip64 extra field: the 0xFFFFFFFF fields, in order.
            let mut x = p + 46 + nlen;
            let xend = x + xlen;
            while x + 4 <= xend {
                let (id, size) = (u16_at(b, x)?, u16_at(b, x + 2)? as usize);
                if id == 1 {
                    let mut q = x + 4;
                    for field in [&mut uncompressed, &mut compressed, &mut header_offset] {
                        if *field == 0xFFFF_FFFF {
                            *field = u64_at(b, q)?;
                            q += 8;
                        }
                    }
                }
                x += 4 + size;
            }
            out.push(Member {
                name,
                method,
                compressed,
                uncompressed,
                header_offset,
            });
            p = xend + clen;
        }
        Some(out)
    }

    /// The uncompressed size the archive's directory gives for member `name`
    /// (reads never inflate more than this).
    pub fn size(&self, name: &str) -> Option<u64> {
        self.members
            .iter()
            .find(|m| m.name == name)
            .map(|m| m.uncompressed)
    }

    pub fn names(&self) -> Vec<&str> {
        self.members.iter().map(|m| m.name.as_str()).collect()
    }

    /// The first `n` uncompressed bytes of member `name` (fewer if it is shorter):
    /// enough to parse an `.npy` header without inflating the data.
    pub fn read_prefix(&self, name: &str, n: usize) -> Result<Vec<u8>> {
        self.read_limited(name, Some(n))
    }

    /// The uncompressed bytes of member `name` (e.g. `coords.npy`).
    pub fn read(&self, name: &str) -> Result<Vec<u8>> {
        self.read_limited(name, None)
    }

    fn read_limited(&self, name: &str, limit: Option<usize>) -> Result<Vec<u8>> {
        let bad = |m: String| Error::format(&self.path, format!("member '{name}': {m}"));
        let m = self
            .members
            .iter()
            .find(|m| m.name == name)
            .ok_or_else(|| {
                Error::format(
                    &self.path,
                    format!(
                        "has no member '{name}' (members: {})",
                        self.names().join(", ")
                    ),
                )
            })?;
        let b = &self.bytes;
        let h = m.header_offset as usize;
        if u32_at(b, h) != Some(0x0403_4b50) {
            return Err(bad("bad local header".into()));
        }
        let data = h
            + 30
            + u16_at(b, h + 26).unwrap_or(0) as usize
            + u16_at(b, h + 28).unwrap_or(0) as usize;
        let raw = b
            .get(data..data + m.compressed as usize)
            .ok_or_else(|| bad("truncated".into()))?;
        let want = limit.map_or(m.uncompressed, |l| (l as u64).min(m.uncompressed));
        let out = match m.method {
            0 => raw
                .get(..want as usize)
                .ok_or_else(|| bad("truncated".into()))?
                .to_vec(),
            8 => {
                // The directory's size is a claim: reserve no more than deflate can
                // expand the stored bytes to (1032:1); the vector grows with the data.
                let cap = want.min(m.compressed.saturating_mul(1032)).min(1 << 26);
                let mut out = Vec::with_capacity(cap as usize);
                flate2::read::DeflateDecoder::new(raw)
                    .take(want)
                    .read_to_end(&mut out)
                    .map_err(|e| bad(format!("corrupt deflate data: {e}")))?;
                out
            }
            other => return Err(bad(format!("unsupported zip compression method {other}"))),
        };
        if out.len() as u64 != want {
            return Err(bad(format!(
                "decompressed to {} bytes, expected {want}",
                out.len()
            )));
        }
        Ok(out)
    }
}

/// Writes `members` (name, `.npy` bytes) as an uncompressed `.npz` (a stored
/// zip, as `np.savez` writes), atomically: a temporary name, then a rename.
pub fn write_npz<N: AsRef<str>>(path: &Path, members: &[(N, Vec<u8>)]) -> Result<()> {
    if members.iter().any(|(_, b)| b.len() >= u32::MAX as usize) || members.len() > 0xffff {
        return Err(Error::invalid(format!(
            "{}: members of 4 GiB or more (zip64) are not written",
            path.display()
        )));
    }
    crate::npy::write_atomic(path, |w| {
        use std::io::Write;
        let mut central = vec![];
        let mut offset = 0u64;
        for (name, bytes) in members {
            let name = name.as_ref();
            let mut crc = flate2::Crc::new();
            crc.update(bytes);
            let (crc, size, nlen) = (crc.sum(), bytes.len() as u32, name.len() as u16);
            // Fields shared by the local and the central header: version needed,
            // flags, method (stored), time, date (1980-01-01), crc, sizes, name length.
            let mut common = vec![];
            common.extend_from_slice(&20u16.to_le_bytes());
            common.extend_from_slice(&0u16.to_le_bytes());
            common.extend_from_slice(&0u16.to_le_bytes());
            common.extend_from_slice(&0u16.to_le_bytes());
            common.extend_from_slice(&0x21u16.to_le_bytes());
            common.extend_from_slice(&crc.to_le_bytes());
            common.extend_from_slice(&size.to_le_bytes());
            common.extend_from_slice(&size.to_le_bytes());
            common.extend_from_slice(&nlen.to_le_bytes());
            common.extend_from_slice(&0u16.to_le_bytes()); // extra length
            w.write_all(&0x0403_4b50u32.to_le_bytes())?;
            w.write_all(&common)?;
            w.write_all(name.as_bytes())?;
            w.write_all(bytes)?;
            central.extend_from_slice(&0x0201_4b50u32.to_le_bytes());
            central.extend_from_slice(&20u16.to_le_bytes()); // version made by
            central.extend_from_slice(&common);
            central.extend_from_slice(&[0; 6]); // comment length, disk, internal attributes
            central.extend_from_slice(&0u32.to_le_bytes()); // external attributes
            central.extend_from_slice(&(offset as u32).to_le_bytes());
            central.extend_from_slice(name.as_bytes());
            offset += 30 + name.len() as u64 + bytes.len() as u64;
        }
        if offset + central.len() as u64 >= u32::MAX as u64 {
            return Err(std::io::Error::other("archive of 4 GiB or more (zip64)"));
        }
        w.write_all(&central)?;
        w.write_all(&0x0605_4b50u32.to_le_bytes())?;
        w.write_all(&[0; 4])?; // disk numbers
        let n = members.len() as u16;
        w.write_all(&n.to_le_bytes())?;
        w.write_all(&n.to_le_bytes())?;
        w.write_all(&(central.len() as u32).to_le_bytes())?;
        w.write_all(&(offset as u32).to_le_bytes())?;
        w.write_all(&0u16.to_le_bytes())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn written_archives_read_back() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("a.npz");
        let a = crate::npy::header_bytes("<f8", &[2]);
        let mut a1 = a.clone();
        a1.extend_from_slice(&1.5f64.to_le_bytes());
        a1.extend_from_slice(&(-2.0f64).to_le_bytes());
        write_npz(&p, &[("x.npy", a1.clone()), ("empty.npy", vec![])]).unwrap();
        let z = Npz::open(&p).unwrap();
        assert_eq!(z.names(), vec!["x.npy", "empty.npy"]);
        assert_eq!(z.read("x.npy").unwrap(), a1);
        assert!(z.read("empty.npy").unwrap().is_empty());
    }
}
