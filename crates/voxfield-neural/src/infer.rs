//! The MLP's forward pass for decoding, hand-blocked: activations are
//! feature-major (one row of `LANES` samples per feature), and each layer
//! keeps several outputs × `LANES` samples in registers while it runs over
//! the inputs (eight independent vector accumulators: enough to cover the
//! latency of fused multiply–adds on two ports). AVX-512 and AVX2 kernels
//! with fused multiply–add (intrinsics: written as plain arrays, the
//! accumulators went to the stack) and a plain-Rust baseline without, chosen
//! at run time. (The training path's GEMMs
//! pack both operands on every call; at 32 inputs and 32 outputs that packing
//! cost about as much as the arithmetic.)

use crate::Mlp;

/// Samples a kernel call computes together: two AVX-512 vectors per output,
/// so four outputs keep eight independent accumulators (enough to cover the
/// latency of fused multiply–adds on two ports; with 16 lanes the kernel ran
/// at half the rate).
pub(crate) const LANES: usize = 32;

/// An input block: `LANES` samples of each input feature, row `f` starting
/// at `data[f * stride]` (a row encoding is read in place).
#[derive(Clone, Copy)]
pub(crate) struct Input<'a> {
    pub data: &'a [f32],
    pub stride: usize,
}

/// Runs `mlp` (weights in `params`) on the `LANES` samples of `input`; `a`
/// and `b` are scratch for the hidden layers. Returns the `LANES` outputs.
pub(crate) fn forward(
    mlp: &Mlp,
    params: &[f32],
    input: Input,
    a: &mut Vec<f32>,
    b: &mut Vec<f32>,
) -> [f32; LANES] {
    let n_in = mlp.sizes[0];
    assert!(
        input.stride >= LANES && input.data.len() >= (n_in - 1) * input.stride + LANES,
        "inputs for {LANES} samples"
    );
    assert!(params.len() >= mlp.n_params, "weights for the network");
    let widest = mlp.sizes.iter().max().copied().unwrap_or(0);
    a.resize(widest * LANES, 0.0);
    b.resize(widest * LANES, 0.0);
    #[cfg(target_arch = "x86_64")]
    {
        if std::is_x86_feature_detected!("avx512f") && std::is_x86_feature_detected!("fma") {
            // SAFETY: the CPU has these (checked just above).
            return unsafe { forward_avx512(mlp, params, input, a, b) };
        }
        if std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma") {
            // SAFETY: the CPU has these (checked just above).
            return unsafe { forward_avx2(mlp, params, input, a, b) };
        }
    }
    forward_in(mlp, params, input, a, b)
}

/// A layer: `y = W x` (ReLU'd if asked) for W `n_out × n_in` row-major, x's
/// rows `stride` apart, y's `LANES` apart.
type Layer<'f> = dyn FnMut(&[f32], [usize; 2], Input, &mut [f32], bool) + 'f;

/// Every layer, ReLU after the hidden ones, through `layer`: the first reads
/// `input`, the others alternate between `a` and `b`.
#[inline(always)]
fn forward_with(
    mlp: &Mlp,
    params: &[f32],
    input: Input,
    a: &mut [f32],
    b: &mut [f32],
    layer: &mut Layer,
) -> [f32; LANES] {
    let last = mlp.sizes.len() - 2;
    let (mut src, mut dst) = (b, a);
    for k in 0..=last {
        let (n_in, n_out) = (mlp.sizes[k], mlp.sizes[k + 1]);
        let w = mlp.layer(params, k);
        let x = if k == 0 {
            input
        } else {
            Input {
                data: src,
                stride: LANES,
            }
        };
        // What the kernels rely on to stay inside their slices.
        assert!(
            x.stride >= LANES
                && x.data.len() >= (n_in - 1) * x.stride + LANES
                && dst.len() >= n_out * LANES
                && w.len() == n_in * n_out
        );
        layer(w, [n_in, n_out], x, dst, k < last);
        std::mem::swap(&mut src, &mut dst);
    }
    src[..LANES].try_into().expect("one row of outputs")
}

/// The baseline kernel (no fused multiply–add), in plain Rust.
fn forward_in(
    mlp: &Mlp,
    params: &[f32],
    input: Input,
    a: &mut [f32],
    b: &mut [f32],
) -> [f32; LANES] {
    forward_with(
        mlp,
        params,
        input,
        a,
        b,
        &mut |w, [n_in, n_out], x, y, relu| {
            for o in 0..n_out {
                let mut acc = [0f32; LANES];
                for (i, &wv) in w[o * n_in..(o + 1) * n_in].iter().enumerate() {
                    let xi = &x.data[i * x.stride..i * x.stride + LANES];
                    for s in 0..LANES {
                        acc[s] += wv * xi[s];
                    }
                }
                for (y, v) in y[o * LANES..(o + 1) * LANES].iter_mut().zip(acc) {
                    *y = if relu { v.max(0.0) } else { v };
                }
            }
        },
    )
}

