//! zarr-vectors 0.9's selection idiom on any level: `objects=`, `groups=`,
//! `where=` (conditions on vertex or object attributes), `near=` (a ball),
//! `bbox=` and `limit=`, every term narrowing (AND). Only the chunks the
//! terms can touch are read: the box (and the ball's box) picks chunks, the
//! object index picks fragments; the ball, the conditions and the limit
//! then filter vertex by vertex, in the order zarr-vectors reads them
//! (chunks ascending without objects; object by object with them).

use std::collections::{BTreeSet, HashMap, HashSet};

use rayon::prelude::*;
use voxfield_core::{Error, Result};

use crate::cells::CellArray;
use crate::objects::{decode_fragments, FragmentRows};
use crate::store::{decode_f64, itemsize, Column, Points, Store};

/// Members a group selection may name (a forged `group_ranges` entry must
/// not make the reader list billions of ids).
const MAX_GROUP_MEMBERS: i64 = 1 << 26;

/// A comparison of `where=`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

impl Op {
    pub fn parse(s: &str) -> Result<Op> {
        Ok(match s {
            "==" | "=" => Op::Eq,
            "!=" => Op::Ne,
            "<" => Op::Lt,
            "<=" => Op::Le,
            ">" => Op::Gt,
            ">=" => Op::Ge,
            o => {
                return Err(Error::invalid(format!(
                    "where: operator {o} is not one of == != < <= > >="
                )))
            }
        })
    }

    fn holds(self, x: f64, v: f64) -> bool {
        match self {
            Op::Eq => x == v,
            Op::Ne => x != v,
            Op::Lt => x < v,
            Op::Le => x <= v,
            Op::Gt => x > v,
            Op::Ge => x >= v,
        }
    }
}

/// One `where=` term: a scalar vertex or object attribute against a value.
#[derive(Clone, Debug, PartialEq)]
pub struct Condition {
    pub name: String,
    pub op: Op,
    pub value: f64,
}

impl Condition {
    /// `name<op>value`, e.g. `intensity>0.5`, `label==3`.
    pub fn parse(s: &str) -> Result<Condition> {
        let at = s.find(['=', '!', '<', '>']).ok_or_else(|| {
            Error::invalid(format!("where {s:?}: expected NAME OP VALUE, e.g. w>0.5"))
        })?;
        let rest = &s[at..];
        let len = rest
            .char_indices()
            .find(|(_, c)| !matches!(c, '=' | '!' | '<' | '>'))
            .map_or(rest.len(), |(i, _)| i);
        let value: f64 = rest[len..].trim().parse().map_err(|_| {
            Error::invalid(format!(
                "where {s:?}: {:?} is not a number",
                rest[len..].trim()
            ))
        })?;
        Condition::new(s[..at].trim(), Op::parse(&rest[..len])?, value)
    }

    /// A condition; a NaN value is refused (nothing ever compares equal to
    /// it, so a typo would select nothing without a word).
    pub fn new(name: &str, op: Op, value: f64) -> Result<Condition> {
        if value.is_nan() {
            return Err(Error::invalid(format!(
                "where {name}: the value is NaN, which nothing compares with"
            )));
        }
        Ok(Condition {
            name: name.to_string(),
            op,
            value,
        })
    }
}

/// What to read of a level: every term set narrows.
#[derive(Clone, Debug, Default)]
pub struct Selection {
    /// Min and max corners, inclusive.
    pub bbox: Option<(Vec<f64>, Vec<f64>)>,
    /// Centre and radius: vertices within the radius (inclusive).
    pub near: Option<(Vec<f64>, f64)>,
    pub objects: Option<Vec<i64>>,
    pub groups: Option<Vec<i64>>,
    pub conditions: Vec<Condition>,
    /// At most this many vertices (the first ones in reading order).
    pub limit: Option<usize>,
    /// Vertex attributes returned (None: none).
    pub attributes: Option<Vec<String>>,
}

/// The vertices a selection kept.
#[derive(Clone, Debug)]
pub struct Selected {
    pub points: Points,
    /// Per vertex its object id, when objects were selected (by id, group
    /// or an object attribute).
    pub object_ids: Option<Vec<i64>>,
    /// Whether `limit` cut the result short.
    pub truncated: bool,
}

