//! N-D arrays seen as 3-D volumes. An array of rank 1 to 5 (or more) has up to three
//! spatial axes; every other axis (time, channel, or an unnamed leading axis) is fixed
//! at one index. The samplers keep their 3-D kernels: the selected spatial axes become
//! the last axes of a 3-D view, padded in front with length-1 axes (a 2-D image is a
//! `[1, H, W]` volume sampled with 2-D positions). Selecting is a view, never a copy:
//! an offset and strides for memory-mapped data, a chunk-index prefix and one slice of
//! each decoded chunk for chunked stores.

use std::path::Path;

use crate::{Error, Result};

/// What an axis means (OME-NGFF's axis types).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AxisKind {
    Space,
    Time,
    Channel,
    Other,
}

impl AxisKind {
    pub fn name(self) -> &'static str {
        match self {
            AxisKind::Space => "space",
            AxisKind::Time => "time",
            AxisKind::Channel => "channel",
            AxisKind::Other => "other",
        }
    }
}

/// One axis of the stored array.
#[derive(Clone, Debug, PartialEq)]
pub struct Axis {
    pub name: String,
    pub kind: AxisKind,
    pub unit: Option<String>,
    pub len: usize,
}

/// Which index to take on each non-spatial axis: by name (`t=3`) or by position
/// among the non-spatial axes (`3,1`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct IndexRequest {
    pub named: Vec<(String, usize)>,
    pub positional: Vec<usize>,
}

impl IndexRequest {
    pub fn is_empty(&self) -> bool {
        self.named.is_empty() && self.positional.is_empty()
    }

    /// Parses `t=3,c=1` or `3,1` (not a mix).
    pub fn parse(s: &str) -> Result<Self> {
        let mut req = IndexRequest::default();
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let bad = || {
                Error::invalid(format!(
                    "index '{part}' is not NAME=N or N (a whole number ≥ 0)"
                ))
            };
            match part.split_once('=') {
                Some((name, n)) => req.named.push((
                    name.trim().to_string(),
                    n.trim().parse().map_err(|_| bad())?,
                )),
                None => req.positional.push(part.parse().map_err(|_| bad())?),
            }
        }
        if !req.named.is_empty() && !req.positional.is_empty() {
            return Err(Error::invalid(format!(
                "index '{s}' mixes NAME=N and positional entries; use one form"
            )));
        }
        Ok(req)
    }
}

/// An N-D array's axes and the selection that makes it a 3-D view.
#[derive(Clone, Debug, PartialEq)]
pub struct Axes {
    pub axes: Vec<Axis>,
    /// The spatial axes (array axis numbers, in array order; 1 to 3 of them).
    pub spatial: Vec<usize>,
    /// The chosen index of every axis (0 for spatial axes).
    pub index: Vec<usize>,
}

impl Axes {
    /// A plain 3-D volume (axes z, y, x; no selection).
    pub fn plain(shape: [usize; 3]) -> Self {
        let axes = ["z", "y", "x"]
            .iter()
            .zip(shape)
            .map(|(n, len)| Axis {
                name: n.to_string(),
                kind: AxisKind::Space,
                unit: None,
                len,
            })
            .collect();
        Axes {
            axes,
            spatial: vec![0, 1, 2],
            index: vec![0; 3],
        }
    }

    /// Default axes of a C-order array with no axis metadata: the last (up to) three
    /// are spatial (z, y, x), leading ones are named `axis0`, `axis1`, ...
    pub fn default_for(shape: &[usize]) -> Vec<Axis> {
        let n = shape.len();
        let ns = n.min(3);
        let space = ["z", "y", "x"];
        shape
            .iter()
            .enumerate()
            .map(|(a, &len)| {
                let spatial = a >= n - ns;
                Axis {
                    name: if spatial {
                        space[3 - (n - a)].to_string()
                    } else {
                        format!("axis{a}")
                    },
                    kind: if spatial {
                        AxisKind::Space
                    } else {
                        AxisKind::Other
                    },
                    unit: None,
                    len,
                }
            })
            .collect()
    }

