//! The HDF5 filter pipeline, undone in Rust (C blosc and zstd are linked
//! statically through their -sys crates): deflate, shuffle, fletcher32, and the
//! plugin filters h5py + hdf5plugin write: lzf (32000), blosc (32001), lz4
//! (32004), bitshuffle with or without lz4/zstd (32008), zstd (32015), bzip2 (307).

use std::io::Read;

use crate::format::{Filter, Res};

/// One decoding step, in the order filters were applied when writing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Step {
    Deflate,
    Shuffle,
    Fletcher32,
    Lzf,
    Blosc,
    Lz4,
    Zstd,
    Bzip2,
    /// Bitshuffle of `block` elements (0: the library default), then `codec`
    /// (0: none, 2: lz4, 3: zstd) per block.
    Bitshuffle {
        block: usize,
        codec: u32,
    },
}

fn filter_name(id: u16) -> &'static str {
    match id {
        1 => "deflate",
        2 => "shuffle",
        3 => "fletcher32",
        4 => "szip",
        5 => "nbit",
        6 => "scaleoffset",
        307 => "bzip2",
        32000 => "lzf",
        32001 => "blosc",
        32004 => "lz4",
        32008 => "bitshuffle",
        32013 => "zfp",
        32015 => "zstd",
        32017 => "sz",
        32026 => "blosc2",
        _ => "unknown",
    }
}

/// The dataset's filters as decoding steps; an unsupported filter is an error naming it.
pub(crate) fn steps(filters: &[Filter]) -> Res<Vec<Step>> {
    filters
        .iter()
        .map(|f| {
            Ok(match f.id {
                1 => Step::Deflate,
                2 => Step::Shuffle,
                3 => Step::Fletcher32,
                307 => Step::Bzip2,
                32000 => Step::Lzf,
                32001 => Step::Blosc,
                32004 => Step::Lz4,
                32015 => Step::Zstd,
                32008 => {
                    let codec = f.client.get(4).copied().unwrap_or(0);
                    if ![0, 2, 3].contains(&codec) {
                        return Err(format!("bitshuffle with compressor {codec} is not supported (none, lz4 = 2 and zstd = 3 are)"));
                    }
                    Step::Bitshuffle {
                        block: f.client.get(3).copied().unwrap_or(0) as usize,
                        codec,
                    }
                }
                id => {
                    return Err(format!(
                        "unsupported HDF5 filter '{}' (id {id}); voxfield decodes deflate, shuffle, fletcher32, lzf, \
                         blosc, lz4, bitshuffle (+lz4/zstd), zstd and bzip2",
                        filter_name(id)
                    ))
                }
            })
        })
        .collect()
}

/// Undoes `steps` (skipping those whose bit is set in `mask`) on one chunk's
/// stored bytes, producing `out_len` bytes of elements of `elem` bytes. No step
/// allocates more than `out_len` (plus a small slack) whatever the stored bytes say.
pub(crate) fn decode(
    steps: &[Step],
    mask: u32,
    mut data: Vec<u8>,
    out_len: usize,
    elem: usize,
) -> Res<Vec<u8>> {
    for (i, step) in steps.iter().enumerate().rev() {
        if mask & (1 << i) != 0 {
            continue;
        }
        data = match step {
            Step::Deflate => {
                let mut out = Vec::with_capacity(out_len);
                flate2::read::ZlibDecoder::new(&data[..])
                    .take(out_len as u64 + 1)
                    .read_to_end(&mut out)
                    .map_err(|e| format!("deflate data is corrupt: {e}"))?;
                out
            }
            Step::Lzf => lzf(&data, out_len)?,
            Step::Shuffle => unshuffle(&data, elem),
            Step::Fletcher32 => crate::checksum::strip_fletcher32(data)?,
            Step::Blosc => blosc(&data, out_len)?,
            Step::Lz4 => lz4_blocks(&data, out_len)?,
            Step::Zstd => zstd_frame(&data, out_len)?,
            Step::Bzip2 => {
                let mut out = Vec::with_capacity(out_len);
                bzip2::read::BzDecoder::new(&data[..])
                    .take(out_len as u64 + 1)
                    .read_to_end(&mut out)
                    .map_err(|e| format!("bzip2 data is corrupt: {e}"))?;
                out
            }
            Step::Bitshuffle { block, codec } => bitshuffle(&data, elem, *block, *codec, out_len)?,
        };
        if data.len() > out_len + 64 {
            return Err(format!(
                "a filter produced {} bytes for a chunk of {out_len}",
                data.len()
            ));
        }
    }
    if data.len() != out_len {
        return Err(format!(
            "decoded to {} bytes, expected {out_len}",
            data.len()
        ));
    }
    Ok(data)
}

