use voxfield_core::field::PlaneRow;
use voxfield_core::{with_voxel, Affine, ContiguousView, Field, Result};

use crate::kernel::{Kernel, Strided};
use crate::{Method, SampleOptions};

/// A volume seen as a continuous field. Borrowing the view keeps the mapping alive
/// and read-only for as long as the field exists; nothing is copied or cast.
pub struct VolumeField<'a> {
    view: ContiguousView<'a>,
    method: Method,
    kernel: Kernel,
    grid: Strided,
}

impl<'a> VolumeField<'a> {
    /// `world_to_index`: `None` samples in index space; `Some(inv)` maps every
    /// position through `inv` first (the inverse of the volume's index→world affine).
    pub fn new(
        view: ContiguousView<'a>,
        opts: SampleOptions,
        value_scale: Option<(f64, f64)>,
        world_to_index: Option<Affine>,
    ) -> Self {
        let grid = Strided {
            // SAFETY: origin lies inside the view's buffer (checked by ContiguousView::new).
            base: unsafe { view.bytes().as_ptr().add(view.origin()) },
            shape: view.shape(),
            strides: view.strides(),
        };
        let kernel = Kernel::new(view.shape(), &opts, value_scale, world_to_index);
        Self {
            view,
            method: opts.method,
            kernel,
            grid,
        }
    }

    pub fn shape(&self) -> [usize; 3] {
        self.view.shape()
    }
}

impl Field for VolumeField<'_> {
    fn sample_block(&self, points: &[[f64; 3]], out: &mut [f64]) -> Result<()> {
        crate::check_unfiltered(self.method)?;
        let (k, g) = (&self.kernel, &self.grid);
        with_voxel!(self.view.dtype(), self.view.endian(), |V| {
            let load = |i: [usize; 3]| g.load::<V>(i);
            with_taps!(self.method, |K| k
                .sample::<V, K>(g, [0; 3], true, points, out, &load))
        });
        Ok(())
    }

    fn sample_row(&self, row: &PlaneRow, out: &mut [f64]) -> Result<()> {
        crate::check_unfiltered(self.method)?;
        let (k, g) = (&self.kernel, &self.grid);
        with_voxel!(self.view.dtype(), self.view.endian(), |V| {
            let load = |i: [usize; 3]| g.load::<V>(i);
            with_taps!(self.method, |K| k.sample_row::<V, K>(g, row, out, &load))
        });
        Ok(())
    }
}
