//! Cross-level links read back: each vertex's parent metanode one level
//! coarser (the `links/+1` family a pyramid writes, one record per fine
//! vertex), and each metanode's children — in the row order `read_points`
//! gives both levels (chunks ascending, rows as stored), so a level's
//! arrays and its neighbour's line up.

use std::collections::HashMap;

use voxfield_core::{Error, Result};

use crate::cells::CellArray;
use crate::graphs::decode_ragged;
use crate::store::{itemsize, Store};

/// Per chunk: its first row in read order and its row count.
type RowStarts = HashMap<Vec<i64>, (u64, u64)>;

impl Store {
    /// Per chunk of `level`, its first row in read order and its row count;
    /// the level's vertex count.
    fn row_starts(&self, level: u64) -> Result<(RowStarts, u64)> {
        let v = CellArray::open_at(
            &self.loc.join(&level.to_string()).join("vertices"),
            self.dims,
        )?;
        let dtype = v.attrs["dtype"].as_str().unwrap_or("float32").to_string();
        let row = self.dims * itemsize(&dtype).unwrap_or(4);
        let mut chunks = v.nonempty.clone();
        chunks.sort();
        chunks.dedup();
        let mut out = HashMap::new();
        let mut at = 0u64;
        for c in chunks {
            let n = (v.read(&c)?.len() / row) as u64;
            out.insert(c, (at, n));
            at += n;
        }
        Ok((out, at))
    }

    /// For every vertex of `level`, the row of its parent at `level + 1`
    /// (−1 for a vertex with none, such as one of a thinned-out object).
    pub fn parents(&self, level: u64) -> Result<Vec<i64>> {
        let fine = self.level(level)?;
        let coarse = self.level(level + 1).map_err(|_| {
            Error::invalid(format!(
                "{}: level {level} is the coarsest; it has no parents",
                self.path.display()
            ))
        })?;
        let family = self.loc.join(&level.to_string()).join("links").join("+1");
        if !family.exists()? {
            return Err(Error::format(
                family.path(),
                "no +1 cross-level links: the pyramid was built with --links none",
            ));
        }
        let (fine_rows, n) = self.row_starts(level)?;
        let (coarse_rows, _) = self.row_starts(level + 1)?;
        // A chunk's anchor one level up: floor(c · r_fine / r_coarse), r the
        // level's chunk size in root chunks.
        let ratio: Vec<(i64, i64)> = (0..self.dims)
            .map(|a| {
                let r = |cs: &[f64]| (cs[a] / self.chunk_shape[a]).round().max(1.0) as i64;
                (r(&fine.chunk_shape), r(&coarse.chunk_shape))
            })
            .collect();
        let mut parent = vec![-1i64; n as usize];
        let names = family.children()?.ok_or_else(|| {
            Error::format(
                family.path(),
                "the server cannot list the link arrays (no index page, no consolidated metadata)",
            )
        })?;
        for name in names {
            let offset: Vec<i64> = name
                .split('.')
                .map(|p| p.strip_prefix('+').unwrap_or(p).parse().ok())
                .collect::<Option<_>>()
                .filter(|o: &Vec<i64>| o.len() == self.dims)
                .ok_or_else(|| Error::format(family.path().join(&name), "not an offsets name"))?;
            let arr = CellArray::open_at(&family.join(&name), self.dims)?;
            for src in &arr.nonempty {
                let bad = |m: String| Error::format(&arr.path, format!("cell {src:?}: {m}"));
                let Some(&(f0, fn_)) = fine_rows.get(src) else {
                    return Err(bad("links a chunk with no vertices".into()));
                };
                let dst: Vec<i64> = (0..self.dims)
                    .map(|a| {
                        src[a]
                            .checked_mul(ratio[a].0)
                            .map(|x| x.div_euclid(ratio[a].1))
                            .and_then(|x| x.checked_add(offset[a]))
                    })
                    .collect::<Option<_>>()
                    .ok_or_else(|| {
                        bad("its coarse chunk overflows (a forged chunk_shape?)".into())
                    })?;
                let Some(&(c0, cn)) = coarse_rows.get(&dst) else {
                    return Err(bad(format!(
                        "links to coarse chunk {dst:?}, which holds no vertices"
                    )));
                };
                let rows = decode_ragged(&arr.read(src)?).map_err(bad)?;
                if rows.len() % 2 != 0 {
                    return Err(bad("not whole (fine, coarse) records".into()));
                }
                for r in rows.chunks_exact(2) {
                    let (f, c) = (r[0], r[1]);
                    if f < 0 || f as u64 >= fn_ || c < 0 || c as u64 >= cn {
                        return Err(bad(format!(
                            "record ({f}, {c}) is past the {fn_} fine or {cn} coarse rows"
                        )));
                    }
                    parent[(f0 + f as u64) as usize] = (c0 + c as u64) as i64;
                }
            }
        }
        Ok(parent)
    }

    /// For every vertex of `level` (≥ 1), its children at `level − 1`, as
    /// CSR: vertex k's are `children[offsets[k]..offsets[k + 1]]`, ascending.
    pub fn children(&self, level: u64) -> Result<(Vec<usize>, Vec<u64>)> {
        if level == 0 {
            return Err(Error::invalid("level 0 is the finest; it has no children"));
        }
        let parent = self.parents(level - 1)?;
        let n = self.row_starts(level)?.1 as usize;
        let mut offsets = vec![0usize; n + 1];
        for &p in parent.iter().filter(|&&p| p >= 0) {
            offsets[p as usize + 1] += 1;
        }
        for k in 0..n {
            offsets[k + 1] += offsets[k];
        }
        let mut fill = offsets.clone();
        let mut children = vec![0u64; offsets[n]];
        for (f, &p) in parent.iter().enumerate() {
            if p >= 0 {
                children[fill[p as usize]] = f as u64;
                fill[p as usize] += 1;
            }
        }
        Ok((offsets, children))
    }
}