/// Decodes LZF (liblzf's format, as h5py's filter 32000 writes it): a control
/// byte below 32 starts a run of that many + 1 literals; otherwise its top 3 bits
/// (7: plus the next byte) + 2 are a length to copy from a distance given by its low
/// 5 bits and the next byte, + 1. At most `max` bytes are produced.
fn lzf(data: &[u8], max: usize) -> Res<Vec<u8>> {
    let bad = || "lzf data is corrupt or truncated".to_string();
    let mut out: Vec<u8> = Vec::with_capacity(max);
    let mut ip = 0;
    while ip < data.len() {
        let ctrl = data[ip] as usize;
        ip += 1;
        if ctrl < 32 {
            let run = data.get(ip..ip + ctrl + 1).ok_or_else(bad)?;
            if out.len() + run.len() > max {
                return Err(bad());
            }
            out.extend_from_slice(run);
            ip += ctrl + 1;
            continue;
        }
        let mut len = ctrl >> 5;
        if len == 7 {
            len += *data.get(ip).ok_or_else(bad)? as usize;
            ip += 1;
        }
        len += 2;
        let dist = ((ctrl & 0x1f) << 8) + *data.get(ip).ok_or_else(bad)? as usize + 1;
        ip += 1;
        let start = out.len().checked_sub(dist).ok_or_else(bad)?;
        if out.len() + len > max {
            return Err(bad());
        }
        // An overlapping copy repeats the last `dist` bytes: copy in doubling
        // blocks (each a whole number of periods, so the pattern continues).
        let mut copied = 0;
        while copied < len {
            let n = (out.len() - start).min(len - copied);
            out.extend_from_within(start..start + n);
            copied += n;
        }
    }
    Ok(out)
}

/// HDF5's shuffle stores byte k of every element together; this puts them back.
fn unshuffle(data: &[u8], elem: usize) -> Vec<u8> {
    if elem <= 1 {
        return data.to_vec();
    }
    let n = data.len() / elem;
    let mut out = data.to_vec(); // a tail that is not a whole element stays as is
    for b in 0..elem {
        for i in 0..n {
            out[i * elem + b] = data[b * n + i];
        }
    }
    out
}

fn be32(b: &[u8], at: usize) -> Res<u32> {
    b.get(at..at + 4)
        .map(|s| u32::from_be_bytes(s.try_into().expect("4 bytes")))
        .ok_or_else(|| "compressed block header is truncated".to_string())
}

fn be64(b: &[u8], at: usize) -> Res<u64> {
    b.get(at..at + 8)
        .map(|s| u64::from_be_bytes(s.try_into().expect("8 bytes")))
        .ok_or_else(|| "compressed header is truncated".to_string())
}

