//! Chunk indexes: where each chunk of a chunked dataset is stored. The version-1
//! B-tree (h5py's default) is walked with a cache of parsed nodes; the layout
//! version 4 indexes of `libver="latest"` files (single chunk, implicit, fixed
//! array) are addressed directly. Lookups are lock-free but for the node cache.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::checksum::verify_metadata;
use crate::format::{ChunkIndexKind, Cur, H5File, Res, Stored, UNDEF};

/// Parsed B-tree nodes kept per dataset before the node cache is cleared.
const MAX_NODES: usize = 1 << 14;
/// Bytes of an unpaged fixed-array data block, at most (libhdf5 pages above
/// 2^10 entries by default; a larger unpaged block is a forged header).
const MAX_UNPAGED: u64 = 64 << 20;

pub(crate) struct Node {
    level: u8,
    /// Chunk offsets (element coordinates, `rank` per key) of keys 0..=entries, flat.
    keys: Vec<u64>,
    /// (stored size, filter mask) of keys 0..entries (meaningful in leaves).
    meta: Vec<(u32, u32)>,
    children: Vec<u64>,
}

pub(crate) enum ChunkIndex {
    BTree {
        root: u64,
        rank: usize,
        /// The chunk shape: every key is a multiple of it.
        chunk: Vec<u64>,
        nodes: Mutex<HashMap<u64, Arc<Node>>>,
    },
    Single(Option<Stored>),
    Implicit {
        addr: u64,
        chunk_bytes: u64,
    },
    Extensible(Box<crate::earray::Earray>),
    /// Version-2 B-tree: its records are read once, on first use, into a map from
    /// chunk coordinates (in chunks) to the stored chunk.
    BTreeV2 {
        header: u64,
        filtered: bool,
        chunk_bytes: u64,
        chunk: Vec<u64>,
        map: std::sync::OnceLock<Result<HashMap<Vec<u64>, Stored>, String>>,
    },
    Fixed {
        /// Address of element 0 of page 0 (or of the unpaged element list).
        first: u64,
        entry: usize,
        filtered: bool,
        /// Entries per page and bytes per page (entries and checksum).
        per_page: u64,
        page_len: u64,
        /// Per page: initialised? (one page when unpaged).
        pages: Vec<bool>,
        entries: u64,
        chunk_bytes: u64,
    },
}

impl ChunkIndex {
    /// `grid` is the number of chunks per axis, `chunk_bytes` an unfiltered chunk's size.
    pub fn open(
        f: &H5File,
        kind: &ChunkIndexKind,
        rank: usize,
        grid: &[u64],
        chunk_bytes: u64,
        filtered: bool,
        chunk: &[usize],
    ) -> Res<Self> {
        Ok(match kind {
            ChunkIndexKind::BTreeV1 { root } => {
                let index = ChunkIndex::BTree {
                    root: *root,
                    rank,
                    chunk: chunk.iter().map(|&c| c as u64).collect(),
                    nodes: Mutex::new(HashMap::new()),
                };
                if *root != UNDEF {
                    index.node(f, *root)?;
                }
                index
            }
            ChunkIndexKind::Single { addr, filtered } => {
                ChunkIndex::Single(match (addr, filtered) {
                    (&UNDEF, _) => None,
                    (a, Some((size, mask))) => Some((*a, *size, *mask)),
                    (a, None) => Some((*a, chunk_bytes, 0)),
                })
            }
            ChunkIndexKind::Implicit { addr } => ChunkIndex::Implicit {
                addr: *addr,
                chunk_bytes,
            },
            ChunkIndexKind::FixedArray { header } => fixed_array(f, *header, grid, chunk_bytes)?,
            ChunkIndexKind::BTreeV2 { header } => ChunkIndex::BTreeV2 {
                header: *header,
                filtered,
                chunk_bytes,
                chunk: chunk.iter().map(|&c| c as u64).collect(),
                map: std::sync::OnceLock::new(),
            },
            ChunkIndexKind::ExtensibleArray { header } => ChunkIndex::Extensible(Box::new(
                crate::earray::Earray::open(f, *header, chunk_bytes)?,
            )),
        })
    }