impl Selection {
    /// The box the chunks are picked by: `bbox` ∩ the ball's box.
    fn search_box(&self, d: usize) -> Result<Option<(Vec<f64>, Vec<f64>)>> {
        let mut b = self.bbox.clone();
        if let Some((c, r)) = &self.near {
            if c.len() != d || !(r.is_finite() && *r >= 0.0) || c.iter().any(|v| !v.is_finite()) {
                return Err(Error::invalid(format!(
                    "near: a centre of {d} finite coordinates and a radius ≥ 0"
                )));
            }
            let lo: Vec<f64> = c.iter().map(|x| x - r).collect();
            let hi: Vec<f64> = c.iter().map(|x| x + r).collect();
            b = Some(match b {
                None => (lo, hi),
                Some((a, z)) => (
                    a.iter().zip(&lo).map(|(p, q)| p.max(*q)).collect(),
                    z.iter().zip(&hi).map(|(p, q)| p.min(*q)).collect(),
                ),
            });
        }
        Ok(b)
    }
}

impl Store {
    /// The object ids of `groups` at `level` (its `groups` array: per group
    /// its members as int64, or a `group_ranges` entry).
    pub fn group_members(&self, level: u64, groups: &[i64]) -> Result<BTreeSet<i64>> {
        let node = self.loc.join(&level.to_string()).join("groups");
        let Some(meta) = node.try_json()? else {
            return Err(Error::format(
                &self.path,
                format!("level {level} has no groups"),
            ));
        };
        let (items, _) = crate::objects::read_1d(&node, true)?;
        let ranges = &meta["attributes"]["group_ranges"];
        let mut out = BTreeSet::new();
        for &g in groups {
            if g < 0 || g as usize >= items.len() {
                return Err(Error::invalid(format!(
                    "group {g} is not one of the {} groups of level {level}",
                    items.len()
                )));
            }
            if let Some(r) = ranges[g.to_string()].as_array() {
                let (a, z) = (r[0].as_i64().unwrap_or(0), r[1].as_i64().unwrap_or(0));
                if a < 0 || z < a || z - a > MAX_GROUP_MEMBERS {
                    return Err(Error::format(
                        node.path(),
                        format!(
                            "group {g} spans objects {a}..{z}: a selection takes at most \
                             {MAX_GROUP_MEMBERS} members"
                        ),
                    ));
                }
                out.extend(a..z);
            } else {
                let b = &items[g as usize];
                out.extend(
                    b.chunks_exact(8)
                        .map(|x| i64::from_le_bytes(x.try_into().expect("8"))),
                );
            }
        }
        Ok(out)
    }

    /// One scalar object attribute (a row per object row) as f64, or None
    /// when the level has no object attribute of that name.
    fn object_attribute(&self, level: u64, name: &str, rows: usize) -> Result<Option<Vec<f64>>> {
        let node = self
            .loc
            .join(&level.to_string())
            .join("object_attributes")
            .join(name);
        let Some(meta) = node.try_json()? else {
            return Ok(None);
        };
        let dtype = meta["data_type"].as_str().unwrap_or("").to_string();
        let size = itemsize(&dtype).ok_or_else(|| {
            Error::format(
                node.path(),
                format!("object attribute dtype {dtype} is not numeric"),
            )
        })?;
        if meta["shape"].as_array().map_or(0, Vec::len) != 1 {
            return Err(Error::invalid(format!(
                "where {name}: a multi-channel object attribute cannot be compared with one value"
            )));
        }
        let b = crate::objects::read_dense(&node, rows * size)?;
        Ok(Some(decode_f64(&b, &dtype)))
    }

    /// The vertices of `level` that `sel` selects (see the module docs).
    pub fn select(&self, level: u64, sel: &Selection) -> Result<Selected> {
        let d = self.dims;
        if let Some((lo, hi)) = &sel.bbox {
            if lo.len() != d
                || hi.len() != d
                || (0..d).any(|a| lo[a].is_nan() || hi[a].is_nan() || lo[a] > hi[a])
            {
                return Err(Error::invalid(format!(
                    "bbox: {d} min then {d} max coordinates, min ≤ max"
                )));
            }
        }
        let search = sel.search_box(d)?;
        if let Some(0) = sel.limit {
            return Err(Error::invalid("limit must be at least 1"));
        }
        let asked: Vec<String> = sel.attributes.clone().unwrap_or_default();
        // Listing the attributes costs a request remotely: only for conditions.
        let vertex_names = match sel.conditions.is_empty() {
            true => vec![],
            false => self.attribute_names(level)?,
        };
        // Conditions on object attributes choose objects; the rest are on
        // vertex attributes (read alongside, dropped after).
        let (mut on_vertices, mut on_objects) = (vec![], vec![]);
        for c in &sel.conditions {
            if vertex_names.contains(&c.name) {
                on_vertices.push(c.clone());
            } else {
                on_objects.push(c.clone());
            }
        }
        let mut names = asked.clone();
        for c in &on_vertices {
            if !names.contains(&c.name) {
                names.push(c.name.clone());
            }
        }
        let wanted = self.wanted_objects(level, sel, &on_objects)?;
        let (points, ids) = match &wanted {
            None => {
                let b = search.as_ref().map(|(lo, hi)| (&lo[..], &hi[..]));
                (self.read_points(level, b, Some(&names))?, None)
            }
            Some(w) => {
                let (p, ids, offsets) =
                    self.read_object_points(level, w, search.as_ref(), &names)?;
                let per_vertex = ids
                    .iter()
                    .zip(offsets.windows(2))
                    .flat_map(|(&id, w)| std::iter::repeat_n(id, w[1] - w[0]))
                    .collect();
                (p, Some(per_vertex))
            }
        };
        filter(points, ids, sel, &on_vertices, &asked)
    }

