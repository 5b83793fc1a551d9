//! Linearised tracks with neurospatial 0.6.0's rules (`from_graph`): a track
//! graph's edges, taken in `edge_order` and laid end to end with `edge_spacing`
//! gaps, are cut into `ceil(length / bin_size)` equal bins each (a gap is one
//! inactive bin); bin centres are the linear centres projected back onto the
//! track; consecutive bins of an edge are neighbours, and at every graph node
//! the end bins of the edges meeting there are chained in edge order.
//! `to_linear` projects points onto the nearest graph edge as
//! `track_linearization` does; `linear_to_nd` maps linear positions back.

use serde_json::Value;
use voxfield_core::{Error, Result};

use crate::grid::linspace;

/// One edge of `edge_order`.
#[derive(Clone, Debug, PartialEq)]
pub struct OrderedEdge {
    /// Its start and end node positions (the order `edge_order` gives).
    pub start: Vec<f64>,
    pub end: Vec<f64>,
    /// The graph's `distance` attribute (used for linear positions).
    pub distance: f64,
}

/// A linearised track.
#[derive(Clone, Debug, PartialEq)]
pub struct Track {
    pub dims: usize,
    pub order: Vec<OrderedEdge>,
    /// Gaps between consecutive ordered edges (`edge_spacing`).
    pub gaps: Vec<f64>,
    /// Every graph edge in the graph's order, as (a, b) endpoints, and the
    /// ordered edge each one is (by its `edge_id`), if any: to_linear's
    /// nearest-segment search runs over all of them.
    pub segments: Vec<(Vec<f64>, Vec<f64>, Option<usize>)>,
    /// Linear bin edges and active cells (gaps inactive).
    pub edges: Vec<f64>,
    pub active: Vec<bool>,
    /// Ordered edge of each cell (None for gaps).
    pub cell_edge: Vec<Option<usize>>,
    /// Cell pairs joined where edges meet.
    pub junctions: Vec<(usize, usize)>,
    /// The layout parameters it was built from (0.6.0's Graph layout:
    /// graph_definition, edge_order, edge_spacing, bin_size), written back to files.
    pub source: Option<serde_json::Value>,
}

fn dist(a: &[f64], b: &[f64]) -> f64 {
    a.iter()
        .zip(b)
        .map(|(x, y)| (y - x) * (y - x))
        .sum::<f64>()
        .sqrt()
}