/// A Blosc 1 frame (its 16-byte header gives the decoded size).
fn blosc(data: &[u8], out_len: usize) -> Res<Vec<u8>> {
    if data.len() < 16 {
        return Err("blosc frame shorter than its header".into());
    }
    let n = u32::from_le_bytes(data[4..8].try_into().expect("4 bytes")) as usize;
    if n > out_len + 64 {
        return Err(format!(
            "blosc frame claims {n} bytes for a chunk of {out_len}"
        ));
    }
    let cbytes = u32::from_le_bytes(data[12..16].try_into().expect("4 bytes")) as usize;
    if cbytes > data.len() {
        return Err(format!(
            "blosc frame of {cbytes} bytes is truncated to {}",
            data.len()
        ));
    }
    let mut out = vec![0u8; n];
    // SAFETY: the pointers and lengths describe live buffers; blosc writes at most
    // `n` bytes to `out` and reads within the frame's compressed size, checked above
    // against the buffer it is given.
    let got = unsafe {
        blosc_src::blosc_decompress_ctx(data.as_ptr().cast(), out.as_mut_ptr().cast(), n, 1)
    };
    if got < 0 || got as usize != n {
        return Err(format!("blosc data is corrupt (decoder returned {got})"));
    }
    Ok(out)
}

/// HDF5's LZ4 filter: a big-endian total size and block size, then per block its
/// compressed size and the LZ4 block (stored raw when it would not shrink).
fn lz4_blocks(data: &[u8], out_len: usize) -> Res<Vec<u8>> {
    let total = be64(data, 0)? as usize;
    let block = be32(data, 8)? as usize;
    if total > out_len + 64 || block == 0 {
        return Err(format!(
            "lz4 header claims {total} bytes in blocks of {block}"
        ));
    }
    let mut out = vec![0u8; total];
    let mut p = 12;
    for dst in out.chunks_mut(block) {
        let n = be32(data, p)? as usize;
        p += 4;
        let src = data.get(p..p + n).ok_or("lz4 block is truncated")?;
        if n == dst.len() {
            dst.copy_from_slice(src);
        } else {
            let got = lz4_flex::block::decompress_into(src, dst)
                .map_err(|e| format!("lz4 data is corrupt: {e}"))?;
            if got != dst.len() {
                return Err("lz4 block decoded to the wrong size".into());
            }
        }
        p += n;
    }
    Ok(out)
}

fn zstd_frame(data: &[u8], out_len: usize) -> Res<Vec<u8>> {
    zstd::bulk::decompress(data, out_len + 64).map_err(|e| format!("zstd data is corrupt: {e}"))
}

/// Bitshuffle's default block: ~8 KiB of elements, a multiple of 8, at least 128.
fn default_block(elem: usize) -> usize {
    ((8192 / elem.max(1)) / 8 * 8).max(128)
}

/// Undoes bitshuffle (with lz4 or zstd per block when `codec` is 2 or 3): blocks
/// of `block` elements, then a last block rounded down to 8 elements, then up to
/// 7 elements stored as they are.
fn bitshuffle(data: &[u8], elem: usize, block: usize, codec: u32, out_len: usize) -> Res<Vec<u8>> {
    let (total, block, mut p) = if codec == 0 {
        (
            data.len(),
            if block == 0 {
                default_block(elem)
            } else {
                block
            },
            0,
        )
    } else {
        let total = be64(data, 0)? as usize;
        let bytes = be32(data, 8)? as usize;
        (total, bytes / elem.max(1), 12)
    };
    if total > out_len + 64 || elem == 0 || block == 0 || block % 8 != 0 || total % elem != 0 {
        return Err(format!(
            "bitshuffle header claims {total} bytes of {elem}-byte elements in blocks of {block}"
        ));
    }
    let n = total / elem;
    let mut out = vec![0u8; total];
    let mut sizes: Vec<usize> = vec![block; n / block];
    if (n % block) / 8 * 8 > 0 {
        sizes.push((n % block) / 8 * 8);
    }
    let mut o = 0;
    // Every block is at most `block` and at most `n` elements: the header's
    // block size alone does not size the buffer.
    let mut tmp = vec![0u8; block.min(n) * elem];
    for m in sizes {
        let len = m * elem;
        let shuffled: &[u8] = match codec {
            0 => {
                let s = data.get(p..p + len).ok_or("bitshuffle data is truncated")?;
                p += len;
                s
            }
            _ => {
                let c = be32(data, p)? as usize;
                p += 4;
                let src = data.get(p..p + c).ok_or("bitshuffle block is truncated")?;
                p += c;
                let dst = &mut tmp[..len];
                let got = if codec == 2 {
                    lz4_flex::block::decompress_into(src, dst)
                        .map_err(|e| format!("bitshuffle lz4 block is corrupt: {e}"))?
                } else {
                    zstd::bulk::decompress_to_buffer(src, dst)
                        .map_err(|e| format!("bitshuffle zstd block is corrupt: {e}"))?
                };
                if got != len {
                    return Err("bitshuffle block decoded to the wrong size".into());
                }
                &tmp[..len]
            }
        };
        untranspose_bits(shuffled, m, elem, &mut out[o..o + len]);
        o += len;
    }
    let rest = total - o;
    let tail = data
        .get(p..p + rest)
        .ok_or("bitshuffle tail is truncated")?;
    out[o..].copy_from_slice(tail);
    Ok(out)
}

