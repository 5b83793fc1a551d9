//! The two checksums HDF5 defines: Jenkins' lookup3 (`hashlittle`, seed 0) on
//! every version-2 metadata structure, and Fletcher-32 (over big-endian 16-bit
//! words) on chunks written with the fletcher32 filter. Written here because
//! both are a few lines and no maintained crate computes HDF5's exact variants
//! (libhdf5's H5checksum.c is the reference; the tests check them against
//! files h5py writes).

/// Bob Jenkins' lookup3 `hashlittle(data, len, 0)`, byte by byte, as libhdf5's
/// `H5_checksum_lookup3`.
pub(crate) fn lookup3(data: &[u8]) -> u32 {
    let seed = 0xdead_beef_u32.wrapping_add(data.len() as u32);
    let (mut a, mut b, mut c) = (seed, seed, seed);
    let word = |w: &[u8]| {
        let mut x = [0u8; 4];
        x[..w.len()].copy_from_slice(w);
        u32::from_le_bytes(x)
    };
    let mut rest = data;
    while rest.len() > 12 {
        a = a.wrapping_add(word(&rest[0..4]));
        b = b.wrapping_add(word(&rest[4..8]));
        c = c.wrapping_add(word(&rest[8..12]));
        mix(&mut a, &mut b, &mut c);
        rest = &rest[12..];
    }
    if rest.is_empty() {
        return c;
    }
    let mut tail = [0u8; 12];
    tail[..rest.len()].copy_from_slice(rest);
    a = a.wrapping_add(word(&tail[0..4]));
    b = b.wrapping_add(word(&tail[4..8]));
    c = c.wrapping_add(word(&tail[8..12]));
    fin(&mut a, &mut b, &mut c);
    c
}

fn mix(a: &mut u32, b: &mut u32, c: &mut u32) {
    *a = a.wrapping_sub(*c) ^ c.rotate_left(4);
    *c = c.wrapping_add(*b);
    *b = b.wrapping_sub(*a) ^ a.rotate_left(6);
    *a = a.wrapping_add(*c);
    *c = c.wrapping_sub(*b) ^ b.rotate_left(8);
    *b = b.wrapping_add(*a);
    *a = a.wrapping_sub(*c) ^ c.rotate_left(16);
    *c = c.wrapping_add(*b);
    *b = b.wrapping_sub(*a) ^ a.rotate_left(19);
    *a = a.wrapping_add(*c);
    *c = c.wrapping_sub(*b) ^ b.rotate_left(4);
    *b = b.wrapping_add(*a);
}

fn fin(a: &mut u32, b: &mut u32, c: &mut u32) {
    *c = (*c ^ *b).wrapping_sub(b.rotate_left(14));
    *a = (*a ^ *c).wrapping_sub(c.rotate_left(11));
    *b = (*b ^ *a).wrapping_sub(a.rotate_left(25));
    *c = (*c ^ *b).wrapping_sub(b.rotate_left(16));
    *a = (*a ^ *c).wrapping_sub(c.rotate_left(4));
    *b = (*b ^ *a).wrapping_sub(a.rotate_left(14));
    *c = (*c ^ *b).wrapping_sub(b.rotate_left(24));
}

/// Checks the lookup3 checksum stored (little-endian) in the last 4 bytes of
/// `block`, a metadata structure named `what` (e.g. "B-tree v2 header at 1432").
pub(crate) fn verify_metadata(block: &[u8], what: &str) -> Result<(), String> {
    let Some(split) = block.len().checked_sub(4) else {
        return Err(format!("{what} is shorter than its checksum (corrupt)"));
    };
    let stored = u32::from_le_bytes(block[split..].try_into().expect("4 bytes"));
    let computed = lookup3(&block[..split]);
    if stored != computed {
        return Err(format!(
            "{what}: incorrect metadata checksum (stored {stored:#010x}, computed {computed:#010x}): the file is corrupt"
        ));
    }
    Ok(())
}

