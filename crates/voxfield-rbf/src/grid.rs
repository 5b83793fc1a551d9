//! A model sampled on a regular grid, seen as a float32 volume, so anything that
//! writes volumes (the Zarr writer, chunk by chunk) can write a fitted field.

use std::path::PathBuf;

use voxfield_core::{DType, Endian, Error, Result, VolumeInfo, VolumeSource};

use crate::model::RbfModel;

/// `shape[a]` nodes from `lo[a]` to `hi[a]` per axis; 2-D (and 1-D) grids get
/// trailing axes of length 1.
pub struct GridVolume<'a> {
    model: &'a RbfModel,
    channel: usize,
    lo: [f64; 3],
    step: [f64; 3],
    info: VolumeInfo,
}

impl<'a> GridVolume<'a> {
    pub fn new(
        model: &'a RbfModel,
        channel: usize,
        lo: &[f64],
        hi: &[f64],
        shape: &[usize],
    ) -> Result<Self> {
        let dim = model.dim();
        if lo.len() != dim || hi.len() != dim || shape.len() != dim || shape.contains(&0) {
            return Err(Error::invalid(format!(
                "a grid of this {dim}-D model needs {dim} bounds and {dim} non-zero sizes"
            )));
        }
        if channel >= model.channels() {
            return Err(Error::invalid(format!(
                "channel {channel} does not exist (the model has {})",
                model.channels()
            )));
        }
        let mut s3 = [1usize; 3];
        let (mut l3, mut st) = ([0.0; 3], [0.0; 3]);
        for a in 0..dim {
            s3[a] = shape[a];
            l3[a] = lo[a];
            st[a] = if shape[a] > 1 {
                (hi[a] - lo[a]) / (shape[a] - 1) as f64
            } else {
                0.0
            };
        }
        Ok(GridVolume {
            model,
            channel,
            lo: l3,
            step: st,
            info: VolumeInfo {
                format: "rbf-grid",
                path: PathBuf::new(),
                shape: s3,
                dtype: DType::F32,
                endian: Endian::NATIVE,
                chunk_shape: s3,
                affine: None,
                bytes_on_disk: 0,
                value_scale: None,
                notes: vec![],
                axes: voxfield_core::Axes::plain(s3),
            },
        })
    }
}

impl GridVolume<'_> {
    /// The same grid with the affine from its indices to the model's
    /// coordinates (node i of axis a at lo[a] + i·step[a]), and a path to name.
    pub fn with_world(mut self, path: &std::path::Path) -> Result<Self> {
        let mut rows = [[0.0; 4]; 4];
        for a in 0..3 {
            rows[a][a] = if self.step[a] != 0.0 {
                self.step[a]
            } else {
                1.0
            };
            rows[a][3] = self.lo[a];
        }
        rows[3][3] = 1.0;
        self.info.affine = Some(voxfield_core::Affine::from_rows(rows)?);
        self.info.path = path.to_path_buf();
        Ok(self)
    }
}

impl VolumeSource for GridVolume<'_> {
    fn info(&self) -> &VolumeInfo {
        &self.info
    }

    fn read_box_native(&self, start: [usize; 3], size: [usize; 3], out: &mut [u8]) -> Result<()> {
        let n: usize = size.iter().product();
        if out.len() != n * 4 || (0..3).any(|a| start[a] + size[a] > self.info.shape[a]) {
            return Err(Error::invalid(
                "grid box outside the grid or wrong output size",
            ));
        }
        let dim = self.model.dim();
        let mut vals = vec![0.0; self.model.channels()];
        let mut o = out.chunks_exact_mut(4);
        for i in 0..size[0] {
            for j in 0..size[1] {
                for k in 0..size[2] {
                    let idx = [start[0] + i, start[1] + j, start[2] + k];
                    let x = [0, 1, 2].map(|a| self.lo[a] + idx[a] as f64 * self.step[a]);
                    self.model.eval_one(&x[..dim], &mut vals);
                    let v = vals[self.channel] as f32;
                    o.next()
                        .expect("sized above")
                        .copy_from_slice(&v.to_ne_bytes());
                }
            }
        }
        Ok(())
    }
}
