use std::path::PathBuf;

use crate::voxel::read_f64;
use crate::{Affine, Axes, DType, Endian, Error, Result};

/// What a source knows about itself, cheaply (no voxel read).
#[derive(Clone, Debug)]
pub struct VolumeInfo {
    /// Short format name (`npy`, `raw`, `nifti`, `nrrd`, ...).
    pub format: &'static str,
    pub path: PathBuf,
    /// Shape of the 3-D view that is sampled (see `axes` for the stored array).
    pub shape: [usize; 3],
    pub dtype: DType,
    pub endian: Endian,
    /// Storage chunk shape; the whole shape for contiguous storage.
    pub chunk_shape: [usize; 3],
    /// Index → world map given by the file, if the format carries one.
    pub affine: Option<Affine>,
    /// Bytes the source takes on disk, when known at open for the cost of a
    /// `stat` (0 otherwise; see [`VolumeSource::disk_usage`]).
    pub bytes_on_disk: u64,
    /// `value = slope * stored + intercept` (NIfTI `scl_slope`/`scl_inter`).
    pub value_scale: Option<(f64, f64)>,
    /// Things the user should know about how the source was opened
    /// (for example that a gzip file was decompressed to a temporary file).
    pub notes: Vec<String>,
    /// The stored array's axes and the index selection that gives the 3-D view.
    pub axes: Axes,
}

impl VolumeInfo {
    /// The info of the 3-D view `axes` selects from an array stored in chunks of
    /// `array_chunk` (the array shape for contiguous storage); no affine, no scale.
    pub fn selected(
        format: &'static str,
        path: &std::path::Path,
        axes: Axes,
        array_chunk: &[usize],
        dtype: DType,
        endian: Endian,
    ) -> Self {
        VolumeInfo {
            format,
            path: path.to_path_buf(),
            shape: axes.view_shape(),
            dtype,
            endian,
            chunk_shape: axes.view_of(array_chunk),
            affine: None,
            bytes_on_disk: 0,
            value_scale: None,
            notes: vec![],
            axes,
        }
    }

    /// Refuses sizes no real volume has (a corrupt or forged header): every
    /// later product of lengths (voxels, bytes, chunks) then fits in 64 bits,
    /// so none wraps to a small number and a conversion "succeeds" on nothing.
    pub fn check_sizes(&self) -> Result<()> {
        let bad = |m: String| Error::format(&self.path, m);
        if self.shape.contains(&0) || self.chunk_shape.contains(&0) {
            return Err(bad(format!(
                "shape {:?} with chunks {:?} has an empty axis",
                self.shape, self.chunk_shape
            )));
        }
        let stored = self
            .axes
            .axes
            .iter()
            .try_fold(1u64, |p, a| p.checked_mul(a.len as u64));
        let view = self
            .shape
            .iter()
            .try_fold(1u64, |p, &n| p.checked_mul(n as u64));
        let bytes = stored
            .zip(view)
            .and_then(|(s, v)| s.max(v).checked_mul(self.dtype.size() as u64));
        if bytes.is_none_or(|b| b > MAX_VOLUME_BYTES) {
            return Err(bad(format!(
                "an array of shape {:?} ({}) would hold more than 2^56 bytes: the header is corrupt or forged",
                self.axes.axes.iter().map(|a| a.len).collect::<Vec<_>>(),
                self.dtype
            )));
        }
        Ok(())
    }
}

/// Bytes an array may claim, at most (64 PiB): products of its lengths, and
/// byte offsets within it, then never overflow.
pub const MAX_VOLUME_BYTES: u64 = 1 << 56;

/// Zero-copy access to voxels laid out with fixed byte strides in one buffer.
#[derive(Clone, Copy, Debug)]
pub struct ContiguousView<'a> {
    bytes: &'a [u8],
    shape: [usize; 3],
    strides: [isize; 3],
    origin: usize,
    dtype: DType,
    endian: Endian,
}