/// Checks the lookup3 checksum stored at `block[at..at + 4]`, computed over the
/// whole block with those four bytes taken as zero (fractal heap direct blocks).
pub(crate) fn verify_embedded(block: &[u8], at: usize, what: &str) -> Result<(), String> {
    let Some(field) = block.get(at..at + 4) else {
        return Err(format!("{what} is shorter than its checksum (corrupt)"));
    };
    let stored = u32::from_le_bytes(field.try_into().expect("4 bytes"));
    let mut zeroed = block.to_vec();
    zeroed[at..at + 4].fill(0);
    let computed = lookup3(&zeroed);
    if stored != computed {
        return Err(format!(
            "{what}: incorrect metadata checksum (stored {stored:#010x}, computed {computed:#010x}): the file is corrupt"
        ));
    }
    Ok(())
}

/// HDF5's Fletcher-32 of `data` (16-bit words read big-endian; an odd last
/// byte is the high byte of a final word).
pub(crate) fn fletcher32(data: &[u8]) -> u32 {
    let (mut s1, mut s2) = (0u32, 0u32);
    let mut words = data.chunks_exact(2);
    let odd = words.remainder().first().copied();
    // Blocks of 360 words keep both sums below 2^32 before they are folded.
    loop {
        let mut n = 0;
        for w in words.by_ref().take(360) {
            s1 += u32::from(w[0]) << 8 | u32::from(w[1]);
            s2 += s1;
            n += 1;
        }
        if n == 0 {
            break;
        }
        s1 = (s1 & 0xffff) + (s1 >> 16);
        s2 = (s2 & 0xffff) + (s2 >> 16);
    }
    if let Some(b) = odd {
        s1 += u32::from(b) << 8;
        s2 += s1;
        s1 = (s1 & 0xffff) + (s1 >> 16);
        s2 = (s2 & 0xffff) + (s2 >> 16);
    }
    s1 = (s1 & 0xffff) + (s1 >> 16);
    s2 = (s2 & 0xffff) + (s2 >> 16);
    (s2 << 16) | s1
}

/// Strips and checks the Fletcher-32 checksum the filter appends to a chunk.
/// libhdf5 also accepts the checksum with the bytes of each half swapped, as
/// HDF5 1.6 wrote it; so does this.
pub(crate) fn strip_fletcher32(mut data: Vec<u8>) -> Result<Vec<u8>, String> {
    let Some(split) = data.len().checked_sub(4) else {
        return Err("a fletcher32 chunk is shorter than its checksum (corrupt)".into());
    };
    let stored = u32::from_le_bytes(data[split..].try_into().expect("4 bytes"));
    data.truncate(split);
    let sum = fletcher32(&data);
    let b = sum.to_le_bytes();
    let swapped = u32::from_le_bytes([b[1], b[0], b[3], b[2]]);
    if stored != sum && stored != swapped {
        return Err(format!(
            "data error detected by the Fletcher-32 checksum (stored {stored:#010x}, computed {sum:#010x}): the chunk is corrupt"
        ));
    }
    Ok(data)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookup3_matches_jenkins_published_values() {
        // From lookup3.c's driver5(): hashlittle("", 0, 0) and
        // hashlittle("Four score and seven years ago", 30, 0).
        assert_eq!(lookup3(b""), 0xdeadbeef);
        assert_eq!(lookup3(b"Four score and seven years ago"), 0x17770551);
    }

    #[test]
    fn fletcher32_of_known_words() {
        // Two words 0x0102, 0x0304: s1 = 0x0406, s2 = 0x0102 + 0x0406.
        assert_eq!(fletcher32(&[1, 2, 3, 4]), (0x0508 << 16) | 0x0406);
        // An odd byte is the high half of a last word.
        assert_eq!(fletcher32(&[1]), (0x0100 << 16) | 0x0100);
    }
}
