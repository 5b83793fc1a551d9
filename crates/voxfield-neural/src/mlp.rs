//! The bias-free MLP of tiny-cuda-nn's fully fused networks: `inputs → width →
//! … → 1`, ReLU after each hidden layer, a linear output (values are normalised
//! to [0, 1]). Weights are row-major per layer, stored in a flat slice.

use voxfield_core::dot::dot;

/// Layer sizes and where each layer's weights start.
#[derive(Clone, Debug, PartialEq)]
pub struct Mlp {
    /// Widths from the input to the output, e.g. [32, 64, 64, 1].
    pub sizes: Vec<usize>,
    offsets: Vec<usize>,
    pub n_params: usize,
}

impl Mlp {
    pub fn new(inputs: usize, width: usize, hidden: usize) -> Self {
        let mut sizes = vec![inputs];
        sizes.extend(std::iter::repeat_n(width, hidden));
        sizes.push(1);
        let mut offsets = vec![];
        let mut n = 0;
        for w in sizes.windows(2) {
            offsets.push(n);
            n += w[0] * w[1];
        }
        Mlp {
            sizes,
            offsets,
            n_params: n,
        }
    }

    /// Layer `k`'s weights (`sizes[k+1]` rows of `sizes[k]`).
    pub(crate) fn layer<'a>(&self, params: &'a [f32], k: usize) -> &'a [f32] {
        &params[self.offsets[k]..self.offsets[k] + self.sizes[k] * self.sizes[k + 1]]
    }

    /// Xavier-uniform initialisation (tiny-cuda-nn's default for its MLPs).
    pub fn init(&self, rng: &mut crate::Rng, params: &mut [f32]) {
        for (k, w) in self.sizes.windows(2).enumerate() {
            let a = (6.0 / (w[0] + w[1]) as f32).sqrt();
            let start = self.offsets[k];
            for p in &mut params[start..start + w[0] * w[1]] {
                *p = rng.uniform(-a, a);
            }
        }
    }

    /// Runs one input through the network; `acts` receives every layer's output
    /// (after ReLU for hidden layers) for the backward pass. Returns the output.
    pub fn forward(&self, params: &[f32], input: &[f32], acts: &mut Vec<Vec<f32>>) -> f32 {
        acts.resize(self.sizes.len(), vec![]);
        acts[0].clear();
        acts[0].extend_from_slice(input);
        let last = self.sizes.len() - 2;
        for k in 0..=last {
            let (n_in, n_out) = (self.sizes[k], self.sizes[k + 1]);
            let w = self.layer(params, k);
            let (prev, next) = acts.split_at_mut(k + 1);
            let x = &prev[k];
            let y = &mut next[0];
            y.clear();
            y.extend((0..n_out).map(|o| {
                let row = &w[o * n_in..(o + 1) * n_in];
                let s = dot(row, x);
                if k < last {
                    s.max(0.0)
                } else {
                    s
                }
            }));
        }
        acts[last + 1][0]
    }

    /// Backpropagates dL/d(output) = `d_out` through the activations of the last
    /// `forward`: adds the weight gradient into `grad` and writes dL/d(input).
    pub fn backward(
        &self,
        params: &[f32],
        acts: &[Vec<f32>],
        d_out: f32,
        grad: &mut [f32],
        d_input: &mut [f32],
    ) {
        let last = self.sizes.len() - 2;
        let mut delta = vec![d_out];
        for k in (0..=last).rev() {
            let (n_in, n_out) = (self.sizes[k], self.sizes[k + 1]);
            let w = self.layer(params, k);
            let g = &mut grad[self.offsets[k]..self.offsets[k] + n_in * n_out];
            let x = &acts[k];
            let mut prev = vec![0.0f32; n_in];
            for o in 0..n_out {
                let d = delta[o];
                if d == 0.0 {
                    continue;
                }
                for i in 0..n_in {
                    g[o * n_in + i] += d * x[i];
                    prev[i] += d * w[o * n_in + i];
                }
            }
            if k > 0 {
                // Through the ReLU of the layer below (its output is acts[k]).
                for i in 0..n_in {
                    if x[i] <= 0.0 {
                        prev[i] = 0.0;
                    }
                }
            }
            delta = prev;
        }
        d_input.copy_from_slice(&delta);
    }
}