impl Track {
    /// Bins a track. `incidence` lists, per graph node in the graph's order,
    /// the (ordered edge, end: 0 start / 1 end) pairs at that node in
    /// `edge_order`'s row-major order.
    pub fn new(
        order: Vec<OrderedEdge>,
        gaps: Vec<f64>,
        segments: Vec<(Vec<f64>, Vec<f64>, Option<usize>)>,
        incidence: &[Vec<(usize, usize)>],
        bin_size: f64,
    ) -> Result<Track> {
        if order.is_empty() {
            return Err(Error::invalid("edge_order must not be empty"));
        }
        if !(bin_size.is_finite() && bin_size > 0.0) {
            return Err(Error::invalid(format!(
                "bin_size {bin_size} must be a positive number"
            )));
        }
        if gaps.len() != order.len() - 1 {
            return Err(Error::invalid(format!(
                "edge_spacing has {} values for {} edges (give one, or {})",
                gaps.len(),
                order.len(),
                order.len() - 1
            )));
        }
        let dims = order[0].start.len();
        if !(1..=3).contains(&dims)
            || order
                .iter()
                .any(|e| e.start.len() != dims || e.end.len() != dims)
        {
            return Err(Error::invalid(
                "node positions must all have the same 1 to 3 coordinates",
            ));
        }
        let finite = |v: &[f64]| v.iter().all(|x| x.is_finite());
        if let Some(i) = order.iter().position(|e| {
            !finite(&e.start) || !finite(&e.end) || !e.distance.is_finite() || e.distance < 0.0
        }) {
            return Err(Error::invalid(format!(
                "edge {i} of edge_order has a non-finite node position or distance"
            )));
        }
        if let Some(g) = gaps.iter().find(|g| !(g.is_finite() && **g >= 0.0)) {
            return Err(Error::invalid(format!(
                "edge_spacing {g} must be a non-negative number"
            )));
        }
        let (mut edges, mut active, mut cell_edge) = (vec![], vec![], vec![]);
        let mut cursor = 0.0;
        for (i, e) in order.iter().enumerate() {
            let length = dist(&e.start, &e.end);
            let n = if length <= 0.0 {
                1.0
            } else {
                (length / bin_size).ceil()
            };
            if edges.len() as f64 + n > crate::grid::MAX_CELLS as f64 {
                return Err(Error::invalid(format!(
                    "the track would have more than {} bins: bin_size {bin_size} is too small",
                    crate::grid::MAX_CELLS
                )));
            }
            let seg = linspace(cursor, cursor + length, n as usize);
            edges.extend_from_slice(&seg[..seg.len() - 1]);
            active.extend(std::iter::repeat_n(true, n as usize));
            cell_edge.extend(std::iter::repeat_n(Some(i), n as usize));
            cursor += length;
            if i + 1 < order.len() && gaps[i] > 0.0 {
                edges.push(cursor);
                active.push(false);
                cell_edge.push(None);
                cursor += gaps[i];
            }
        }
        edges.push(cursor);
        // First and last cell of each ordered edge.
        let mut ends = vec![(usize::MAX, 0); order.len()];
        for (c, e) in cell_edge.iter().enumerate() {
            if let Some(i) = *e {
                ends[i].0 = ends[i].0.min(c);
                ends[i].1 = c;
            }
        }
        let mut junctions = vec![];
        for at_node in incidence {
            let cells: Vec<usize> = at_node
                .iter()
                .map(|&(i, end)| if end == 0 { ends[i].0 } else { ends[i].1 })
                .collect();
            junctions.extend(cells.windows(2).map(|w| (w[0], w[1])));
        }
        Ok(Track {
            dims,
            order,
            gaps,
            segments,
            edges,
            active,
            cell_edge,
            junctions,
            source: None,
        })
    }

