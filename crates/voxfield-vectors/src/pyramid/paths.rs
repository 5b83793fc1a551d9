//! A streamed level's manifests: each kept object's path through the new
//! metanodes, found unit by unit in pieces, sorted out by object row in a
//! [`Spill`] and joined in manifest order a chunk of rows at a time.

use std::path::Path;

use voxfield_core::{Error, Result};

use crate::manifests::{write_object_index_by_chunks, EMPTY_MANIFEST, LEVEL_ZSTD, MANIFEST_ROWS};
use crate::spill::Spill;

/// Object rows per spill bucket of pieces: one manifest chunk, so a chunk
/// of manifests is made from one bucket.
const ROWS_PER_BUCKET: u32 = MANIFEST_ROWS as u32;

/// What one unit found of the kept objects' paths: records of (object row,
/// first manifest place, block count, blocks as a manifest stores them),
/// consecutive places of one object merged into one record.
pub(super) struct Pieces {
    /// The unit's new chunks, ascending.
    pub(super) chunks: Vec<Vec<i64>>,
    records: Vec<u8>,
    /// The last record's row, last place and where its header starts.
    last: Option<(u32, u32, usize)>,
}

/// Bytes of one manifest block (chunk, mode 0, fragment).
fn block_len(dims: usize) -> usize {
    8 * dims + 9
}

impl Pieces {
    pub(super) fn new(chunks: Vec<Vec<i64>>) -> Pieces {
        Pieces {
            chunks,
            records: vec![],
            last: None,
        }
    }

    /// Files the metanodes `path` (ids in vertex order, each at `at[id]`:
    /// chunk in `chunks`, row) of manifest place `seq` of object `row`,
    /// consecutive repeats collapsed.
    pub(super) fn add(
        &mut self,
        row: u32,
        seq: u32,
        path: impl Iterator<Item = usize>,
        at: &[(u32, u32)],
    ) {
        let dims = self.chunks.first().map_or(0, Vec::len);
        let bl = block_len(dims);
        let start = match self.last {
            Some((r, s, h)) if r == row && s.checked_add(1) == Some(seq) => h,
            _ => {
                let h = self.records.len();
                self.records.extend(row.to_le_bytes());
                self.records.extend(seq.to_le_bytes());
                self.records.extend(0u32.to_le_bytes());
                h
            }
        };
        self.last = Some((row, seq, start));
        let mut block = Vec::with_capacity(bl);
        for id in path {
            let (k, r) = at[id];
            block.clear();
            self.chunks[k as usize]
                .iter()
                .for_each(|c| block.extend(c.to_le_bytes()));
            block.push(0);
            block.extend((r as i64).to_le_bytes());
            let n = u32::from_le_bytes(self.records[start + 8..start + 12].try_into().expect("4"));
            if n > 0 && self.records[self.records.len() - bl..] == block[..] {
                continue;
            }
            self.records.extend_from_slice(&block);
            self.records[start + 8..start + 12].copy_from_slice(&(n + 1).to_le_bytes());
        }
    }

    /// Moves the records into `spill`, bucketed by object row.
    pub(super) fn spill_into(self, spill: &mut Spill<u32>) -> Result<()> {
        let bl = block_len(self.chunks.first().map_or(0, Vec::len));
        let mut at = 0;
        while at < self.records.len() {
            let row = u32::from_le_bytes(self.records[at..at + 4].try_into().expect("4"));
            let n = u32::from_le_bytes(self.records[at + 8..at + 12].try_into().expect("4"));
            let end = at + 12 + n as usize * bl;
            spill.push(row / ROWS_PER_BUCKET, &self.records[at..end])?;
            at = end;
        }
        Ok(())
    }
}

/// A spill for pieces of a level built in `dir`.
pub(super) fn pieces_spill(dir: &Path, budget: usize) -> Spill<u32> {
    Spill::new(dir.join(".paths"), budget, |b| format!("rows-{b}"))
}

/// Writes the level's `object_index` at `dir`: row `r` names `ids[r]`, its
/// manifest its pieces in manifest order, consecutive repeats collapsed
/// across pieces too (an object dropped here: an empty manifest).
pub(super) fn write_paths(dir: &Path, dims: usize, ids: &[i64], pieces: Spill<u32>) -> Result<()> {
    let bl = block_len(dims);
    // The bucket in hand: its number, records, and (row, place, start) sorted.
    type Bucket = (u32, Vec<u8>, Vec<(u32, u32, usize)>);
    let mut held: Option<Bucket> = None;
    write_object_index_by_chunks(dir, dims, ids, Some(&LEVEL_ZSTD), |rows| {
        let mut out = vec![EMPTY_MANIFEST.to_vec(); rows.len()];
        let bucket = rows.start as u32 / ROWS_PER_BUCKET;
        if held.as_ref().is_none_or(|h| h.0 != bucket) {
            let bytes = pieces.take(&bucket)?;
            let mut index = vec![];
            let mut at = 0;
            while at + 12 <= bytes.len() {
                let word = |i: usize| u32::from_le_bytes(bytes[i..i + 4].try_into().expect("4"));
                index.push((word(at), word(at + 4), at));
                at += 12 + word(at + 8) as usize * bl;
            }
            if at != bytes.len() {
                return Err(Error::format(dir, "a spilled path record is cut short"));
            }
            index.sort_unstable();
            held = Some((bucket, bytes, index));
        }
        let (_, bytes, index) = held.as_ref().expect("just filled");
        let first = index.partition_point(|p| (p.0 as usize) < rows.start);
        let mut i = first;
        while i < index.len() && (index[i].0 as usize) < rows.end {
            let row = index[i].0;
            let mut m = vec![0u8; 4];
            let mut blocks: u32 = 0;
            while i < index.len() && index[i].0 == row {
                let at = index[i].2;
                let n = u32::from_le_bytes(bytes[at + 8..at + 12].try_into().expect("4"));
                for b in bytes[at + 12..at + 12 + n as usize * bl].chunks_exact(bl) {
                    if blocks > 0 && m[m.len() - bl..] == *b {
                        continue;
                    }
                    m.extend_from_slice(b);
                    blocks += 1;
                }
                i += 1;
            }
            m[..4].copy_from_slice(&blocks.to_le_bytes());
            out[row as usize - rows.start] = m;
        }
        Ok(std::borrow::Cow::Owned(out))
    })?;
    pieces.remove()
}