/// Transposes an 8×8 bit matrix held as 8 bytes (byte = row, bit = column).
fn transpose8(mut x: u64) -> u64 {
    let t = (x ^ (x >> 7)) & 0x00AA_00AA_00AA_00AA;
    x ^= t ^ (t << 7);
    let t = (x ^ (x >> 14)) & 0x0000_CCCC_0000_CCCC;
    x ^= t ^ (t << 14);
    let t = (x ^ (x >> 28)) & 0x0000_0000_F0F0_F0F0;
    x ^ t ^ (t << 28)
}

/// Bitshuffle's layout: row `8·b + j` (byte `b`, bit `j` of an element) holds bit
/// `j` of byte `b` of every element, element `i` at bit `i % 8` of byte `i / 8`.
fn untranspose_bits(shuffled: &[u8], n: usize, elem: usize, out: &mut [u8]) {
    let row = n / 8;
    for b in 0..elem {
        for g in 0..row {
            let mut x = 0u64;
            for j in 0..8 {
                x |= (shuffled[(b * 8 + j) * row + g] as u64) << (8 * j);
            }
            let t = transpose8(x).to_le_bytes();
            for k in 0..8 {
                out[(g * 8 + k) * elem + b] = t[k];
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unshuffle_inverts_shuffle() {
        let elems: Vec<u8> = (0..24).collect(); // 6 elements of 4 bytes
        let mut shuffled = vec![0; 24];
        for i in 0..6 {
            for b in 0..4 {
                shuffled[b * 6 + i] = elems[i * 4 + b];
            }
        }
        assert_eq!(unshuffle(&shuffled, 4), elems);
    }

    #[test]
    fn lzf_decodes_literals_and_overlapping_copies() {
        // "abc" literal, then copy 6 from distance 3 (overlapping), then literal "x".
        let data = [2, b'a', b'b', b'c', (4 << 5), 2, 0, b'x'];
        assert_eq!(lzf(&data, 100).unwrap(), b"abcabcabcx");
        assert!(lzf(&data, 5).is_err());
        assert!(lzf(&[0x20, 9], 100).is_err()); // distance before the start
        assert!(lzf(&[5, b'a'], 100).is_err()); // truncated literal run
    }

    #[test]
    fn bit_untranspose_inverts_the_definition() {
        let (n, elem) = (24, 3);
        let elems: Vec<u8> = (0..n * elem).map(|i| (i * 37 + 11) as u8).collect();
        let mut shuffled = vec![0u8; n * elem];
        for i in 0..n {
            for b in 0..elem {
                for j in 0..8 {
                    let bit = (elems[i * elem + b] >> j) & 1;
                    shuffled[(b * 8 + j) * (n / 8) + i / 8] |= bit << (i % 8);
                }
            }
        }
        let mut out = vec![0u8; n * elem];
        untranspose_bits(&shuffled, n, elem, &mut out);
        assert_eq!(out, elems);
    }
}