impl<'a> ContiguousView<'a> {
    /// Checks that every voxel `origin + Σ i·stride` lies inside `bytes`.
    pub fn new(
        bytes: &'a [u8],
        shape: [usize; 3],
        strides: [isize; 3],
        origin: usize,
        dtype: DType,
        endian: Endian,
    ) -> Result<Self> {
        if shape.contains(&0) {
            return Err(Error::invalid(format!("volume shape {shape:?} is empty")));
        }
        let mut lo = origin as i128;
        let mut hi = origin as i128;
        for a in 0..3 {
            let span = (shape[a] as i128 - 1) * strides[a] as i128;
            if span < 0 {
                lo += span
            } else {
                hi += span
            }
        }
        if lo < 0 || hi + dtype.size() as i128 > bytes.len() as i128 {
            return Err(Error::invalid(format!(
                "view of shape {shape:?} with strides {strides:?} does not fit in {} bytes",
                bytes.len()
            )));
        }
        Ok(Self {
            bytes,
            shape,
            strides,
            origin,
            dtype,
            endian,
        })
    }

    /// A dense C-order (`fortran == false`) or Fortran-order array.
    pub fn dense(
        bytes: &'a [u8],
        shape: [usize; 3],
        dtype: DType,
        endian: Endian,
        fortran: bool,
    ) -> Result<Self> {
        let s = dtype.size() as isize;
        let [a, b, c] = shape.map(|n| n as isize);
        let strides = if fortran {
            [s, s * a, s * a * b]
        } else {
            [s * b * c, s * c, s]
        };
        Self::new(bytes, shape, strides, 0, dtype, endian)
    }

    /// The 3-D view that `axes` selects from a dense N-D array (C or Fortran order).
    pub fn select(
        bytes: &'a [u8],
        axes: &Axes,
        dtype: DType,
        endian: Endian,
        fortran: bool,
    ) -> Result<Self> {
        let shape = axes.shape();
        let n = shape.len();
        let mut strides = vec![dtype.size() as isize; n];
        if fortran {
            for a in 1..n {
                strides[a] = strides[a - 1] * shape[a - 1] as isize;
            }
        } else {
            for a in (0..n.saturating_sub(1)).rev() {
                strides[a] = strides[a + 1] * shape[a + 1] as isize;
            }
        }
        let (origin, st) = axes.view_strides(&strides);
        Self::new(bytes, axes.view_shape(), st, origin as usize, dtype, endian)
    }

    pub fn bytes(&self) -> &'a [u8] {
        self.bytes
    }
    pub fn shape(&self) -> [usize; 3] {
        self.shape
    }
    /// Byte strides per array axis.
    pub fn strides(&self) -> [isize; 3] {
        self.strides
    }
    /// Byte offset of voxel (0, 0, 0).
    pub fn origin(&self) -> usize {
        self.origin
    }
    pub fn dtype(&self) -> DType {
        self.dtype
    }
    pub fn endian(&self) -> Endian {
        self.endian
    }

    /// Copies one element, converted to native byte order, into `out`.
    pub fn copy_native(&self, idx: [usize; 3], out: &mut [u8]) {
        let off = self.offset(idx);
        let n = self.dtype.size();
        out[..n].copy_from_slice(&self.bytes[off..off + n]);
        if self.endian != Endian::NATIVE {
            out[..n].reverse();
        }
    }

    fn offset(&self, idx: [usize; 3]) -> usize {
        assert!(idx.iter().zip(&self.shape).all(|(i, n)| i < n));
        (self.origin as isize
            + (0..3)
                .map(|a| idx[a] as isize * self.strides[a])
                .sum::<isize>()) as usize
    }

    /// One voxel as f64 (slow path: runtime dtype dispatch; samplers use `Voxel`).
    pub fn get(&self, idx: [usize; 3]) -> f64 {
        assert!(idx.iter().zip(&self.shape).all(|(i, n)| i < n));
        let off = self.origin as isize
            + (0..3)
                .map(|a| idx[a] as isize * self.strides[a])
                .sum::<isize>();
        read_f64(&self.bytes[off as usize..], self.dtype, self.endian)
    }
}

/// The largest decoded chunk any reader allocates outside a cache budget.
pub const MAX_DECODED_CHUNK: usize = 1 << 31;

/// Discrete voxel storage. Opening is O(1); implementations never read more than asked.
pub trait VolumeSource: Send + Sync {
    fn info(&self) -> &VolumeInfo;

    /// Bytes the source takes on disk. A directory store walks its files here,
    /// for `info` only: opening must not cost one `stat` per chunk.
    fn disk_usage(&self) -> u64 {
        self.info().bytes_on_disk
    }

