//! The connectivity graph in compressed rows: `neighbors(b)` is a slice, edge
//! lengths alongside; shortest paths by A* (point to point) and Dijkstra
//! (multi-source distance fields) over it, with a binary heap.

use std::cmp::Ordering;
use std::collections::BinaryHeap;

use crate::grid::Grid;

#[derive(Clone, Debug, PartialEq)]
pub struct Graph {
    /// Row starts: bin b's neighbours are `nbrs[offsets[b]..offsets[b + 1]]`.
    pub offsets: Vec<usize>,
    /// Neighbours, ascending within a row.
    pub nbrs: Vec<u32>,
    /// Edge lengths (distance between the bin centres).
    pub dist: Vec<f64>,
}

impl Graph {
    /// Joins active grid neighbours: every offset in {−1, 0, 1}^n but 0 that
    /// moves along at most `axes` axes.
    pub fn grid(
        grid: &Grid,
        bin_to_flat: &[usize],
        flat_to_bin: &[i64],
        centers: &[f64],
        axes: usize,
    ) -> Graph {
        let n = grid.n_dims();
        let offsets_nd: Vec<Vec<i64>> = (0..3usize.pow(n as u32))
            .map(|c| {
                (0..n)
                    .map(|d| (c / 3usize.pow(d as u32) % 3) as i64 - 1)
                    .collect::<Vec<_>>()
            })
            .filter(|o: &Vec<i64>| {
                let nz = o.iter().filter(|&&v| v != 0).count();
                nz > 0 && nz <= axes
            })
            .collect();
        Graph::from_cells(bin_to_flat, flat_to_bin, centers, n, |f, out| {
            let idx = grid.unflat(f);
            'offs: for o in &offsets_nd {
                let mut g = 0usize;
                for d in 0..n {
                    let v = idx[d] as i64 + o[d];
                    if v < 0 || v >= grid.shape[d] as i64 {
                        continue 'offs;
                    }
                    g = g * grid.shape[d] + v as usize;
                }
                out.push(g);
            }
        })
    }

    /// Joins each active cell to the active cells `cells_next_to(f, out)`
    /// lists (flat indices), edge lengths the distances between centres.
    pub fn from_cells(
        bin_to_flat: &[usize],
        flat_to_bin: &[i64],
        centers: &[f64],
        n: usize,
        cells_next_to: impl Fn(usize, &mut Vec<usize>),
    ) -> Graph {
        let mut offsets = Vec::with_capacity(bin_to_flat.len() + 1);
        let (mut nbrs, mut dist) = (vec![], vec![]);
        offsets.push(0);
        let (mut cells, mut row) = (vec![], vec![]);
        for (b, &f) in bin_to_flat.iter().enumerate() {
            cells.clear();
            cells_next_to(f, &mut cells);
            row.clear();
            row.extend(
                cells
                    .iter()
                    .filter_map(|&g| u32::try_from(flat_to_bin[g]).ok()),
            );
            row.sort_unstable();
            row.dedup();
            for &nb in &row {
                let (p, q) = (
                    &centers[b * n..(b + 1) * n],
                    &centers[nb as usize * n..(nb as usize + 1) * n],
                );
                let d2: f64 = p.iter().zip(q).map(|(a, c)| (a - c) * (a - c)).sum();
                nbrs.push(nb);
                dist.push(d2.sqrt());
            }
            offsets.push(nbrs.len());
        }
        Graph {
            offsets,
            nbrs,
            dist,
        }
    }

    pub fn n_edges(&self) -> usize {
        self.nbrs.len() / 2
    }

    pub fn neighbors(&self, b: usize) -> &[u32] {
        &self.nbrs[self.offsets[b]..self.offsets[b + 1]]
    }

    /// Neighbours of `b` with the edge lengths.
    pub fn edges(&self, b: usize) -> impl Iterator<Item = (usize, f64)> + '_ {
        let r = self.offsets[b]..self.offsets[b + 1];
        self.nbrs[r.clone()]
            .iter()
            .map(|&v| v as usize)
            .zip(self.dist[r].iter().copied())
    }

    /// Geodesic distances from the nearest of `sources` to every bin (∞ where
    /// unreachable): multi-source Dijkstra.
    pub fn distances_from(&self, sources: &[usize]) -> Vec<f64> {
        let n = self.offsets.len() - 1;
        let mut dist = vec![f64::INFINITY; n];
        let mut heap = BinaryHeap::new();
        for &s in sources {
            dist[s] = 0.0;
            heap.push(Entry(0.0, s as u32));
        }
        while let Some(Entry(d, u)) = heap.pop() {
            let u = u as usize;
            if d > dist[u] {
                continue;
            }
            for (v, w) in self.edges(u) {
                let nd = d + w;
                if nd < dist[v] {
                    dist[v] = nd;
                    heap.push(Entry(nd, v as u32));
                }
            }
        }
        dist
    }

    /// A* from `a` to `b` guided by `h` (a lower bound of the remaining length,
    /// consistent with the edge lengths, e.g. the straight-line distance between
    /// centres): the distance to `b` and the predecessors on its path.
    fn astar(&self, a: usize, b: usize, h: &dyn Fn(usize) -> f64) -> (f64, Vec<u32>) {
        let n = self.offsets.len() - 1;
        let mut dist = vec![f64::INFINITY; n];
        let mut prev = vec![u32::MAX; n];
        let mut done = vec![false; n];
        let mut heap = BinaryHeap::new();
        dist[a] = 0.0;
        heap.push(Entry(h(a), a as u32));
        while let Some(Entry(_, u)) = heap.pop() {
            let u = u as usize;
            if done[u] {
                continue;
            }
            done[u] = true;
            if u == b {
                break;
            }
            for (v, w) in self.edges(u) {
                let nd = dist[u] + w;
                if nd < dist[v] {
                    dist[v] = nd;
                    prev[v] = u as u32;
                    heap.push(Entry(nd + h(v), v as u32));
                }
            }
        }
        (dist[b], prev)
    }

    /// A shortest path from `a` to `b` (bins, both ends included), or empty when
    /// `b` cannot be reached; `h` as for A* (`|_| 0.0` is Dijkstra).
    pub fn path(&self, a: usize, b: usize, h: &dyn Fn(usize) -> f64) -> Vec<usize> {
        let (dist, prev) = self.astar(a, b, h);
        if dist.is_infinite() {
            return vec![];
        }
        let mut path = vec![b];
        let mut at = b;
        while at != a {
            at = prev[at] as usize;
            path.push(at);
        }
        path.reverse();
        path
    }

    /// The geodesic distance from `a` to `b` (∞ when unreachable); `h` as for A*.
    pub fn distance(&self, a: usize, b: usize, h: &dyn Fn(usize) -> f64) -> f64 {
        self.astar(a, b, h).0
    }
}

/// A heap entry ordered by smallest distance first (then bin, for a fixed order).
#[derive(PartialEq)]
struct Entry(f64, u32);

impl Eq for Entry {}

impl Ord for Entry {
    fn cmp(&self, o: &Self) -> Ordering {
        o.0.total_cmp(&self.0).then_with(|| o.1.cmp(&self.1))
    }
}

impl PartialOrd for Entry {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}