/// Generates a kernel over vectors of `$lanes` floats: `$rows` outputs at a
/// time (then one at a time), each a row of `LANES / $lanes` vectors.
macro_rules! kernel {
    ($name:ident, $features:literal, $vec:ty, $lanes:literal, $rows:literal,
     $zero:ident, $set1:ident, $load:ident, $fmadd:ident, $max:ident, $store:ident) => {
        #[cfg(target_arch = "x86_64")]
        #[target_feature(enable = $features)]
        unsafe fn $name(
            mlp: &Mlp,
            params: &[f32],
            input: Input,
            a: &mut [f32],
            b: &mut [f32],
        ) -> [f32; LANES] {
            use std::arch::x86_64::*;
            const V: usize = LANES / $lanes;
            /// `R` outputs from `o` on.
            #[inline(always)]
            unsafe fn rows<const R: usize>(
                w: *const f32,
                n_in: usize,
                o: usize,
                x: Input,
                y: *mut f32,
                relu: bool,
            ) {
                // SAFETY (caller): x holds n_in rows of LANES `x.stride` apart,
                // y rows o..o + R of LANES, w rows o..o + R of n_in.
                unsafe {
                    let zero = $zero();
                    let mut acc: [[$vec; V]; R] = [[zero; V]; R];
                    let xp = x.data.as_ptr();
                    for i in 0..n_in {
                        let xs: [$vec; V] =
                            std::array::from_fn(|v| $load(xp.add(i * x.stride + v * $lanes)));
                        for r in 0..R {
                            let wv = $set1(*w.add((o + r) * n_in + i));
                            for v in 0..V {
                                acc[r][v] = $fmadd(wv, xs[v], acc[r][v]);
                            }
                        }
                    }
                    for r in 0..R {
                        for v in 0..V {
                            let a = if relu {
                                $max(acc[r][v], zero)
                            } else {
                                acc[r][v]
                            };
                            $store(y.add((o + r) * LANES + v * $lanes), a);
                        }
                    }
                }
            }
            forward_with(
                mlp,
                params,
                input,
                a,
                b,
                &mut |w, [n_in, n_out], x, y, relu| {
                    let (wp, yp) = (w.as_ptr(), y.as_mut_ptr());
                    let mut o = 0;
                    // SAFETY: `forward_with` checked the slices' sizes; o + R ≤ n_out.
                    unsafe {
                        while o + $rows <= n_out {
                            rows::<$rows>(wp, n_in, o, x, yp, relu);
                            o += $rows;
                        }
                        while o < n_out {
                            rows::<1>(wp, n_in, o, x, yp, relu);
                            o += 1;
                        }
                    }
                },
            )
        }
    };
}
kernel!(
    forward_avx512,
    "avx512f",
    __m512,
    16,
    4,
    _mm512_setzero_ps,
    _mm512_set1_ps,
    _mm512_loadu_ps,
    _mm512_fmadd_ps,
    _mm512_max_ps,
    _mm512_storeu_ps
);
kernel!(
    forward_avx2,
    "avx2,fma",
    __m256,
    8,
    2,
    _mm256_setzero_ps,
    _mm256_set1_ps,
    _mm256_loadu_ps,
    _mm256_fmadd_ps,
    _mm256_max_ps,
    _mm256_storeu_ps
);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Rng;

    #[test]
    fn every_kernel_equals_the_gemm_path_on_random_networks() {
        for (inputs, width, hidden, seed) in
            [(32, 32, 2, 1), (32, 64, 2, 2), (6, 7, 3, 3), (3, 1, 1, 4)]
        {
            let mlp = Mlp::new(inputs, width, hidden);
            let mut rng = Rng(seed);
            let mut params = vec![0f32; mlp.n_params];
            mlp.init(&mut rng, &mut params);
            // Inputs like an encoding's: both signs, some exactly zero.
            let xs: Vec<f32> = (0..LANES * inputs)
                .map(|i| {
                    if i % 7 == 0 {
                        0.0
                    } else {
                        rng.uniform(-2.0, 2.0)
                    }
                })
                .collect();
            // Reference: the training path's batched GEMMs (sample-major).
            let mut acts = vec![vec![0f32; LANES * inputs]];
            for s in 0..LANES {
                for f in 0..inputs {
                    acts[0][s * inputs + f] = xs[f * LANES + s];
                }
            }
            mlp.forward_batch(&params, LANES, &mut acts);
            let want = acts.last().unwrap().clone();
            // The inputs read in place from a wider block (rows 40 apart).
            let stride = LANES + 8;
            let mut wide = vec![f32::NAN; stride * inputs];
            for f in 0..inputs {
                wide[f * stride..f * stride + LANES]
                    .copy_from_slice(&xs[f * LANES..(f + 1) * LANES]);
            }
            let input = Input {
                data: &wide,
                stride,
            };
            let scratch = || vec![0f32; LANES * width.max(inputs)];
            let (mut a, mut b) = (vec![], vec![]);
            let got = forward(&mlp, &params, input, &mut a, &mut b);
            let scalar = forward_in(&mlp, &params, input, &mut scratch(), &mut scratch());
            // Each vector kernel the CPU has, called directly.
            let mut kernels = vec![];
            #[cfg(target_arch = "x86_64")]
            {
                type Kernel =
                    unsafe fn(&Mlp, &[f32], Input, &mut [f32], &mut [f32]) -> [f32; LANES];
                let mut run = |k: Kernel| {
                    // SAFETY: called only where the CPU has the kernel's features.
                    kernels
                        .push(unsafe { k(&mlp, &params, input, &mut scratch(), &mut scratch()) });
                };
                if std::is_x86_feature_detected!("avx512f") {
                    run(forward_avx512);
                }
                if std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma") {
                    run(forward_avx2);
                }
            }
            for s in 0..LANES {
                for v in [got[s], scalar[s]]
                    .into_iter()
                    .chain(kernels.iter().map(|k| k[s]))
                {
                    assert!(
                        (v - want[s]).abs() <= 1e-6 * want[s].abs().max(1.0),
                        "{inputs}-{width}x{hidden}: sample {s}: {v} vs {}",
                        want[s]
                    );
                }
            }
        }
    }
}
