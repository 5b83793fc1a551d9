//! One N-d index odometer: the last axis turns fastest (C order).

/// Advances `idx` to the next index of the box `lo..=hi` (inclusive on every
/// axis, last axis fastest); `false` once it has passed the last index (then
/// `idx` is back at `lo`).
pub fn step_inclusive(idx: &mut [usize], lo: &[usize], hi: &[usize]) -> bool {
    for a in (0..idx.len()).rev() {
        if idx[a] < hi[a] {
            idx[a] += 1;
            return true;
        }
        idx[a] = lo[a];
    }
    false
}

/// Advances `idx` to the next index of an array of `shape` (C order); `false`
/// once it has passed the last index (then `idx` is all zeros).
pub fn step(idx: &mut [usize], shape: &[usize]) -> bool {
    for a in (0..idx.len()).rev() {
        idx[a] += 1;
        if idx[a] < shape[a] {
            return true;
        }
        idx[a] = 0;
    }
    false
}

/// Position `c` in a C-ordered 3-D grid of `dims`, as a linear index.
#[inline]
pub fn flat3(c: [usize; 3], dims: [usize; 3]) -> usize {
    (c[0] * dims[1] + c[1]) * dims[2] + c[2]
}

/// Linear index `i` of a C-ordered 3-D grid of `dims`, as a position.
#[inline]
pub fn unflat3(i: usize, dims: [usize; 3]) -> [usize; 3] {
    [i / (dims[1] * dims[2]), i / dims[2] % dims[1], i % dims[2]]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn visits_every_index_once_in_c_order() {
        let (lo, hi) = ([1usize, 0, 2], [2usize, 1, 4]);
        let mut idx = lo;
        let mut seen = vec![idx];
        while step_inclusive(&mut idx, &lo, &hi) {
            seen.push(idx);
        }
        assert_eq!(seen.len(), 2 * 2 * 3);
        assert_eq!(seen[1], [1, 0, 3]);
        assert_eq!(*seen.last().unwrap(), hi);
        assert_eq!(idx, lo);
        let mut idx = [0usize; 2];
        let mut n = 1;
        while step(&mut idx, &[3, 2]) {
            n += 1;
        }
        assert_eq!((n, idx), (6, [0, 0]));
        let dims = [3, 4, 5];
        for i in 0..60 {
            assert_eq!(flat3(unflat3(i, dims), dims), i);
        }
        assert_eq!(unflat3(23, dims), [1, 0, 3]);
    }
}
