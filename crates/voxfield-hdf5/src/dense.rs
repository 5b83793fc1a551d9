//! Dense link storage of new-style groups (many links, or libver="latest" with
//! creation order): the links are link messages in a fractal heap, found through
//! the group's version-2 B-tree name index. Every record of the B-tree is visited
//! (a listing); each heap ID is resolved to its bytes in a direct block, whose
//! checksum (when the heap says its direct blocks carry one) is verified once.

use std::collections::HashSet;

use crate::checksum::{verify_embedded, verify_metadata};
use crate::format::{Cur, H5File, Res, UNDEF};

/// The link messages (raw bytes) of a group with dense storage.
pub(crate) fn link_messages(f: &H5File, heap: u64, name_index: u64) -> Res<Vec<Vec<u8>>> {
    let mut h = Heap::open(f, heap)?;
    let ids = btree_records(f, name_index)?;
    ids.iter()
        .map(|rec| {
            // Name index records: a 4-byte hash, then the heap ID.
            let id = rec.get(4..).ok_or("B-tree record shorter than its hash")?;
            h.object(f, id)
        })
        .collect()
}

struct Heap {
    id_len: usize,
    filtered: bool,
    /// Direct blocks carry a checksum (flag bit 1; libhdf5 sets it for groups).
    checksummed: bool,
    /// Direct blocks whose checksum has been verified.
    verified: HashSet<u64>,
    width: u64,
    start_block: u64,
    max_direct: u64,
    /// Bytes of a heap offset, and of an object length in a managed heap ID.
    off_size: usize,
    len_size: usize,
    root: u64,
    rows: u64,
    /// The root indirect block's direct-block addresses (when `rows` > 0).
    entries: Vec<u64>,
}

fn log2(x: u64) -> u32 {
    63 - x.max(1).leading_zeros()
}

/// Bytes needed to encode `x` (HDF5's H5VM_limit_enc_size).
fn enc_size(x: u64) -> usize {
    (log2(x) / 8 + 1) as usize
}

impl Heap {
    fn open(f: &H5File, addr: u64) -> Res<Self> {
        let b = f.read_upto(addr, 256)?;
        if !b.starts_with(b"FRHP") {
            return Err(format!(
                "fractal heap at {addr} has no FRHP signature (corrupt)"
            ));
        }
        let mut c = Cur::at(&b, 5, f);
        let id_len = c.u16()? as usize;
        let filters = c.u16()?;
        let flags = c.u8()?;
        let max_managed = c.u32()? as u64;
        c.length()?; // next huge id
        c.addr()?; // huge object B-tree
        c.length()?; // free space
        c.addr()?; // free space manager
        for _ in 0..8 {
            c.length()?; // managed / allocated space, iterator, object counts and sizes
        }
        let width = c.u16()? as u64;
        let start_block = c.length()?;
        let max_direct = c.length()?;
        let max_heap_bits = c.u16()? as usize;
        c.u16()?; // starting rows
        let root = c.addr()?;
        let rows = c.u16()? as u64;
        if width == 0 || start_block == 0 || max_direct < start_block || max_heap_bits > 64 {
            return Err("fractal heap header is corrupt".into());
        }
        // A filtered heap adds its root block's size, filter mask and pipeline.
        let end = c.p
            + if filters > 0 {
                f.l + 4 + filters as usize
            } else {
                0
            };
        // The header and its checksum are usually inside the bytes read above.
        let n = end + 4;
        let again;
        let head = match b.get(..n) {
            Some(h) => h,
            None => {
                again = f.read(addr, n as u64)?;
                &again[..]
            }
        };
        verify_metadata(head, &format!("fractal heap header at {addr}"))?;
        let dir_off = log2(max_direct).div_ceil(8) as usize;
        let mut heap = Heap {
            id_len,
            filtered: filters > 0,
            checksummed: flags & 2 != 0,
            verified: HashSet::new(),
            width,
            start_block,
            max_direct,
            off_size: max_heap_bits.div_ceil(8),
            len_size: dir_off.min(enc_size(max_managed)),
            root,
            rows,
            entries: vec![],
        };
        if rows > 0 && root != UNDEF && !heap.filtered {
            heap.entries = heap.root_entries(f)?;
        }
        Ok(heap)
    }

    /// The direct-block addresses of the root indirect block, its checksum verified.
    fn root_entries(&self, f: &H5File) -> Res<Vec<u64>> {
        let direct_rows = (log2(self.max_direct) - log2(self.start_block) + 2) as u64;
        if self.rows > direct_rows {
            return Err("fractal heaps with nested indirect blocks are not supported".into());
        }
        let n = (self.rows * self.width) as usize;
        let prefix = 5 + f.o + self.off_size;
        let b = f.read(self.root, (prefix + n * f.o + 4) as u64)?;
        if !b.starts_with(b"FHIB") {
            return Err(format!(
                "fractal heap indirect block at {} has no FHIB signature (corrupt)",
                self.root
            ));
        }
        verify_metadata(&b, &format!("fractal heap indirect block at {}", self.root))?;
        let mut c = Cur::at(&b, prefix, f);
        (0..n).map(|_| c.addr()).collect()
    }

