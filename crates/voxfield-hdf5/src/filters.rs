//! The HDF5 filter pipeline, decoded in Rust.

use std::io::Read;

use hdf5_sys::h5p::{H5Pget_filter2, H5Pget_nfilters};

/// One decoding step, in the order filters were applied when writing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    Deflate,
    Shuffle,
    Fletcher32,
    Lzf,
}

fn filter_name(id: i32) -> &'static str {
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
pub fn pipeline(ds: &hdf5::Dataset) -> Result<Vec<Step>, String> {
    let dcpl = ds
        .dcpl()
        .map_err(|e| format!("cannot read the creation property list: {e}"))?;
    let id = dcpl.id();
    hdf5::sync::sync(|| {
        // SAFETY: id is a valid property list for the lifetime of `dcpl`; buffers are sized.
        let n = unsafe { H5Pget_nfilters(id) };
        let mut steps = vec![];
        for i in 0..n.max(0) as u32 {
            let (mut flags, mut nelmts, mut cfg) = (0u32, 8usize, 0u32);
            let mut cd = [0u32; 8];
            let mut name = [0i8; 64];
            let fid = unsafe {
                H5Pget_filter2(
                    id,
                    i,
                    &mut flags,
                    &mut nelmts,
                    cd.as_mut_ptr(),
                    name.len(),
                    name.as_mut_ptr(),
                    &mut cfg,
                )
            };
            steps.push(match fid {
                1 => Step::Deflate,
                2 => Step::Shuffle,
                3 => Step::Fletcher32,
                32000 => Step::Lzf,
                f => return Err(format!("unsupported HDF5 filter '{}' (id {f}); voxfield decodes deflate, shuffle, fletcher32 and lzf", filter_name(f))),
            });
        }
        Ok(steps)
    })
}

/// Undoes `steps` (skipping those whose bit is set in `mask`) on one chunk's
/// stored bytes, producing `out_len` bytes of elements of `elem` bytes.
pub fn decode(
    steps: &[Step],
    mask: u32,
    mut data: Vec<u8>,
    out_len: usize,
    elem: usize,
) -> Result<Vec<u8>, String> {
    for (i, step) in steps.iter().enumerate().rev() {
        if mask & (1 << i) != 0 {
            continue;
        }
        data = match step {
            Step::Deflate => {
                let mut out = Vec::with_capacity(out_len);
                flate2::read::ZlibDecoder::new(&data[..])
                    .read_to_end(&mut out)
                    .map_err(|e| format!("deflate data is corrupt: {e}"))?;
                out
            }
            Step::Lzf => lzf::decompress(&data, out_len)
                .map_err(|e| format!("lzf data is corrupt or truncated: {e:?}"))?,
            Step::Shuffle => unshuffle(&data, elem),
            Step::Fletcher32 => {
                if data.len() < 4 {
                    return Err("fletcher32 chunk shorter than its checksum".into());
                }
                data.truncate(data.len() - 4);
                data
            }
        };
    }
    if data.len() != out_len {
        return Err(format!(
            "decoded to {} bytes, expected {out_len}",
            data.len()
        ));
    }
    Ok(data)
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
}
