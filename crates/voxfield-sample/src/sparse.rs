//! Sampling sparse volumes: every tap is an O(1) lookup of the stored voxels, with
//! the fill value everywhere else; nothing is densified and no chunk is built.

use voxfield_core::{Affine, Field, Result, SparseVoxels};

use crate::kernel::Kernel;
use crate::{Method, SampleOptions};

pub struct SparseField<'a> {
    voxels: Box<dyn SparseVoxels + 'a>,
    method: Method,
    kernel: Kernel,
}

impl<'a> SparseField<'a> {
    pub fn new(
        voxels: Box<dyn SparseVoxels + 'a>,
        shape: [usize; 3],
        opts: SampleOptions,
        value_scale: Option<(f64, f64)>,
        world_to_index: Option<Affine>,
    ) -> Self {
        let kernel = Kernel::new(shape, &opts, value_scale, world_to_index);
        Self {
            voxels,
            method: opts.method,
            kernel,
        }
    }
}

impl Field for SparseField<'_> {
    fn sample_block(&self, points: &[[f64; 3]], out: &mut [f64]) -> Result<()> {
        crate::check_unfiltered(self.method)?;
        let load = |i: [usize; 3]| self.voxels.get(i);
        with_taps!(self.method, |K| self
            .kernel
            .sample_lookup::<K>(points, out, &load));
        Ok(())
    }
}