    /// The object ids a selection names (None: no object term).
    fn wanted_objects(
        &self,
        level: u64,
        sel: &Selection,
        on_objects: &[Condition],
    ) -> Result<Option<HashSet<i64>>> {
        if sel.objects.is_none() && sel.groups.is_none() && on_objects.is_empty() {
            return Ok(None);
        }
        let mut keep: Option<HashSet<i64>> =
            sel.objects.as_ref().map(|o| o.iter().copied().collect());
        if let Some(g) = &sel.groups {
            let members = self.group_members(level, g)?;
            keep = Some(match keep {
                None => members.into_iter().collect(),
                Some(k) => k.into_iter().filter(|i| members.contains(i)).collect(),
            });
        }
        if !on_objects.is_empty() {
            let ids = self.object_rows(level)?;
            let mut pass = vec![true; ids.len()];
            for c in on_objects {
                let v = self
                    .object_attribute(level, &c.name, ids.len())?
                    .ok_or_else(|| {
                        Error::invalid(format!(
                        "where {}: level {level} has no vertex or object attribute of that name",
                        c.name
                    ))
                    })?;
                for (p, x) in pass.iter_mut().zip(&v) {
                    *p &= c.op.holds(*x, c.value);
                }
            }
            let chosen: HashSet<i64> = ids
                .iter()
                .zip(&pass)
                .filter(|(_, p)| **p)
                .map(|(i, _)| *i)
                .collect();
            keep = Some(match keep {
                None => chosen,
                Some(k) => k.into_iter().filter(|i| chosen.contains(i)).collect(),
            });
        }
        Ok(keep)
    }