impl Mlp {
    /// Forward pass of `b` samples at once, each layer one small GEMM: `acts[0]`
    /// holds the inputs (b × inputs, row-major) and receives every layer's output
    /// (after ReLU for hidden layers) in `acts[k]` (b × sizes[k]).
    pub fn forward_batch(&self, params: &[f32], b: usize, acts: &mut Vec<Vec<f32>>) {
        acts.resize(self.sizes.len(), vec![]);
        let last = self.sizes.len() - 2;
        for k in 0..=last {
            let (n_in, n_out) = (self.sizes[k], self.sizes[k + 1]);
            let (prev, next) = acts.split_at_mut(k + 1);
            let y = &mut next[0];
            y.resize(b * n_out, 0.0);
            // Y = X · Wᵀ, W being n_out × n_in row-major.
            gemm(
                [b, n_in, n_out],
                (&prev[k][..b * n_in], [n_in, 1]),
                (self.layer(params, k), [1, n_in]),
                0.0,
                (y, [n_out, 1]),
            );
            if k < last {
                y.iter_mut().for_each(|v| *v = v.max(0.0));
            }
        }
    }

    /// Backward pass of the last `forward_batch` of `b` samples: `delta` holds
    /// dL/d(output) per sample (b × 1) and is used as scratch; adds the weight
    /// gradients into `grad` and writes dL/d(input) (b × inputs) to `d_input`.
    pub fn backward_batch(
        &self,
        params: &[f32],
        b: usize,
        acts: &[Vec<f32>],
        delta: &mut Vec<f32>,
        grad: &mut [f32],
        d_input: &mut Vec<f32>,
    ) {
        let last = self.sizes.len() - 2;
        for k in (0..=last).rev() {
            let (n_in, n_out) = (self.sizes[k], self.sizes[k + 1]);
            let w = self.layer(params, k);
            let x = &acts[k][..b * n_in];
            let g = &mut grad[self.offsets[k]..self.offsets[k] + n_in * n_out];
            // dW += Dᵀ · X.
            gemm(
                [n_out, b, n_in],
                (&delta[..b * n_out], [1, n_out]),
                (x, [n_in, 1]),
                1.0,
                (g, [n_in, 1]),
            );
            // dX = D · W, then through the ReLU of the layer below.
            d_input.resize(b * n_in, 0.0);
            gemm(
                [b, n_out, n_in],
                (&delta[..b * n_out], [n_out, 1]),
                (w, [n_in, 1]),
                0.0,
                (d_input, [n_in, 1]),
            );
            if k > 0 {
                for (d, &a) in d_input.iter_mut().zip(x) {
                    if a <= 0.0 {
                        *d = 0.0;
                    }
                }
                std::mem::swap(delta, d_input);
            }
        }
    }
}

/// C = A · B + beta · C for an m × k matrix A and a k × n matrix B given as
/// slices with (row, column) strides, through matrixmultiply's runtime-dispatched
/// SIMD kernels. Panics if a slice is too short for its strides.
fn gemm(
    [m, k, n]: [usize; 3],
    (a, [rsa, csa]): (&[f32], [usize; 2]),
    (b, [rsb, csb]): (&[f32], [usize; 2]),
    beta: f32,
    (c, [rsc, csc]): (&mut [f32], [usize; 2]),
) {
    let span = |rows: usize, cols: usize, rs: usize, cs: usize| {
        if rows == 0 || cols == 0 {
            0
        } else {
            (rows - 1) * rs + (cols - 1) * cs + 1
        }
    };
    assert!(a.len() >= span(m, k, rsa, csa));
    assert!(b.len() >= span(k, n, rsb, csb));
    assert!(c.len() >= span(m, n, rsc, csc));
    // SAFETY: the asserts keep every strided access inside its slice, and `c`
    // is borrowed mutably so it aliases neither input.
    unsafe {
        matrixmultiply::sgemm(
            m,
            k,
            n,
            1.0,
            a.as_ptr(),
            rsa as isize,
            csa as isize,
            b.as_ptr(),
            rsb as isize,
            csb as isize,
            beta,
            c.as_mut_ptr(),
            rsc as isize,
            csc as isize,
        );
    }
}