    /// The chunk at chunk-grid position `idx` (`offset` = idx · chunk shape, in
    /// elements; `linear` its row-major number); None if it was never written.
    pub fn locate(&self, f: &H5File, offset: &[u64], linear: u64) -> Res<Option<Stored>> {
        match self {
            ChunkIndex::BTree { root, .. } => self.btree_locate(f, *root, offset),
            ChunkIndex::Single(s) => Ok(*s),
            ChunkIndex::Extensible(ea) => ea.locate(f, linear),
            ChunkIndex::BTreeV2 {
                header,
                filtered,
                chunk_bytes,
                chunk,
                map,
            } => {
                let map = map
                    .get_or_init(|| btree2_map(f, *header, offset.len(), *filtered, *chunk_bytes))
                    .as_ref()
                    .map_err(|e| e.clone())?;
                let scaled: Vec<u64> = offset.iter().zip(chunk).map(|(o, c)| o / c).collect();
                Ok(map.get(&scaled).copied())
            }
            ChunkIndex::Implicit { addr, chunk_bytes } => {
                Ok((*addr != UNDEF).then(|| (addr + linear * chunk_bytes, *chunk_bytes, 0)))
            }
            ChunkIndex::Fixed {
                first,
                entry,
                filtered,
                per_page,
                page_len,
                pages,
                entries,
                chunk_bytes,
            } => {
                if linear >= *entries {
                    return Err(format!(
                        "chunk {linear} is past the fixed array's {entries} entries"
                    ));
                }
                let page = (linear / per_page) as usize;
                if !pages.get(page).copied().unwrap_or(false) {
                    return Ok(None);
                }
                let within = (linear % per_page) as usize * *entry;
                let b = if pages.len() > 1 {
                    // A page of entries ends in its own checksum; the last page
                    // holds only the entries left.
                    let at = first + page as u64 * page_len;
                    let held = (*entries - page as u64 * per_page).min(*per_page);
                    let b = f.read(at, held * *entry as u64 + 4)?;
                    verify_metadata(&b, &format!("fixed-array data block page at {at}"))?;
                    b[within..][..*entry].to_vec()
                } else {
                    f.read(first + within as u64, *entry as u64)?
                };
                let mut c = Cur::new(&b, f);
                let addr = c.addr()?;
                if addr == UNDEF {
                    return Ok(None);
                }
                if *filtered {
                    let n = *entry - f.o - 4;
                    let size = c.uint(n)?;
                    Ok(Some((addr, size, c.u32()?)))
                } else {
                    Ok(Some((addr, *chunk_bytes, 0)))
                }
            }
        }
    }

    fn node(&self, f: &H5File, addr: u64) -> Res<Arc<Node>> {
        let ChunkIndex::BTree {
            rank, chunk, nodes, ..
        } = self
        else {
            unreachable!("node() is only called on B-tree indexes")
        };
        if let Some(n) = nodes.lock().unwrap_or_else(|p| p.into_inner()).get(&addr) {
            return Ok(n.clone());
        }
        let bad =
            |m: String| format!("chunk index node at byte {addr} is corrupt or truncated: {m}");
        let head_len = 8 + 2 * f.o as u64;
        // One read covers a node of h5py's default width (64 entries); wider nodes
        // take a second read.
        let key = 8 + 8 * (*rank as u64 + 1); // size, mask, offsets (axes + element)
        let guess = head_len + 65 * key + 64 * f.o as u64;
        let mut buf = f.read_upto(addr, guess).map_err(bad)?;
        if buf.len() < head_len as usize || &buf[..4] != b"TREE" || buf[4] != 1 {
            return Err(bad("no chunk B-tree signature".into()));
        }
        let level = buf[5];
        let entries = u16::from_le_bytes([buf[6], buf[7]]) as u64;
        let need = head_len + (entries + 1) * key + entries * f.o as u64;
        if need > buf.len() as u64 {
            buf = f.read(addr, need).map_err(bad)?;
        }
        let mut c = Cur::at(&buf, head_len as usize, f);
        let entries = entries as usize;
        let mut node = Node {
            level,
            keys: Vec::with_capacity((entries + 1) * *rank),
            meta: Vec::with_capacity(entries),
            children: Vec::with_capacity(entries),
        };
        for i in 0..=entries {
            let size = c.u32().map_err(bad)?;
            let mask = c.u32().map_err(bad)?;
            let key = c.bytes(8 * (*rank + 1)).map_err(bad)?;
            let key: Vec<u64> = key
                .chunks_exact(8)
                .map(|b| u64::from_le_bytes(b.try_into().expect("8 bytes")))
                .collect();
            check_key(
                &key,
                chunk,
                &node.keys[node.keys.len().saturating_sub(*rank)..],
            )
            .map_err(|m| bad(format!("key {i}: {m}")))?;
            node.keys.extend_from_slice(&key[..*rank]);
            if i < entries {
                node.meta.push((size, mask));
                node.children.push(c.addr().map_err(bad)?);
            }
        }
        let node = Arc::new(node);
        let mut cache = nodes.lock().unwrap_or_else(|p| p.into_inner());
        if cache.len() >= MAX_NODES {
            cache.clear();
        }
        cache.insert(addr, node.clone());
        Ok(node)
    }

    fn btree_locate(&self, f: &H5File, root: u64, offset: &[u64]) -> Res<Option<Stored>> {
        if root == UNDEF {
            return Ok(None);
        }
        let rank = offset.len();
        let mut addr = root;
        for _ in 0..64 {
            let n = self.node(f, addr)?;
            let entries = n.children.len();
            let key = |k: usize| &n.keys[k * rank..(k + 1) * rank];
            // Keys are sorted: find the last one not after `offset`.
            let (mut lo, mut hi) = (0, entries);
            while lo < hi {
                let mid = (lo + hi) / 2;
                if key(mid) <= offset {
                    lo = mid + 1;
                } else {
                    hi = mid;
                }
            }
            let i = lo;
            if i == 0 {
                return Ok(None);
            }
            if n.level == 0 {
                let (size, mask) = n.meta[i - 1];
                return Ok((key(i - 1) == offset).then_some((
                    n.children[i - 1],
                    size as u64,
                    mask,
                )));
            }
            addr = n.children[i - 1];
        }
        Err("chunk index is deeper than 64 levels (corrupt)".into())
    }
}