    /// Zero-copy strided access, for memory-mapped files and in-memory arrays.
    fn contiguous(&self) -> Option<ContiguousView<'_>> {
        None
    }

    /// What kind of field a source that is a model rather than stored voxels
    /// is ("neural model"), for messages; `None` for stored volumes. A model's
    /// field is `model_field`: interpolation options do not apply to it.
    fn model_kind(&self) -> Option<&'static str> {
        None
    }

    /// A model's own field, evaluated directly at positions in its index space
    /// (mapped first by `to_index` when given). `None` for stored volumes.
    fn model_field(&self, to_index: Option<Affine>) -> Option<Box<dyn crate::Field + '_>> {
        let _ = to_index;
        None
    }

    /// O(1) access to the voxels of a sparse source (built on first use, which can
    /// fail); samplers use it instead of decoding chunks.
    fn sparse(&self) -> Option<Result<Box<dyn SparseVoxels + '_>>> {
        None
    }

    /// What the user should hear after reading, when values could mislead
    /// (every chunk read from a remote store was missing, so all are the fill
    /// value). Empty by default.
    fn read_warnings(&self) -> Vec<String> {
        Vec::new()
    }

    /// How many chunk reads this source serves best at once: 1 for local
    /// files; many for remote stores, whose reads wait on the network, so
    /// samplers fetch a request's chunks that many at a time.
    fn concurrency(&self) -> usize {
        1
    }

    /// Decodes chunk `idx` (chunk-grid coordinates) into `out`: native byte order,
    /// C order, the full `chunk_shape` (voxels beyond the volume's edge are
    /// unspecified). `out.len()` is the chunk's voxel count times the dtype size.
    fn read_chunk(&self, idx: [usize; 3], out: &mut [u8]) -> Result<()> {
        let info = self.info();
        let view = self
            .contiguous()
            .ok_or_else(|| Error::invalid("source has neither a contiguous view nor chunks"))?;
        let cs = info.chunk_shape;
        let size = info.dtype.size();
        check_chunk(info, idx, out.len())?;
        let start = [0, 1, 2].map(|a| idx[a] * cs[a]);
        let mut n = 0;
        for i in 0..cs[0] {
            for j in 0..cs[1] {
                for k in 0..cs[2] {
                    let g = [start[0] + i, start[1] + j, start[2] + k];
                    if (0..3).all(|a| g[a] < info.shape[a]) {
                        view.copy_native(g, &mut out[n..n + size]);
                    }
                    n += size;
                }
            }
        }
        Ok(())
    }

    /// Copies the stored values of the box `[start, start + size)` into `out`
    /// (C order, f64, before `value_scale`).
    fn read_box(&self, start: [usize; 3], size: [usize; 3], out: &mut [f64]) -> Result<()> {
        if out.len() != size.iter().product::<usize>() {
            return Err(Error::invalid("read_box: output length does not match box"));
        }
        let dtype = self.info().dtype;
        let mut bytes = vec![0u8; out.len() * dtype.size()];
        self.read_box_native(start, size, &mut bytes)?;
        crate::voxel::convert_native(&bytes, dtype, out, |v| v);
        Ok(())
    }

    /// Copies the box `[start, start + size)` as stored elements in native byte
    /// order, C order, into `out`. Chunked sources decode each intersecting chunk once.
    fn read_box_native(&self, start: [usize; 3], size: [usize; 3], out: &mut [u8]) -> Result<()> {
        let info = self.info();
        let shape = info.shape;
        let esize = info.dtype.size();
        if (0..3).any(|a| start[a] + size[a] > shape[a]) {
            return Err(Error::invalid(format!(
                "box start {start:?} size {size:?} exceeds volume shape {shape:?}"
            )));
        }
        if out.len() != size.iter().product::<usize>() * esize {
            return Err(Error::invalid(
                "read_box_native: output length does not match box",
            ));
        }
        if size.contains(&0) {
            return Ok(());
        }
        let dst = |i: usize, j: usize, k: usize| {
            (((i - start[0]) * size[1] + (j - start[1])) * size[2] + (k - start[2])) * esize
        };
        if let Some(view) = self.contiguous() {
            let st = view.strides();
            let rows = st[2] == esize as isize && (view.endian() == Endian::NATIVE || esize == 1);
            for i in start[0]..start[0] + size[0] {
                for j in start[1]..start[1] + size[1] {
                    if rows {
                        // Rows are contiguous in native order: one copy per row.
                        let from = (view.origin() as isize
                            + i as isize * st[0]
                            + j as isize * st[1]
                            + start[2] as isize * st[2])
                            as usize;
                        let o = dst(i, j, start[2]);
                        let n = size[2] * esize;
                        out[o..o + n].copy_from_slice(&view.bytes()[from..from + n]);
                        continue;
                    }
                    for k in start[2]..start[2] + size[2] {
                        let o = dst(i, j, k);
                        view.copy_native([i, j, k], &mut out[o..o + esize]);
                    }
                }
            }
            return Ok(());
        }
        let cs = info.chunk_shape;
        let mut buf = vec![0u8; chunk_bytes(info, MAX_DECODED_CHUNK)?];
        let first = [0, 1, 2].map(|a| start[a] / cs[a]);
        let last = [0, 1, 2].map(|a| (start[a] + size[a] - 1) / cs[a]);
        for ci in first[0]..=last[0] {
            for cj in first[1]..=last[1] {
                for ck in first[2]..=last[2] {
                    let c = [ci, cj, ck];
                    self.read_chunk(c, &mut buf)?;
                    let lo = [0, 1, 2].map(|a| (c[a] * cs[a]).max(start[a]));
                    let hi = [0, 1, 2].map(|a| ((c[a] + 1) * cs[a]).min(start[a] + size[a]));
                    let row = (hi[2] - lo[2]) * esize;
                    for i in lo[0]..hi[0] {
                        for j in lo[1]..hi[1] {
                            let local = (((i - c[0] * cs[0]) * cs[1] + (j - c[1] * cs[1])) * cs[2]
                                + (lo[2] - c[2] * cs[2]))
                                * esize;
                            let o = dst(i, j, lo[2]);
                            out[o..o + row].copy_from_slice(&buf[local..local + row]);
                        }
                    }
                }
            }
        }
        Ok(())
    }
}