    /// The vertices of the objects `wanted`, object by object in manifest
    /// order (each its blocks' fragments in order), reading only chunks the
    /// `search` box touches; the ids of the objects with a manifest here and
    /// their vertex ranges (object k's rows are `offsets[k]..offsets[k + 1]`).
    pub(crate) fn read_object_points(
        &self,
        level: u64,
        wanted: &HashSet<i64>,
        search: Option<&(Vec<f64>, Vec<f64>)>,
        names: &[String],
    ) -> Result<(Points, Vec<i64>, Vec<usize>)> {
        let info = self.level(level)?;
        let d = self.dims;
        let dir = self.loc.join(&level.to_string());
        let (ids, manifests) = self.manifests_of(level, wanted)?;
        let rows: Vec<usize> = (0..ids.len()).collect();
        let cs = &info.chunk_shape;
        let touches = |c: &[i64]| match search {
            None => true,
            Some((lo, hi)) => (0..d).all(|a| {
                (c[a] as f64) >= (lo[a] / cs[a]).floor() && (c[a] as f64) <= (hi[a] / cs[a]).floor()
            }),
        };
        let mut chunks: Vec<Vec<i64>> = rows
            .iter()
            .flat_map(|&r| manifests[r].iter().map(|(c, _)| c.clone()))
            .filter(|c| touches(c))
            .collect();
        chunks.sort();
        chunks.dedup();
        let vertices = CellArray::open_at(&dir.join("vertices"), d)?;
        let fragments = CellArray::open_at(&dir.join("vertex_fragments"), d)?;
        let dtype = vertices.attrs["dtype"]
            .as_str()
            .unwrap_or("float32")
            .to_string();
        let vsize = d * itemsize(&dtype).ok_or_else(|| {
            Error::format(vertices.path.join("zarr.json"), format!("dtype {dtype}"))
        })?;
        let attrs: Vec<(CellArray, String, usize)> = names
            .iter()
            .map(|n| {
                let a = self.attribute_array(level, n)?;
                let dt = a.attrs["dtype"].as_str().unwrap_or("float32").to_string();
                let w = a.attrs["row_shape"]
                    .as_array()
                    .map(|r| r.iter().filter_map(|v| v.as_u64()).product::<u64>() as usize)
                    .unwrap_or(1)
                    .max(1);
                let size = itemsize(&dt).ok_or_else(|| {
                    Error::format(a.path.join("zarr.json"), format!("attribute dtype {dt}"))
                })?;
                Ok((a, dt, w * size))
            })
            .collect::<Result<_>>()?;
        // Each touched chunk's fragments the objects name, ascending.
        let mut needed: HashMap<Vec<i64>, Vec<u64>> = HashMap::new();
        for blocks in &manifests {
            for (c, frags) in blocks.iter().filter(|(c, _)| touches(c)) {
                needed.entry(c.clone()).or_default().extend(frags);
            }
        }
        needed.values_mut().for_each(|f| {
            f.sort_unstable();
            f.dedup();
        });
        // Per chunk, only the named fragments' rows are kept (a cell is
        // dropped once read: dense cells hold millions of vertices).
        let extracted: HashMap<Vec<i64>, Extract> = self.loc.install(|| {
            chunks
                .par_iter()
                .map(|c| -> Result<(Vec<i64>, Extract)> {
                    let v = vertices.read(c)?;
                    let f = decode_fragments(&fragments.read(c)?)
                        .map_err(|e| Error::format(&fragments.path, format!("chunk {c:?}: {e}")))?;
                    let n = v.len() / vsize;
                    let cells = attrs
                        .iter()
                        .map(|(a, _, row)| {
                            let b = a.read(c)?;
                            if b.len() != n * row {
                                return Err(Error::format(
                                    &a.path,
                                    format!("chunk {c:?}: {} bytes for {n} vertices", b.len()),
                                ));
                            }
                            Ok(b)
                        })
                        .collect::<Result<Vec<_>>>()?;
                    let mut out = Extract {
                        at: HashMap::new(),
                        pos: vec![],
                        cols: vec![vec![]; attrs.len()],
                    };
                    for &k in &needed[c] {
                        let fr = f.rows.get(k as usize).ok_or_else(|| {
                            Error::format(
                                &fragments.path,
                                format!("chunk {c:?} has no fragment {k}"),
                            )
                        })?;
                        let list: Vec<u64> = match fr {
                            FragmentRows::Range(s, m) => (*s..s.saturating_add(*m)).collect(),
                            FragmentRows::List(l) => l.clone(),
                        };
                        let start = out.pos.len() / vsize;
                        for row in list {
                            let row = row as usize;
                            if row >= n {
                                return Err(Error::format(
                                    &vertices.path,
                                    format!("chunk {c:?} has no row {row}"),
                                ));
                            }
                            out.pos
                                .extend_from_slice(&v[row * vsize..(row + 1) * vsize]);
                            for ((col, b), (_, _, w)) in out.cols.iter_mut().zip(&cells).zip(&attrs)
                            {
                                col.extend_from_slice(&b[row * w..(row + 1) * w]);
                            }
                        }
                        out.at.insert(k, (start, out.pos.len() / vsize));
                    }
                    Ok((c.clone(), out))
                })
                .collect::<Result<_>>()
        })?;
        let mut pos = vec![];
        let mut cols: Vec<Vec<u8>> = vec![vec![]; attrs.len()];
        let (mut out_ids, mut offsets) = (vec![], vec![0usize]);
        for &r in &rows {
            if manifests[r].is_empty() {
                continue; // dropped at this level
            }
            for (c, frags) in &manifests[r] {
                let Some(e) = extracted.get(c) else {
                    continue; // outside the box
                };
                for k in frags {
                    let (a, b) = e.at[k];
                    pos.extend_from_slice(&e.pos[a * vsize..b * vsize]);
                    for ((col, x), (_, _, w)) in cols.iter_mut().zip(&e.cols).zip(&attrs) {
                        col.extend_from_slice(&x[a * w..b * w]);
                    }
                }
            }
            out_ids.push(ids[r]);
            offsets.push(pos.len() / vsize);
        }
        let points = Points {
            positions: Column {
                name: "positions".into(),
                dtype: dtype.clone(),
                width: d,
                bytes: pos,
            },
            attributes: names
                .iter()
                .zip(attrs.iter().zip(cols))
                .map(|(n, ((_, dt, row), bytes))| Column {
                    name: n.clone(),
                    dtype: dt.clone(),
                    width: row / itemsize(dt).expect("checked"),
                    bytes,
                })
                .collect(),
        };
        Ok((points, out_ids, offsets))
    }
}

