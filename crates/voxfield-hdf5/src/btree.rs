//! A direct reader of the version-1 B-tree that indexes a chunked dataset's chunks
//! (the layout h5py writes by default). libhdf5 1.10 can only locate chunks under
//! its global lock (or by scanning them all); reading the tree ourselves makes
//! chunk lookup and reads lock-free and parallel: a lookup reads two or three
//! small nodes (cached), then the chunk with one positioned read.
//!
//! Anything unexpected (another superblock layout, object header version 2, a
//! layout message other than version 3, another index type) makes `open` return
//! None and the caller falls back to libhdf5's own chunk reads.

use std::collections::HashMap;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::{Arc, Mutex};

use voxfield_core::le::{u16_at, u32_at, u64_at};

const UNDEF: u64 = u64::MAX;
/// Parsed nodes kept per dataset before the node cache is cleared.
const MAX_NODES: usize = 1 << 14;

struct Node {
    level: u8,
    /// Chunk offsets (element coordinates, one per array axis) of keys 0..=entries.
    keys: Vec<Vec<u64>>,
    /// (stored size, filter mask) of keys 0..entries (meaningful in leaves).
    meta: Vec<(u32, u32)>,
    children: Vec<u64>,
}

pub(crate) struct ChunkIndex {
    file: File,
    root: u64,
    rank: usize,
    nodes: Mutex<HashMap<u64, Arc<Node>>>,
}

fn read(file: &File, at: u64, len: usize) -> Option<Vec<u8>> {
    let mut b = vec![0u8; len];
    file.read_exact_at(&mut b, at).ok()?;
    Some(b)
}

/// Reads up to `buf.len()` bytes at `at`; returns how many were read.
fn read_up_to(file: &File, at: u64, buf: &mut [u8]) -> usize {
    let mut n = 0;
    while n < buf.len() {
        match file.read_at(&mut buf[n..], at + n as u64) {
            Ok(0) | Err(_) => break,
            Ok(k) => n += k,
        }
    }
    n
}

/// The object header address of a dataset.
fn header_address(ds: &hdf5::Dataset) -> Option<u64> {
    let id = ds.id();
    hdf5::sync::sync(|| {
        let mut info = hdf5_sys::h5o::H5O_info1_t::default();
        // SAFETY: id is a valid dataset; info is a properly sized out-struct. Only
        // the basic fields: the others make libhdf5 walk the whole chunk index.
        let status =
            unsafe { hdf5_sys::h5o::H5Oget_info2(id, &mut info, hdf5_sys::h5o::H5O_INFO_BASIC) };
        (status >= 0).then_some(info.addr)
    })
}

/// Finds the data layout message (type 8) in a version-1 object header,
/// following continuation messages; returns its bytes.
fn layout_message(file: &File, addr: u64) -> Option<Vec<u8>> {
    let prefix = read(file, addr, 16)?;
    if prefix[0] != 1 {
        return None; // version 2 object headers ("OHDR") are left to libhdf5
    }
    let mut blocks = vec![(addr + 16, u32_at(&prefix, 8)? as u64)];
    let mut budget = 64; // continuation blocks followed at most
    while let Some((start, len)) = blocks.pop() {
        budget -= 1;
        if budget == 0 || len > 1 << 20 {
            return None;
        }
        let b = read(file, start, len as usize)?;
        let mut p = 0usize;
        while p + 8 <= b.len() {
            let (kind, size) = (u16_at(&b, p)?, u16_at(&b, p + 2)? as usize);
            let data = b.get(p + 8..p + 8 + size)?;
            match kind {
                0x0008 => return Some(data.to_vec()),
                0x0010 => blocks.push((u64_at(data, 0)?, u64_at(data, 8)?)),
                _ => {}
            }
            p += 8 + size;
        }
    }
    None
}

