use voxfield_core::{with_voxel, Affine, ContiguousView, Field, Result, VolumeInfo};

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
        let kernel = Kernel {
            shape: view.shape(),
            mode: opts.mode,
            cval: opts.cval,
            scale: value_scale,
            to_index: world_to_index.filter(|a| !a.is_identity()),
        };
        Self {
            view,
            method: opts.method,
            kernel,
            grid,
        }
    }

    /// Builds the field for a source's view and info; `world` uses `affine` (or the
    /// file's own affine when `affine` is `None`) to map world positions to indices.
    pub fn from_info(
        view: ContiguousView<'a>,
        info: &VolumeInfo,
        opts: SampleOptions,
        world: bool,
        affine: Option<Affine>,
    ) -> Result<Self> {
        let to_index = if world {
            let a = affine.or(info.affine).unwrap_or(Affine::IDENTITY);
            Some(a.inverse()?)
        } else {
            None
        };
        Ok(Self::new(view, opts, info.value_scale, to_index))
    }

    pub fn shape(&self) -> [usize; 3] {
        self.view.shape()
    }
}

impl Field for VolumeField<'_> {
    fn sample_block(&self, points: &[[f64; 3]], out: &mut [f64]) -> Result<()> {
        let (k, g) = (&self.kernel, &self.grid);
        with_voxel!(self.view.dtype(), self.view.endian(), |V| {
            let load = |i: [usize; 3]| g.load::<V>(i);
            match self.method {
                Method::Nearest => k.sample::<V, 1>(g, [0; 3], true, points, out, &load),
                Method::Linear => k.sample::<V, 2>(g, [0; 3], true, points, out, &load),
                Method::Cubic => k.sample::<V, 4>(g, [0; 3], true, points, out, &load),
            }
        });
        Ok(())
    }
}