/// The rows of one chunk that a read of objects names: fragment → its rows'
/// range in `pos` (and in each attribute column).
struct Extract {
    at: HashMap<u64, (usize, usize)>,
    pos: Vec<u8>,
    cols: Vec<Vec<u8>>,
}

/// Keeps the vertices inside the box and ball that pass the conditions, at
/// most `limit`, and returns only the asked attributes.
fn filter(
    points: Points,
    ids: Option<Vec<i64>>,
    sel: &Selection,
    conditions: &[Condition],
    asked: &[String],
) -> Result<Selected> {
    let n = points.len();
    let d = points.positions.width;
    // A read without objects was cut to the box already: only an object
    // read (whole fragments) or a ball needs the coordinates again.
    let recheck_box = sel.bbox.is_some() && ids.is_some();
    let pos = match recheck_box || sel.near.is_some() {
        true => points.positions.to_f64(),
        false => vec![],
    };
    let mut keep = vec![true; n];
    if let Some((lo, hi)) = sel.bbox.as_ref().filter(|_| recheck_box) {
        for (i, k) in keep.iter_mut().enumerate() {
            *k &= (0..d).all(|a| pos[i * d + a] >= lo[a] && pos[i * d + a] <= hi[a]);
        }
    }
    if let Some((c, r)) = &sel.near {
        for (i, k) in keep.iter_mut().enumerate() {
            let s: f64 = (0..d).map(|a| (pos[i * d + a] - c[a]).powi(2)).sum();
            *k &= s <= r * r;
        }
    }
    for cond in conditions {
        let col = points
            .attributes
            .iter()
            .find(|c| c.name == cond.name)
            .expect("condition columns are read");
        if col.width != 1 {
            return Err(Error::invalid(format!(
                "where {}: a {}-channel attribute cannot be compared with one value",
                cond.name, col.width
            )));
        }
        for (k, x) in keep.iter_mut().zip(col.to_f64()) {
            *k &= cond.op.holds(x, cond.value);
        }
    }
    let mut truncated = false;
    if let Some(limit) = sel.limit {
        let mut seen = 0;
        for k in keep.iter_mut().filter(|k| **k) {
            seen += 1;
            if seen > limit {
                *k = false;
                truncated = true;
            }
        }
    }
    let pick = |c: &Column| -> Column {
        let row = c.bytes.len() / n.max(1);
        Column {
            name: c.name.clone(),
            dtype: c.dtype.clone(),
            width: c.width,
            bytes: (0..n)
                .filter(|&i| keep[i])
                .flat_map(|i| c.bytes[i * row..(i + 1) * row].iter().copied())
                .collect(),
        }
    };
    let all = keep.iter().all(|k| *k);
    let positions = if all {
        points.positions.clone()
    } else {
        pick(&points.positions)
    };
    let attributes = asked
        .iter()
        .map(|name| {
            let c = points
                .attributes
                .iter()
                .find(|c| &c.name == name)
                .expect("asked columns are read");
            if all {
                c.clone()
            } else {
                pick(c)
            }
        })
        .collect();
    let object_ids = ids.map(|v| {
        v.into_iter()
            .zip(&keep)
            .filter(|(_, k)| **k)
            .map(|(i, _)| i)
            .collect()
    });
    Ok(Selected {
        points: Points {
            positions,
            attributes,
        },
        object_ids,
        truncated,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conditions_parse_and_refuse_nonsense() {
        let c = Condition::parse("intensity >= 0.5").unwrap();
        assert_eq!((c.name.as_str(), c.op, c.value), ("intensity", Op::Ge, 0.5));
        assert_eq!(Condition::parse("label==3").unwrap().op, Op::Eq);
        assert_eq!(Condition::parse("a!=-1").unwrap().value, -1.0);
        assert!(Condition::parse("label").is_err());
        assert!(Condition::parse("w>x").is_err());
        assert!(Condition::parse("w=>1").is_err());
        assert!(Condition::parse("w==nan").is_err());
        assert_eq!(Condition::parse("w<inf").unwrap().value, f64::INFINITY);
        assert!(Op::Lt.holds(1.0, 2.0) && !Op::Lt.holds(f64::NAN, 2.0));
    }
}
