//! Adam over the flat parameter vector. As tiny-cuda-nn
//! (`skip_zero_grad_non_matrix_params`), an encoding entry whose gradient is
//! exactly 0 in a step is left alone and keeps its own step count for the bias
//! correction; MLP weights are always updated (with L2 regularisation).

#[derive(Clone, Debug)]
pub struct Adam {
    pub lr: f32,
    pub beta1: f32,
    pub beta2: f32,
    pub eps: f32,
    /// L2 regularisation of the MLP weights.
    pub l2: f32,
    m: Vec<f32>,
    v: Vec<f32>,
    steps: Vec<u32>,
    /// Parameters before this index are encoding entries (sparse updates).
    sparse_until: usize,
}

impl Adam {
    /// tiny-cuda-nn's image/volume settings: β = (0.9, 0.99), ε = 1e-15, L2 1e-6.
    pub fn new(n: usize, sparse_until: usize, lr: f32) -> Self {
        Adam {
            lr,
            beta1: 0.9,
            beta2: 0.99,
            eps: 1e-15,
            l2: 1e-6,
            m: vec![0.0; n],
            v: vec![0.0; n],
            steps: vec![0; n],
            sparse_until,
        }
    }

    /// One step with gradient `grad` (consumed: left as is).
    pub fn step(&mut self, params: &mut [f32], grad: &[f32]) {
        for i in 0..params.len() {
            let mut g = grad[i];
            if i < self.sparse_until {
                if g == 0.0 {
                    continue;
                }
            } else {
                g += self.l2 * params[i];
            }
            self.steps[i] += 1;
            let t = self.steps[i] as i32;
            self.m[i] = self.beta1 * self.m[i] + (1.0 - self.beta1) * g;
            self.v[i] = self.beta2 * self.v[i] + (1.0 - self.beta2) * g * g;
            let mh = self.m[i] / (1.0 - self.beta1.powi(t));
            let vh = self.v[i] / (1.0 - self.beta2.powi(t));
            params[i] -= self.lr * mh / (vh.sqrt() + self.eps);
        }
    }
}
