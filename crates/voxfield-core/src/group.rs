//! Grouping items by a small integer key in one counting pass: the layout the
//! bucket grids of the RBF and environment engines search.

/// Items grouped by key (`keys[i]` < `n_keys`) in compressed rows: the items
/// of key k are `order[start[k]..start[k + 1]]`, in item order.
pub fn group_by_key(keys: &[usize], n_keys: usize) -> (Vec<u32>, Vec<u32>) {
    let mut start = vec![0u32; n_keys + 1];
    for &k in keys {
        start[k + 1] += 1;
    }
    for k in 0..n_keys {
        start[k + 1] += start[k];
    }
    let mut fill = start.clone();
    let mut order = vec![0u32; keys.len()];
    for (i, &k) in keys.iter().enumerate() {
        order[fill[k] as usize] = i as u32;
        fill[k] += 1;
    }
    (start, order)
}

#[cfg(test)]
mod tests {
    #[test]
    fn groups_keep_item_order() {
        let (start, order) = super::group_by_key(&[2, 0, 2, 1, 0], 4);
        assert_eq!(start, vec![0, 2, 3, 5, 5]);
        assert_eq!(order, vec![1, 4, 3, 0, 2]);
    }
}