    /// A track from neurospatial 0.6.0's Graph layout parameters (as its
    /// environment files hold them): `graph_definition` (networkx node-link
    /// data, possibly wrapped as `{"__nx_graph__": ...}`; nodes with `pos`,
    /// links with `distance` and `edge_id`), `edge_order` (pairs of node
    /// ids), `edge_spacing` (one gap or one per junction) and `bin_size`.
    /// Graph edges are taken in networkx's iteration order.
    pub fn from_parameters(params: &Value) -> Result<Track> {
        let bad = |m: String| Error::invalid(format!("track layout parameters: {m}"));
        let graph = &params["graph_definition"];
        let graph = graph.get("__nx_graph__").unwrap_or(graph);
        let nodes = graph["nodes"]
            .as_array()
            .ok_or_else(|| bad("graph_definition has no nodes".into()))?;
        let ids: Vec<&Value> = nodes.iter().map(|n| &n["id"]).collect();
        let node = |id: &Value| {
            ids.iter()
                .position(|x| *x == id)
                .ok_or_else(|| bad(format!("node {id} is not in the graph")))
        };
        let pos: Vec<Vec<f64>> = nodes
            .iter()
            .map(|n| {
                n["pos"]
                    .as_array()
                    .and_then(|p| p.iter().map(Value::as_f64).collect::<Option<Vec<f64>>>())
                    .ok_or_else(|| bad(format!("node {} has no numeric 'pos'", n["id"])))
            })
            .collect::<Result<_>>()?;
        // Links in file order build networkx's adjacency (insertion order).
        let links = graph["links"]
            .as_array()
            .or_else(|| graph["edges"].as_array())
            .ok_or_else(|| bad("graph_definition has no links".into()))?;
        let mut adj: Vec<Vec<(usize, usize)>> = vec![vec![]; nodes.len()];
        for (k, l) in links.iter().enumerate() {
            let (u, v) = (node(&l["source"])?, node(&l["target"])?);
            if !adj[u].iter().any(|&(w, _)| w == v) {
                adj[u].push((v, k));
            }
            if u != v && !adj[v].iter().any(|&(w, _)| w == u) {
                adj[v].push((u, k));
            }
        }
        let link_of = |u: usize, v: usize| adj[u].iter().find(|&&(w, _)| w == v).map(|&(_, k)| k);
        let order_ids = params["edge_order"]
            .as_array()
            .ok_or_else(|| bad("no edge_order".into()))?;
        let mut order = vec![];
        let mut order_nodes = vec![];
        for e in order_ids {
            let pair = e.as_array().filter(|p| p.len() == 2);
            let pair = pair.ok_or_else(|| bad(format!("edge_order entry {e} is not a pair")))?;
            let (u, v) = (node(&pair[0])?, node(&pair[1])?);
            let k = link_of(u, v).ok_or_else(|| {
                bad(format!(
                    "edge_order has {e}, which is not an edge of the graph"
                ))
            })?;
            let distance = links[k]["distance"]
                .as_f64()
                .ok_or_else(|| bad(format!("edge {e} has no numeric 'distance'")))?;
            order.push(OrderedEdge {
                start: pos[u].clone(),
                end: pos[v].clone(),
                distance,
            });
            order_nodes.push((u, v, links[k]["edge_id"].as_i64()));
        }
        let n = order.len();
        let gaps = match &params["edge_spacing"] {
            Value::Array(a) => a
                .iter()
                .map(|g| {
                    g.as_f64()
                        .ok_or_else(|| bad(format!("edge_spacing {g} is not a number")))
                })
                .collect::<Result<Vec<f64>>>()?,
            g => vec![
                g.as_f64()
                    .ok_or_else(|| bad(format!("edge_spacing {g} is not a number")))?;
                n.saturating_sub(1)
            ],
        };
        let bin_size = params["bin_size"]
            .as_f64()
            .ok_or_else(|| bad("no numeric bin_size".into()))?;
        // networkx's G.edges(): nodes in order, each unseen neighbour once.
        let mut seen = vec![false; nodes.len()];
        let mut segments = vec![];
        for u in 0..nodes.len() {
            for &(v, _) in &adj[u] {
                if !seen[v] {
                    let k = segments.len() as i64;
                    let ordered = order_nodes.iter().position(|&(_, _, id)| id == Some(k));
                    segments.push((pos[u].clone(), pos[v].clone(), ordered));
                }
            }
            seen[u] = true;
        }
        let incidence: Vec<Vec<(usize, usize)>> = (0..nodes.len())
            .map(|x| {
                order_nodes
                    .iter()
                    .enumerate()
                    .flat_map(|(i, &(u, v, _))| {
                        [(u == x).then_some((i, 0)), (v == x).then_some((i, 1))]
                    })
                    .flatten()
                    .collect()
            })
            .collect();
        let mut track = Track::new(order, gaps, segments, &incidence, bin_size)?;
        track.source = Some(params.clone());
        Ok(track)
    }

    /// Cells next to `f`: the previous and next cell of the same edge, and
    /// cells joined at nodes.
    pub fn neighbours(&self, f: usize) -> Vec<usize> {
        let mut out = vec![];
        let e = self.cell_edge[f];
        if f > 0 && self.cell_edge[f - 1] == e {
            out.push(f - 1);
        }
        if f + 1 < self.cell_edge.len() && self.cell_edge[f + 1] == e {
            out.push(f + 1);
        }
        for &(a, b) in &self.junctions {
            if a == f && b != f {
                out.push(b);
            } else if b == f && a != f {
                out.push(a);
            }
        }
        out
    }