/// Voxel lookup of a sparse volume: stored values, and the fill value elsewhere.
pub trait SparseVoxels: Send + Sync {
    /// The value at `idx` (inside the shape).
    fn get(&self, idx: [usize; 3]) -> f64;
    /// Number of stored (non-fill) voxels.
    fn len(&self) -> usize;
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Checks that an array shape is a non-empty 3-D volume shape (errors name `path`).
pub fn volume_shape(path: &std::path::Path, shape: &[usize]) -> Result<[usize; 3]> {
    let s: [usize; 3] = shape.try_into().map_err(|_| {
        Error::format(
            path,
            format!(
                "expected a 3-D array, got shape {shape:?} ({}-D)",
                shape.len()
            ),
        )
    })?;
    if s.contains(&0) {
        return Err(Error::format(
            path,
            format!("volume shape {s:?} has a zero-length axis"),
        ));
    }
    Ok(s)
}

/// Bytes of one decoded chunk; an error (naming the file) when the chunk shape
/// overflows or exceeds `limit`, so no metadata can make voxfield allocate wildly.
pub fn chunk_bytes(info: &VolumeInfo, limit: usize) -> Result<usize> {
    let n = info
        .chunk_shape
        .iter()
        .try_fold(info.dtype.size(), |a, &c| a.checked_mul(c));
    match n {
        Some(n) if n <= limit => Ok(n),
        _ => Err(Error::format(
            &info.path,
            format!(
                "chunks of shape {:?} ({}) need more than the {} MiB allowed for one decoded chunk \
                 (the chunk cache's budget: raise --cache-mb / cache_mb, or rechunk the data)",
                info.chunk_shape,
                info.dtype,
                limit >> 20
            ),
        )),
    }
}

/// Number of chunks along each axis.
pub fn chunk_grid(info: &VolumeInfo) -> [usize; 3] {
    [0, 1, 2].map(|a| info.shape[a].div_ceil(info.chunk_shape[a]))
}

/// Checks a chunk index and the output buffer length for `read_chunk`.
pub fn check_chunk(info: &VolumeInfo, idx: [usize; 3], out_len: usize) -> Result<()> {
    let grid = chunk_grid(info);
    if (0..3).any(|a| idx[a] >= grid[a]) {
        return Err(Error::invalid(format!(
            "chunk {idx:?} is outside the chunk grid {grid:?}"
        )));
    }
    let want = info.chunk_shape.iter().product::<usize>() * info.dtype.size();
    if out_len != want {
        return Err(Error::invalid(format!(
            "chunk buffer has {out_len} bytes, chunk needs {want}"
        )));
    }
    Ok(())
}

/// One array inside a container (a Zarr group or an HDF5 file), for listings.
#[derive(Clone, Debug, PartialEq)]
pub struct ArrayEntry {
    pub path: String,
    pub shape: Vec<u64>,
    pub dtype: String,
}
