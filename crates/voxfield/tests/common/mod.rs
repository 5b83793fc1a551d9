//! Test sources shared by the memory tests.

use voxfield::{VolumeInfo, VolumeSource};
use voxfield_core::{DType, Endian};

/// A linear float32 volume `w·(i, j, k)` generated chunk by chunk (never held
/// whole), so linear sampling and 2×2×2 means of it are exact.
pub struct Ramp {
    info: VolumeInfo,
    w: [f32; 3],
}

impl Ramp {
    pub fn new(shape: [usize; 3], chunk: [usize; 3], w: [f32; 3]) -> Self {
        Ramp {
            info: VolumeInfo {
                format: "test",
                path: "ramp".into(),
                shape,
                dtype: DType::F32,
                endian: Endian::NATIVE,
                chunk_shape: chunk,
                affine: None,
                bytes_on_disk: 0,
                value_scale: None,
                notes: vec![],
                axes: voxfield_core::Axes::plain(shape),
            },
            w,
        }
    }
}

impl VolumeSource for Ramp {
    fn info(&self) -> &VolumeInfo {
        &self.info
    }
    fn read_chunk(&self, idx: [usize; 3], out: &mut [u8]) -> voxfield::Result<()> {
        let cs = self.info.chunk_shape;
        for (n, v) in out.chunks_exact_mut(4).enumerate() {
            let g = [n / (cs[1] * cs[2]), (n / cs[2]) % cs[1], n % cs[2]];
            let x: f32 = (0..3)
                .map(|a| self.w[a] * (idx[a] * cs[a] + g[a]) as f32)
                .sum();
            v.copy_from_slice(&x.to_ne_bytes());
        }
        Ok(())
    }
}