    /// The linear length of a cell.
    pub fn size_of_flat(&self, f: usize) -> f64 {
        self.edges[f + 1] - self.edges[f]
    }

    /// The point on the track at linear position `x` (0.6.0's
    /// `_project_1d_to_2d`: edges start at the cumulative `distance`s plus gaps;
    /// positions off an edge clamp to its ends); NaN for NaN.
    pub fn linear_to_nd(&self, x: f64) -> Vec<f64> {
        if !x.is_finite() {
            return vec![f64::NAN; self.dims];
        }
        let mut starts = vec![0.0];
        for i in 0..self.order.len() - 1 {
            let s = starts[i] + (self.order[i].distance + self.gaps[i]);
            starts.push(s);
        }
        let i = (starts.partition_point(|&s| s <= x).max(1) - 1).min(self.order.len() - 1);
        let e = &self.order[i];
        let t = ((x - starts[i]) / e.distance).clamp(0.0, 1.0);
        e.start
            .iter()
            .zip(&e.end)
            .map(|(a, b)| (1.0 - t) * a + t * b)
            .collect()
    }

    /// The centre of a cell on the track.
    pub fn center_of_flat(&self, f: usize) -> Vec<f64> {
        self.linear_to_nd((self.edges[f] + self.edges[f + 1]) / 2.0)
    }

    /// The linear position of `p` (`track_linearization` without its HMM):
    /// the nearest graph edge (the first on ties), the projection onto it, and
    /// the distance from its start node plus the edge's linear start. NaN for
    /// NaN; an error when the nearest edge is not in `edge_order`.
    pub fn to_linear(&self, p: &[f64]) -> Result<f64> {
        if p.iter().any(|v| v.is_nan()) {
            return Ok(f64::NAN);
        }
        let project = |a: &[f64], b: &[f64]| -> Vec<f64> {
            let d: Vec<f64> = a.iter().zip(b).map(|(x, y)| y - x).collect();
            let ss: f64 = d.iter().map(|v| v * v).sum();
            let t = (d
                .iter()
                .zip(p)
                .zip(a)
                .map(|((d, p), a)| d * (p - a))
                .sum::<f64>()
                / ss)
                .clamp(0.0, 1.0);
            a.iter().zip(&d).map(|(a, d)| a + t * d).collect()
        };
        let mut best = (f64::INFINITY, 0usize);
        for (k, (a, b, _)) in self.segments.iter().enumerate() {
            let q = project(a, b);
            let d = dist(p, &q);
            // np.argmin: the first minimum; a NaN distance (zero-length edge) wins.
            if d < best.0 || (d.is_nan() && !best.0.is_nan()) {
                best = (d, k);
            }
        }
        let (a, b, ordered) = &self.segments[best.1];
        let i = ordered.ok_or_else(|| {
            Error::invalid(format!(
                "a point projects onto graph edge {} ({a:?} – {b:?}), which edge_order leaves out",
                best.1
            ))
        })?;
        let mut start = 0.0;
        for j in 0..i {
            start += self.order[j].distance + self.gaps[j];
        }
        let q = project(a, b);
        Ok(start + dist(&self.order[i].start, &q))
    }
}

impl crate::Environment {
    /// Linear positions of points (rows of `n_dims`) on this track.
    pub fn to_linear(&self, points: &[f64]) -> Result<Vec<f64>> {
        let t = self.linear_track("to_linear")?;
        if !points.len().is_multiple_of(t.dims) {
            return Err(Error::invalid("points are not whole rows"));
        }
        points
            .chunks_exact(t.dims)
            .map(|p| t.to_linear(p))
            .collect()
    }

    /// Points on this track at linear positions (rows of `n_dims`).
    pub fn linear_to_nd(&self, linear: &[f64]) -> Result<Vec<f64>> {
        let t = self.linear_track("linear_to_nd")?;
        Ok(linear.iter().flat_map(|&x| t.linear_to_nd(x)).collect())
    }
}