    /// The bytes of the object a heap ID names.
    fn object(&mut self, f: &H5File, id: &[u8]) -> Res<Vec<u8>> {
        let id = id.get(..self.id_len).ok_or("heap ID is truncated")?;
        match (id[0] >> 4) & 3 {
            0 => {}
            2 => {
                let n = (id[0] & 0x0f) as usize + 1;
                return id
                    .get(1..1 + n)
                    .map(<[u8]>::to_vec)
                    .ok_or_else(|| "tiny heap object is truncated".into());
            }
            _ => return Err("links stored as huge heap objects are not supported".into()),
        }
        if self.filtered {
            return Err("fractal heaps with I/O filters are not supported".into());
        }
        let mut c = Cur::new(&id[1..], f);
        let off = c.uint(self.off_size)?;
        let len = c.uint(self.len_size)?;
        let (block, block_off, size) = self.direct_block(off)?;
        let inside = off - block_off;
        if inside.checked_add(len).is_none_or(|end| end > size) {
            return Err(format!(
                "heap object at offset {off} ({len} bytes) overruns its direct block (corrupt)"
            ));
        }
        if self.checksummed && !self.verified.contains(&block) {
            self.verify_direct(f, block, size)?;
        }
        f.read(block + inside, len)
    }

    /// Verifies the checksum of the direct block of `size` bytes at `addr`.
    fn verify_direct(&mut self, f: &H5File, addr: u64, size: u64) -> Res<()> {
        if size > self.max_direct {
            return Err(
                "fractal heap direct block is larger than the heap allows (corrupt)".into(),
            );
        }
        let b = f.read(addr, size)?;
        if !b.starts_with(b"FHDB") {
            return Err(format!(
                "fractal heap direct block at {addr} has no FHDB signature (corrupt)"
            ));
        }
        let at = 5 + f.o + self.off_size;
        verify_embedded(&b, at, &format!("fractal heap direct block at {addr}"))?;
        self.verified.insert(addr);
        Ok(())
    }

    /// Size of the blocks of row `r` of an indirect block.
    fn row_size(&self, r: u64) -> u64 {
        self.start_block << r.saturating_sub(1).min(62)
    }

    /// The direct block holding heap offset `off`: its address, heap offset and size.
    fn direct_block(&self, off: u64) -> Res<(u64, u64, u64)> {
        if self.root == UNDEF {
            return Err("the group's heap is empty".into());
        }
        if self.rows == 0 {
            return Ok((self.root, 0, self.start_block));
        }
        let mut start = 0u64;
        for r in 0..self.rows {
            let size = self.row_size(r);
            let row = size.saturating_mul(self.width);
            if off < start.saturating_add(row) {
                let col = (off - start) / size;
                let entry = (r * self.width + col) as usize;
                let addr = *self
                    .entries
                    .get(entry)
                    .ok_or("fractal heap indirect block is corrupt")?;
                return Ok((addr, start + col * size, size));
            }
            start = start.saturating_add(row);
        }
        Err(format!("heap offset {off} is outside the heap"))
    }
}

/// Every record of the version-2 B-tree at `addr`, in key order.
pub(crate) fn btree_records(f: &H5File, addr: u64) -> Res<Vec<Vec<u8>>> {
    let b = f.read_upto(addr, 64)?;
    if !b.starts_with(b"BTHD") {
        return Err(format!("B-tree at {addr} has no BTHD signature (corrupt)"));
    }
    let mut c = Cur::at(&b, 6, f);
    let node_size = c.u32()? as u64;
    let rec = c.u16()? as usize;
    let depth = c.u16()? as usize;
    c.skip(2)?;
    let root = c.addr()?;
    let nroot = c.u16()? as u64;
    c.length()?; // records in the whole tree
    let head = b.get(..c.p + 4).ok_or("B-tree header is truncated")?;
    verify_metadata(head, &format!("B-tree v2 header at {addr}"))?;
    if rec == 0 || node_size < 16 || depth > 16 {
        return Err("B-tree header is corrupt".into());
    }
    // Per depth: max records of a node, bytes of its record count and of its
    // subtree's total count (HDF5's node_info table).
    let mut max_nrec = vec![(node_size - 10) / rec as u64];
    let mut cum = vec![max_nrec[0]];
    for u in 1..=depth {
        let ptr = f.o + enc_size(max_nrec[u - 1]) + if u > 1 { enc_size(cum[u - 1]) } else { 0 };
        let n = (node_size - 10 - ptr as u64) / (rec + ptr) as u64;
        max_nrec.push(n);
        cum.push((n + 1) * cum[u - 1] + n);
    }
    let mut out = vec![];
    let mut stack = vec![(root, nroot, depth)];
    while let Some((node, n, d)) = stack.pop() {
        if out.len() > 1 << 22 {
            return Err("B-tree is too large (corrupt)".into());
        }
        if node == UNDEF {
            continue;
        }
        let b = f.read(node, node_size)?;
        let sig: &[u8] = if d == 0 { b"BTLF" } else { b"BTIN" };
        if !b.starts_with(sig) {
            return Err(format!("B-tree node at {node} is corrupt"));
        }
        let mut c = Cur::at(&b, 6, f);
        let recs: Vec<Vec<u8>> = (0..n)
            .map(|_| c.bytes(rec).map(<[u8]>::to_vec))
            .collect::<Res<_>>()?;
        let mut kids = vec![];
        for _ in 0..if d == 0 { 0 } else { n + 1 } {
            let a = c.addr()?;
            let k = c.uint(enc_size(max_nrec[d - 1]))?;
            if d > 1 {
                c.uint(enc_size(cum[d - 1]))?;
            }
            kids.push((a, k, d - 1));
        }
        let node_bytes = b.get(..c.p + 4).ok_or("B-tree node is truncated")?;
        verify_metadata(node_bytes, &format!("B-tree v2 node at {node}"))?;
        if d == 0 {
            out.extend(recs);
            continue;
        }
        // In order: child 0, record 0, child 1, ... (records are only collected).
        out.extend(recs);
        stack.extend(kids.into_iter().rev());
    }
    Ok(out)
}
