//! A procedurally generated 3-D Shepp–Logan head phantom (the modified ellipsoid
//! set of Kak & Slaney), written as a uint8 `.npy` so the demo exercises the real
//! memory-mapped path.

use std::io::Write;
use std::path::Path;

use rayon::prelude::*;

/// (A, a, b, c, x0, y0, z0, phi°): intensity, semi-axes, centre, rotation about z.
const ELLIPSOIDS: [[f64; 8]; 10] = [
    [1.0, 0.69, 0.92, 0.81, 0.0, 0.0, 0.0, 0.0],
    [-0.8, 0.6624, 0.874, 0.78, 0.0, -0.0184, 0.0, 0.0],
    [-0.2, 0.11, 0.31, 0.22, 0.22, 0.0, 0.0, -18.0],
    [-0.2, 0.16, 0.41, 0.28, -0.22, 0.0, 0.0, 18.0],
    [0.1, 0.21, 0.25, 0.41, 0.0, 0.35, -0.15, 0.0],
    [0.1, 0.046, 0.046, 0.05, 0.0, 0.1, 0.25, 0.0],
    [0.1, 0.046, 0.046, 0.05, 0.0, -0.1, 0.25, 0.0],
    [0.1, 0.046, 0.023, 0.05, -0.08, -0.605, 0.0, 0.0],
    [0.1, 0.023, 0.023, 0.02, 0.0, -0.606, 0.0, 0.0],
    [0.1, 0.023, 0.046, 0.02, 0.06, -0.605, 0.0, 0.0],
];

/// Phantom intensity at (x, y, z) in [-1, 1]³ (0 outside the head, 1 at the skull).
pub fn intensity(x: f64, y: f64, z: f64) -> f64 {
    ELLIPSOIDS
        .iter()
        .filter(|e| {
            let (s, c) = if e[7] == 0.0 {
                (0.0, 1.0)
            } else {
                e[7].to_radians().sin_cos()
            };
            let (dx, dy, dz) = (x - e[4], y - e[5], z - e[6]);
            let (rx, ry) = (c * dx + s * dy, -s * dx + c * dy);
            (rx / e[1]).powi(2) + (ry / e[2]).powi(2) + (dz / e[3]).powi(2) <= 1.0
        })
        .map(|e| e[0])
        .sum()
}

/// Writes an `n³` uint8 phantom (axis 0 = z, axis 1 = y, axis 2 = x), 250 at the skull.
pub fn write(path: &Path, n: usize) -> anyhow::Result<()> {
    anyhow::ensure!(
        (8..=2048).contains(&n),
        "phantom size {n} must be between 8 and 2048"
    );
    let mut f = std::io::BufWriter::new(std::fs::File::create(path)?);
    f.write_all(&voxfield_io::npy::header_bytes("|u1", &[n, n, n]))?;
    let c = (n - 1) as f64 / 2.0;
    let coord = |i: usize| (i as f64 - c) / c;
    for i in 0..n {
        let slab: Vec<u8> = (0..n * n)
            .into_par_iter()
            .map(|p| {
                (intensity(coord(p % n), -coord(p / n), coord(i)) * 250.0)
                    .clamp(0.0, 255.0)
                    .round() as u8
            })
            .collect();
        f.write_all(&slab)?;
    }
    f.flush()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn skull_brain_and_air() {
        assert_eq!(intensity(0.0, 0.0, 0.95), 0.0); // outside
        assert!((intensity(0.0, 0.9, 0.0) - 1.0).abs() < 1e-12); // skull
        assert!((intensity(0.0, 0.0, 0.0) - 0.2).abs() < 1e-12); // brain
    }
}