    /// Resolves `req` against `axes` (errors name `path`): axes of kind `Space`
    /// are spatial (at most three; if none are, the last up to three are).
    /// A non-spatial axis of length 1 defaults to index 0; a longer one must be chosen.
    pub fn select(path: &Path, axes: Vec<Axis>, req: &IndexRequest) -> Result<Self> {
        let bad = |m: String| Error::format(path, m);
        if axes.is_empty() {
            return Err(bad(
                "the array has no axes (a scalar); a volume needs 1 to 3 spatial axes".into(),
            ));
        }
        if let Some(a) = axes.iter().find(|a| a.len == 0) {
            return Err(bad(format!(
                "axis '{}' is zero-length (shape {:?}): the array is empty",
                a.name,
                axes.iter().map(|a| a.len).collect::<Vec<_>>()
            )));
        }
        let mut spatial: Vec<usize> = (0..axes.len())
            .filter(|&a| axes[a].kind == AxisKind::Space)
            .collect();
        if spatial.is_empty() {
            spatial = (axes.len().saturating_sub(3)..axes.len()).collect();
        }
        if spatial.len() > 3 {
            return Err(bad(format!(
                "the array has {} spatial axes ({}); at most 3 are supported",
                spatial.len(),
                spatial
                    .iter()
                    .map(|&a| axes[a].name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
        let others: Vec<usize> = (0..axes.len()).filter(|a| !spatial.contains(a)).collect();
        let describe = || {
            axes.iter()
                .map(|a| format!("{} ({}, {})", a.name, a.kind.name(), a.len))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let mut index: Vec<Option<usize>> = vec![None; axes.len()];
        for &a in &spatial {
            index[a] = Some(0);
        }
        if req.positional.len() > others.len() {
            return Err(bad(format!(
                "{} positional indices given, the array has {} non-spatial axes (axes: {})",
                req.positional.len(),
                others.len(),
                describe()
            )));
        }
        for (&a, &i) in others.iter().zip(&req.positional) {
            index[a] = Some(i);
        }
        for (name, i) in &req.named {
            let a = axes
                .iter()
                .position(|x| &x.name == name)
                .ok_or_else(|| bad(format!("no axis named '{name}' (axes: {})", describe())))?;
            if spatial.contains(&a) {
                return Err(bad(format!(
                    "axis '{name}' is spatial: it is sampled, not indexed (axes: {})",
                    describe()
                )));
            }
            index[a] = Some(*i);
        }
        let mut missing = vec![];
        for &a in &others {
            match index[a] {
                Some(i) if i >= axes[a].len => {
                    return Err(bad(format!(
                        "index {i} is out of range for axis '{}' of length {}",
                        axes[a].name, axes[a].len
                    )))
                }
                Some(_) => {}
                None if axes[a].len == 1 => index[a] = Some(0),
                None => missing.push(a),
            }
        }
        if !missing.is_empty() {
            let names: Vec<String> = missing
                .iter()
                .map(|&a| format!("{}=0..{}", axes[a].name, axes[a].len - 1))
                .collect();
            return Err(bad(format!(
                "the array has non-spatial axes longer than 1; choose an index for {} (axes: {})",
                names.join(", "),
                describe()
            )));
        }
        Ok(Axes {
            index: index.into_iter().map(|i| i.unwrap_or(0)).collect(),
            axes,
            spatial,
        })
    }

    /// Number of coordinates a position takes (1 to 3).
    pub fn spatial_dims(&self) -> usize {
        self.spatial.len()
    }

    /// The array axis behind each axis of the 3-D view (None: a padded length-1 axis).
    pub fn view_axes(&self) -> [Option<usize>; 3] {
        let pad = 3 - self.spatial.len();
        [0usize, 1, 2].map(|v| v.checked_sub(pad).map(|s| self.spatial[s]))
    }

    /// Applies `f` to the array-axis values of the 3-D view (1 for padded axes).
    pub fn view_of(&self, per_axis: &[usize]) -> [usize; 3] {
        self.view_axes().map(|a| a.map_or(1, |a| per_axis[a]))
    }

    /// The 3-D view's shape.
    pub fn view_shape(&self) -> [usize; 3] {
        self.view_of(&self.shape())
    }

    /// The full array shape.
    pub fn shape(&self) -> Vec<usize> {
        self.axes.iter().map(|a| a.len).collect()
    }

    /// Whether the array is exactly the 3-D view (3 spatial axes, nothing selected).
    pub fn is_plain(&self) -> bool {
        self.axes.len() == 3 && self.spatial == [0, 1, 2]
    }

    /// The non-spatial axes.
    pub fn others(&self) -> impl Iterator<Item = usize> + '_ {
        (0..self.axes.len()).filter(|a| !self.spatial.contains(a))
    }

    /// Byte offset of the view's voxel (0,0,0) and the view's byte strides, given the
    /// array's byte strides.
    pub fn view_strides(&self, strides: &[isize]) -> (isize, [isize; 3]) {
        let offset = self
            .others()
            .map(|a| self.index[a] as isize * strides[a])
            .sum();
        (
            offset,
            self.view_axes().map(|a| a.map_or(0, |a| strides[a])),
        )
    }

    /// The same selection with axis `name` (non-spatial) at `i`.
    pub fn with_index(&self, name: &str, i: usize) -> Result<Self> {
        let a = self
            .axes
            .iter()
            .position(|x| x.name == name)
            .filter(|a| !self.spatial.contains(a))
            .ok_or_else(|| Error::invalid(format!("no non-spatial axis named '{name}'")))?;
        if i >= self.axes[a].len {
            return Err(Error::invalid(format!(
                "index {i} is out of range for axis '{name}' of length {}",
                self.axes[a].len
            )));
        }
        let mut s = self.clone();
        s.index[a] = i;
        Ok(s)
    }

    /// The chunk of the array that holds view chunk `idx`, given the array's chunk shape.
    pub fn array_chunk(&self, idx: [usize; 3], chunk: &[usize]) -> Vec<usize> {
        let mut out: Vec<usize> = (0..self.axes.len())
            .map(|a| self.index[a] / chunk[a])
            .collect();
        for (v, a) in self.view_axes().iter().enumerate() {
            if let Some(a) = a {
                out[*a] = idx[v];
            }
        }
        out
    }

    /// Copies the view's part of one decoded array chunk (C order, `chunk` shape,
    /// `esize`-byte elements) into `out` (C order, the view chunk shape).
    pub fn extract_chunk(&self, chunk: &[usize], esize: usize, data: &[u8], out: &mut [u8]) {
        if self.is_plain() {
            out.copy_from_slice(&data[..out.len()]);
            return;
        }
        let n = chunk.len();
        let mut strides = vec![esize as isize; n];
        for a in (0..n.saturating_sub(1)).rev() {
            strides[a] = strides[a + 1] * chunk[a + 1] as isize;
        }
        let offset: isize = self
            .others()
            .map(|a| (self.index[a] % chunk[a]) as isize * strides[a])
            .sum();
        let vs = self.view_of(chunk);
        let st = self.view_axes().map(|a| a.map_or(0, |a| strides[a]));
        let mut o = 0;
        for i in 0..vs[0] {
            for j in 0..vs[1] {
                let base = offset + i as isize * st[0] + j as isize * st[1];
                if st[2] == esize as isize {
                    let b = base as usize;
                    let len = vs[2] * esize;
                    out[o..o + len].copy_from_slice(&data[b..b + len]);
                    o += len;
                } else {
                    for k in 0..vs[2] {
                        let b = (base + k as isize * st[2]) as usize;
                        out[o..o + esize].copy_from_slice(&data[b..b + esize]);
                        o += esize;
                    }
                }
            }
        }
    }

    /// A short human description: `t=3 (of 10), c=0 (of 2); space z, y, x`.
    pub fn describe(&self) -> String {
        let sel: Vec<String> = self
            .others()
            .map(|a| {
                format!(
                    "{}={} (of {})",
                    self.axes[a].name, self.index[a], self.axes[a].len
                )
            })
            .collect();
        let space: Vec<&str> = self
            .spatial
            .iter()
            .map(|&a| self.axes[a].name.as_str())
            .collect();
        if sel.is_empty() {
            format!("space {}", space.join(", "))
        } else {
            format!("{}; space {}", sel.join(", "), space.join(", "))
        }
    }
}

/// Lifts a position of `dims` (1 or 2) coordinates into the 3-D view by putting
/// zeros in front (the view's padded axes).
pub fn lift_points(dims: usize, points: &[f64]) -> Vec<f64> {
    let pad = 3 - dims;
    let mut out = Vec::with_capacity(points.len() / dims.max(1) * 3);
    for p in points.chunks_exact(dims) {
        out.extend(std::iter::repeat_n(0.0, pad));
        out.extend_from_slice(p);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn axes5() -> Vec<Axis> {
        let mut a = Axes::default_for(&[4, 2, 5, 6, 7]);
        a[0].name = "t".into();
        a[0].kind = AxisKind::Time;
        a[1].name = "c".into();
        a[1].kind = AxisKind::Channel;
        a
    }

    #[test]
    fn selection_rules() {
        let p = Path::new("x");
        let req = IndexRequest::parse("t=3,c=1").unwrap();
        let s = Axes::select(p, axes5(), &req).unwrap();
        assert_eq!(s.view_shape(), [5, 6, 7]);
        assert_eq!(s.index, vec![3, 1, 0, 0, 0]);
        let pos = Axes::select(p, axes5(), &IndexRequest::parse("3,1").unwrap()).unwrap();
        assert_eq!(pos, s);
        let e = Axes::select(p, axes5(), &IndexRequest::default())
            .unwrap_err()
            .to_string();
        assert!(e.contains("t=0..3") && e.contains("c=0..1"), "{e}");
        let e = Axes::select(p, axes5(), &IndexRequest::parse("t=4,c=0").unwrap()).unwrap_err();
        assert!(e.to_string().contains("out of range"), "{e}");
        let e = Axes::select(p, axes5(), &IndexRequest::parse("z=1").unwrap()).unwrap_err();
        assert!(e.to_string().contains("spatial"), "{e}");
        assert!(IndexRequest::parse("t=1,2").is_err());
        // Length-1 leading axes default to 0; 2-D images pad in front.
        let s = Axes::select(
            p,
            Axes::default_for(&[1, 1, 8, 9]),
            &IndexRequest::default(),
        )
        .unwrap();
        assert_eq!(s.view_shape(), [1, 8, 9]);
        assert_eq!(s.spatial_dims(), 3);
        let s = Axes::select(p, Axes::default_for(&[8, 9]), &IndexRequest::default()).unwrap();
        assert_eq!((s.view_shape(), s.spatial_dims()), ([1, 8, 9], 2));
        assert_eq!(lift_points(2, &[1.0, 2.0]), vec![0.0, 1.0, 2.0]);
    }

    #[test]
    fn chunk_extraction_matches_indexing() {
        // A (2, 3, 4, 5) u16 array in chunks (2, 2, 4, 3); view t=1, axis1 chunk row.
        let shape = [2usize, 3, 4, 5];
        let s = Axes::select(
            Path::new("x"),
            Axes::default_for(&shape),
            &IndexRequest::parse("1").unwrap(),
        )
        .unwrap();
        let chunk = [2usize, 2, 4, 3];
        let idx = [1, 0, 1];
        let ac = s.array_chunk(idx, &chunk);
        assert_eq!(ac, vec![0, 1, 0, 1]);
        let value = |g: [usize; 4]| (((g[0] * 3 + g[1]) * 4 + g[2]) * 5 + g[3]) as u16;
        let mut data = vec![];
        for a in 0..2 {
            for b in 0..2 {
                for c in 0..4 {
                    for d in 0..3 {
                        let g = [ac[0] * 2 + a, ac[1] * 2 + b, c, ac[3] * 3 + d];
                        data.extend_from_slice(&value(g).to_ne_bytes());
                    }
                }
            }
        }
        let vs = s.view_of(&chunk);
        let mut out = vec![0u8; vs.iter().product::<usize>() * 2];
        s.extract_chunk(&chunk, 2, &data, &mut out);
        let got: Vec<u16> = out
            .chunks(2)
            .map(|b| u16::from_ne_bytes([b[0], b[1]]))
            .collect();
        let mut want = vec![];
        for b in 0..2 {
            for c in 0..4 {
                for d in 0..3 {
                    want.push(value([1, 2 + b, c, 3 + d]));
                }
            }
        }
        assert_eq!(got, want);
    }
}