impl ChunkIndex {
    /// Reads the index root of `ds` in `path`, or None if this reader does not
    /// apply (the caller then uses libhdf5). Some(None) means no chunk was written.
    pub(crate) fn open(path: &Path, ds: &hdf5::Dataset, chunk: &[usize]) -> Option<Self> {
        let file = File::open(path).ok()?;
        let sb = read(&file, 0, 16)?;
        if &sb[..8] != b"\x89HDF\r\n\x1a\n" {
            return None;
        }
        let offsets = if sb[8] <= 1 { sb[13] } else { sb[9] };
        if offsets != 8 {
            return None;
        }
        let layout = layout_message(&file, header_address(ds)?)?;
        let rank = chunk.len();
        if layout.first() != Some(&3)
            || layout.get(1) != Some(&2)
            || layout.get(2).map(|&d| d as usize) != Some(rank + 1)
        {
            return None; // not a version-3 chunked layout of this rank
        }
        let root = u64_at(&layout, 3)?;
        for (a, &c) in chunk.iter().enumerate() {
            if u32_at(&layout, 11 + 4 * a)? as usize != c {
                return None;
            }
        }
        let index = Self {
            file,
            root,
            rank,
            nodes: Mutex::new(HashMap::new()),
        };
        if root != UNDEF && index.node(root).is_err() {
            return None;
        }
        Some(index)
    }

    fn node(&self, addr: u64) -> Result<Arc<Node>, String> {
        if let Some(n) = self
            .nodes
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&addr)
        {
            return Ok(n.clone());
        }
        let bad = || format!("chunk index node at byte {addr} is corrupt or truncated");
        // One read covers a node of h5py's default width (64 entries); wider nodes
        // take a second read.
        let key = 8 + 8 * (self.rank + 1); // size, mask, offsets (axes + element)
        let mut buf = vec![0u8; 24 + 65 * key + 64 * 8];
        let got = read_up_to(&self.file, addr, &mut buf);
        let h = buf.get(..24).filter(|_| got >= 24).ok_or_else(bad)?;
        if &h[..4] != b"TREE" || h[4] != 1 {
            return Err(bad());
        }
        let level = h[5];
        let entries = u16_at(h, 6).ok_or_else(bad)? as usize;
        let need = 24 + (entries + 1) * key + entries * 8;
        if need > got {
            buf = read(&self.file, addr, need).ok_or_else(bad)?;
        }
        let body = &buf[24..need];
        let mut node = Node {
            level,
            keys: vec![],
            meta: vec![],
            children: vec![],
        };
        for i in 0..=entries {
            let k = i * (key + 8);
            let off: Vec<u64> = (0..self.rank)
                .map(|a| u64_at(body, k + 8 + 8 * a).unwrap_or(0))
                .collect();
            node.keys.push(off);
            if i < entries {
                node.meta.push((
                    u32_at(body, k).ok_or_else(bad)?,
                    u32_at(body, k + 4).ok_or_else(bad)?,
                ));
                node.children.push(u64_at(body, k + key).ok_or_else(bad)?);
            }
        }
        let node = Arc::new(node);
        let mut cache = self.nodes.lock().unwrap_or_else(|p| p.into_inner());
        if cache.len() >= MAX_NODES {
            cache.clear();
        }
        cache.insert(addr, node.clone());
        Ok(node)
    }

    /// The file address, stored size and filter mask of the chunk starting at
    /// element `offset`; None if it was never written.
    pub(crate) fn locate(&self, offset: &[u64]) -> Result<Option<(u64, u32, u32)>, String> {
        if self.root == UNDEF {
            return Ok(None);
        }
        let mut addr = self.root;
        for _ in 0..64 {
            let n = self.node(addr)?;
            let entries = n.children.len();
            let i = n.keys[..entries].partition_point(|k| k.as_slice() <= offset);
            if i == 0 {
                return Ok(None);
            }
            if n.level == 0 {
                return Ok((n.keys[i - 1] == offset)
                    .then(|| (n.children[i - 1], n.meta[i - 1].0, n.meta[i - 1].1)));
            }
            addr = n.children[i - 1];
        }
        Err("chunk index is deeper than 64 levels (corrupt)".into())
    }

    pub(crate) fn read_at(&self, addr: u64, size: u32) -> Result<Vec<u8>, String> {
        read(&self.file, addr, size as usize).ok_or_else(|| {
            format!("cannot read {size} bytes at byte {addr} (is the file truncated?)")
        })
    }
}