/// A v1 B-tree chunk key must be a chunk offset (a multiple of the chunk
/// shape per axis) not before the previous key: libhdf5 refuses other keys
/// ("bad coordinate offset"); a lookup would miss them.
fn check_key(key: &[u64], chunk: &[u64], previous: &[u64]) -> Res<()> {
    let axes = &key[..key.len() - 1];
    if let Some(a) = (0..axes.len()).find(|&a| {
        chunk
            .get(a)
            .is_some_and(|&c| c == 0 || !axes[a].is_multiple_of(c))
    }) {
        return Err(format!(
            "bad coordinate offset {:?}: axis {a} is not a multiple of the chunk size {}",
            axes, chunk[a]
        ));
    }
    if !previous.is_empty() && axes < previous {
        return Err(format!(
            "offset {axes:?} comes after {previous:?} (keys out of order)"
        ));
    }
    Ok(())
}

/// Every chunk of a version-2 B-tree index, keyed by its chunk coordinates (the
/// records' scaled offsets).
fn btree2_map(
    f: &H5File,
    header: u64,
    rank: usize,
    filtered: bool,
    chunk_bytes: u64,
) -> Result<HashMap<Vec<u64>, Stored>, String> {
    let records = crate::dense::btree_records(f, header)?;
    let mut map = HashMap::with_capacity(records.len());
    for r in records {
        let mut c = Cur::new(&r, f);
        let addr = c.addr()?;
        let (size, mask) = if filtered {
            let n = r
                .len()
                .checked_sub(f.o + 4 + 8 * rank)
                .ok_or("chunk record too short")?;
            (c.uint(n)?, c.u32()?)
        } else {
            (chunk_bytes, 0)
        };
        let scaled = (0..rank).map(|_| c.uint(8)).collect::<Res<Vec<u64>>>()?;
        map.insert(scaled, (addr, size, mask));
    }
    Ok(map)
}

fn fixed_array(f: &H5File, header: u64, grid: &[u64], chunk_bytes: u64) -> Res<ChunkIndex> {
    let bad = |m: String| format!("fixed-array chunk index at byte {header}: {m}");
    let h = f
        .read(header, 8 + f.l as u64 + f.o as u64 + 4)
        .map_err(bad)?;
    if !h.starts_with(b"FAHD") {
        return Err(bad("no FAHD signature".into()));
    }
    verify_metadata(&h, &format!("fixed-array header at {header}"))?;
    let mut c = Cur::at(&h, 5, f);
    let client = c.u8()?;
    let entry = c.u8()? as usize;
    let page_bits = c.u8()? as u32;
    let entries = c.length()?;
    let block = c.addr()?;
    let want: u64 = grid.iter().product();
    if entries < want || page_bits > 32 || entry < f.o || (client == 1 && entry < f.o + 5) {
        return Err(bad(format!(
            "{entries} entries of {entry} bytes for {want} chunks (corrupt)"
        )));
    }
    let prefix = 6 + f.o as u64; // signature, version, client, header address
    let paged = entries > 1u64 << page_bits;
    let per_page = if paged { 1u64 << page_bits } else { entries };
    let (first, pages) = if block == UNDEF {
        (0, vec![])
    } else if paged {
        // The prefix and the page bitmap end in a checksum; each page has its own.
        let npages = entries.div_ceil(per_page);
        let head = f
            .read(block, prefix + npages.div_ceil(8) + 4)
            .map_err(bad)?;
        verify_metadata(&head, &format!("fixed-array data block at {block}"))?;
        let bitmap = &head[prefix as usize..];
        let pages = (0..npages as usize)
            .map(|p| bitmap[p / 8] & (0x80 >> (p % 8)) != 0)
            .collect();
        (block + prefix + npages.div_ceil(8) + 4, pages)
    } else {
        // Unpaged: at most 2^page_bits entries, read once to check the checksum.
        let len = entries
            .checked_mul(entry as u64)
            .filter(|&n| n <= MAX_UNPAGED)
            .ok_or_else(|| bad(format!("{entries} entries in one unpaged block (corrupt)")))?;
        let whole = f.read(block, prefix + len + 4).map_err(bad)?;
        verify_metadata(&whole, &format!("fixed-array data block at {block}"))?;
        (block + prefix, vec![true])
    };
    Ok(ChunkIndex::Fixed {
        first,
        entry,
        filtered: client == 1,
        per_page,
        page_len: per_page * entry as u64 + 4,
        pages,
        entries,
        chunk_bytes,
    })
}
