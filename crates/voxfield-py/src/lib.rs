//! The `voxfield._voxfield` extension module. The Python layer (`python/voxfield/`)
//! inspects numpy arrays and other objects and hands this module plain numbers:
//! buffer addresses, shapes, strides and dtype names. Work runs with the GIL
//! released; results are written straight into numpy arrays the Python layer
//! allocated, so nothing is copied on the way in or out.

use std::path::PathBuf;
use std::sync::Arc;

use pyo3::exceptions::{PyFileNotFoundError, PyOSError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyDict;
use voxfield::{
    evaluate, evaluate_plane, Affine, Axes, ChunkCache, DType, Endian, Error, Field, Grid,
    IndexRequest, Method, Mode, OpenOptions, Plane, PointList, Positions, RawOptions, Reduce,
    VolumeInfo, VolumeSource, ZarrOptions,
};
use voxfield_core::ContiguousView;

mod env;
mod rbf;
mod render;
mod serve;
mod vectors;
mod work;

/// The engine's own allocator: Dask's worker processes set `MALLOC_TRIM_THRESHOLD_`,
/// which fixes glibc's mmap threshold at 128 KiB, so every kernel matrix of an RBF
/// cell solve became a fresh mmap to fault in (2.6 M page faults, fits 2.1x slower
/// on a worker than in one process). mimalloc reuses its pages whatever the
/// environment.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn py_err(e: Error) -> PyErr {
    match &e {
        Error::Io { err, .. } if err.kind() == std::io::ErrorKind::NotFound => {
            PyFileNotFoundError::new_err(e.to_string())
        }
        Error::Io { .. } => PyOSError::new_err(e.to_string()),
        Error::Format { .. } | Error::Invalid(_) => PyValueError::new_err(e.to_string()),
    }
}

pub(crate) fn parse<T: std::str::FromStr<Err = Error>>(s: &str) -> PyResult<T> {
    s.parse().map_err(py_err)
}

/// A numpy buffer seen as a volume; holds a reference to its owner so the memory
/// outlives every use.
struct BufferVolume {
    info: VolumeInfo,
    addr: usize,
    len: usize,
    strides: [isize; 3],
    origin: usize,
    _owner: Py<PyAny>,
}

impl VolumeSource for BufferVolume {
    fn info(&self) -> &VolumeInfo {
        &self.info
    }
    fn contiguous(&self) -> Option<ContiguousView<'_>> {
        // SAFETY: the Python layer passed the address and extent of a live numpy
        // buffer, kept alive by `_owner`; ContiguousView checks that every voxel fits.
        let bytes = unsafe { std::slice::from_raw_parts(self.addr as *const u8, self.len) };
        ContiguousView::new(
            bytes,
            self.info.shape,
            self.strides,
            self.origin,
            self.info.dtype,
            self.info.endian,
        )
        .ok()
    }
}

/// An open volume: a file, a store, or a numpy buffer. Safe to share across threads.
#[pyclass(frozen, module = "voxfield._voxfield")]
struct Volume {
    src: Arc<dyn VolumeSource>,
    /// A neural model (`.vxn`) is sampled by evaluating its network directly.
    neural: Option<Box<voxfield::neural::NeuralModel>>,
    cache: Arc<ChunkCache>,
    /// This source's id in its own `cache`: every request reuses decoded chunks.
    source_id: u64,
}

/// Runs `$body` with `$o` bound to the caller's output buffer as `&mut [T]`.
macro_rules! with_output {
    ($dtype:expr, $addr:expr, $n:expr, |$o:ident| $body:expr) => {{
        macro_rules! arm {
            ($t:ty) => {{
                // SAFETY: the Python layer allocated `n` C-contiguous elements of
                // this dtype at `addr` and keeps the array alive during the call.
                let $o = unsafe { std::slice::from_raw_parts_mut($addr as *mut $t, $n) };
                $body
            }};
        }
        match $dtype {
            DType::F32 => arm!(f32),
            DType::F64 => arm!(f64),
            DType::U8 => arm!(u8),
            DType::I8 => arm!(i8),
            DType::U16 => arm!(u16),
            DType::I16 => arm!(i16),
            DType::U32 => arm!(u32),
            DType::I32 => arm!(i32),
            DType::U64 => arm!(u64),
            DType::I64 => arm!(i64),
            DType::Bool => arm!(bool),
        }
    }};
}

/// A sampling request as the caller gave it: `None` leaves a choice to the field,
/// and the facade refuses what does not apply to it.
struct Opts {
    field: voxfield::FieldOptions,
}

/// A 4×4 (or 3×4) row-major index→world matrix given as numbers.
pub(crate) fn affine_of(v: &[f64]) -> voxfield::Result<Affine> {
    let s: Vec<String> = v.iter().map(|x| x.to_string()).collect();
    Affine::parse(&s.join(","))
}

fn opts(
    method: Option<&str>,
    mode: Option<&str>,
    cval: Option<f64>,
    world: bool,
    affine: Option<Vec<f64>>,
) -> PyResult<Opts> {
    let affine = affine
        .as_deref()
        .map(affine_of)
        .transpose()
        .map_err(py_err)?;
    // The Python layer asks for an unfiltered B-spline (scipy's prefilter=False)
    // as "splineN/raw".
    let method = match method.map(|m| (m, m.strip_suffix("/raw"))) {
        None => None,
        Some((_, Some(m))) => Some(match parse::<Method>(m)? {
            Method::Spline { order, .. } => Method::Spline {
                order,
                prefilter: false,
            },
            other => other,
        }),
        Some((m, None)) => Some(parse::<Method>(m)?),
    };
    Ok(Opts {
        field: voxfield::FieldOptions {
            method,
            mode: mode.map(parse::<Mode>).transpose()?,
            cval,
            world,
            affine,
        },
    })
}

/// The output element type; a volume's NaN fill value cannot go into an integer output.
fn output_dtype(name: &str, o: &Opts, fills: bool) -> PyResult<DType> {
    let dtype = parse::<DType>(name)?;
    if fills && !dtype.is_float() && o.field.fill().is_nan() {
        return Err(PyValueError::new_err(format!(
            "cval=nan cannot be stored as {dtype}: pass a number for cval or a float output dtype"
        )));
    }
    Ok(dtype)
}

impl Volume {
    /// The field the facade resolves for this source (a neural model: its network).
    fn field(&self, o: &Opts) -> voxfield::Result<Box<dyn Field + '_>> {
        voxfield::field_of_source(self.src.as_ref(), &o.field, &self.cache, self.source_id)
    }

    /// Whether points outside take a fill value (stored volumes; models do not).
    fn fills(&self) -> bool {
        self.src.model_kind().is_none()
    }

    fn run(
        &self,
        py: Python<'_>,
        o: Opts,
        out_dtype: &str,
        out_addr: usize,
        n: usize,
        pos: &(dyn Positions + Sync),
    ) -> PyResult<()> {
        let dtype = output_dtype(out_dtype, &o, self.fills())?;
        if pos.len() != n {
            return Err(PyValueError::new_err(format!(
                "output has {n} elements for {} positions",
                pos.len()
            )));
        }
        py.detach(|| {
            let f = self.field(&o)?;
            with_output!(dtype, out_addr, n, |out| evaluate(f.as_ref(), pos, out))
        })
        .map_err(py_err)
    }
}

/// Positions in a caller's (N, 3) float64 C-contiguous buffer.
struct Raw {
    addr: usize,
    n: usize,
}

impl Raw {
    fn slice(&self) -> &[f64] {
        // SAFETY: the Python layer passed a live C-contiguous float64 (N, 3) array.
        unsafe { std::slice::from_raw_parts(self.addr as *const f64, 3 * self.n) }
    }
}

#[pymethods]
impl Volume {
    /// Saves a neural model (`.vxn`, atomically); an error for other volumes.
    fn save_model(&self, py: Python<'_>, path: PathBuf) -> PyResult<()> {
        let model = self.neural.as_ref().ok_or_else(|| {
            PyValueError::new_err("only a neural model (from voxfield.compress) can be saved")
        })?;
        py.detach(|| model.save(&path)).map_err(py_err)
    }

    /// A neural model's training record (epochs, seconds, PSNR estimate) and
    /// file size in bytes as a dict; None for other volumes.
    fn model_record<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyDict>>> {
        let Some(m) = &self.neural else {
            return Ok(None);
        };
        let d = PyDict::new(py);
        d.set_item("record", m.record.to_string())?;
        d.set_item("file_bytes", m.to_bytes().map_err(py_err)?.len())?;
        d.set_item("params", m.net.n_params())?;
        Ok(Some(d))
    }

    /// What the source knows about itself (shape, dtype, chunks, affine, ...).
    fn info<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let i = self.src.info();
        let d = PyDict::new(py);
        d.set_item("format", i.format)?;
        d.set_item("path", i.path.to_string_lossy())?;
        d.set_item("shape", i.shape.to_vec())?;
        d.set_item("dtype", i.dtype.name())?;
        d.set_item("chunks", i.chunk_shape.to_vec())?;
        d.set_item(
            "affine",
            i.affine
                .map(|a| a.rows().iter().flatten().copied().collect::<Vec<f64>>()),
        )?;
        d.set_item("value_scale", i.value_scale)?;
        d.set_item("notes", i.notes.clone())?;
        d.set_item("bytes_on_disk", self.src.disk_usage())?;
        let axes: Vec<Bound<'py, PyDict>> = i
            .axes
            .axes
            .iter()
            .map(|a| {
                let x = PyDict::new(py);
                x.set_item("name", &a.name)?;
                x.set_item("type", a.kind.name())?;
                x.set_item("unit", a.unit.clone())?;
                x.set_item("length", a.len)?;
                Ok(x)
            })
            .collect::<PyResult<_>>()?;
        d.set_item("axes", axes)?;
        d.set_item("index", i.axes.index.clone())?;
        d.set_item("spatial_axes", i.axes.spatial.clone())?;
        Ok(d)
    }

    /// What the source says after reading (every chunk of a remote store
    /// missing, say): warnings for the Python layer to issue.
    fn read_warnings(&self) -> Vec<String> {
        self.src.read_warnings()
    }

    /// Samples the (N, 3) float64 points at `points_addr` into the output buffer.
    #[allow(clippy::too_many_arguments)]
    fn sample_into(
        &self,
        py: Python<'_>,
        points_addr: usize,
        n: usize,
        out_addr: usize,
        out_dtype: &str,
        method: Option<&str>,
        mode: Option<&str>,
        cval: Option<f64>,
        world: bool,
        affine: Option<Vec<f64>>,
    ) -> PyResult<()> {
        let o = opts(method, mode, cval, world, affine)?;
        let raw = Raw {
            addr: points_addr,
            n,
        };
        let list = PointList::new(raw.slice()).map_err(py_err)?;
        self.run(py, o, out_dtype, out_addr, n, &list)
    }

    /// Samples an oblique plane (or a slab with several `depths`) into an (nv, nu) buffer;
    /// `first` = (i, j) of its pixel (0, 0) when it is a tile of a larger plane.
    #[allow(clippy::too_many_arguments)]
    fn plane_into(
        &self,
        py: Python<'_>,
        origin: [f64; 3],
        u: [f64; 3],
        v: [f64; 3],
        nu: usize,
        nv: usize,
        depths: Vec<f64>,
        reduce: &str,
        out_addr: usize,
        out_dtype: &str,
        method: Option<&str>,
        mode: Option<&str>,
        cval: Option<f64>,
        world: bool,
        affine: Option<Vec<f64>>,
        first: [usize; 2],
    ) -> PyResult<()> {
        let o = opts(method, mode, cval, world, affine)?;
        let plane = Plane::new(origin, u, v, nu, nv).map_err(py_err)?;
        let plane = plane.tile(first[0], first[1], nu, nv);
        let reduce = match reduce {
            "mean" => Reduce::Mean,
            "max" => Reduce::Max,
            r => {
                return Err(PyValueError::new_err(format!(
                    "reduce must be 'mean' or 'max', not {r:?}"
                )))
            }
        };
        let dtype = output_dtype(out_dtype, &o, self.fills())?;
        py.detach(|| {
            let f = self.field(&o)?;
            with_output!(dtype, out_addr, nu * nv, |out| evaluate_plane(
                f.as_ref(),
                &plane,
                &depths,
                reduce,
                out
            ))
        })
        .map_err(py_err)
    }

    /// Samples the outer product of three coordinate vectors into a (nx, ny, nz) buffer.
    #[allow(clippy::too_many_arguments)]
    fn grid_into(
        &self,
        py: Python<'_>,
        x: Vec<f64>,
        y: Vec<f64>,
        z: Vec<f64>,
        out_addr: usize,
        out_dtype: &str,
        method: Option<&str>,
        mode: Option<&str>,
        cval: Option<f64>,
        world: bool,
        affine: Option<Vec<f64>>,
    ) -> PyResult<()> {
        let o = opts(method, mode, cval, world, affine)?;
        let grid = Grid { axes: [&x, &y, &z] };
        let n = grid.len();
        self.run(py, o, out_dtype, out_addr, n, &grid)
    }
}

/// Opens a path (any format the CLI reads).
#[pyfunction]
#[pyo3(signature = (path, raw_shape=None, raw_dtype=None, offset=0, order="C", endian="little", level=None, spacing=None, values=None, shape=None, cache_mb=512, index_named=vec![], index_positional=vec![], endpoint_url=None))]
#[allow(clippy::too_many_arguments)]
fn open_path(
    py: Python<'_>,
    path: PathBuf,
    raw_shape: Option<[usize; 3]>,
    raw_dtype: Option<String>,
    offset: u64,
    order: &str,
    endian: &str,
    level: Option<usize>,
    spacing: Option<f64>,
    values: Option<PathBuf>,
    shape: Option<[usize; 3]>,
    cache_mb: usize,
    index_named: Vec<(String, usize)>,
    index_positional: Vec<usize>,
    endpoint_url: Option<String>,
) -> PyResult<Volume> {
    let raw = match (raw_shape, raw_dtype) {
        (Some(shape), Some(dtype)) => Some(RawOptions {
            shape,
            dtype: parse(&dtype)?,
            offset,
            fortran: match order {
                "C" | "c" => false,
                "F" | "f" => true,
                o => {
                    return Err(PyValueError::new_err(format!(
                        "order must be 'C' or 'F', not {o:?}"
                    )))
                }
            },
            endian: parse::<Endian>(endian)?,
        }),
        (None, None) => None,
        _ => {
            return Err(PyValueError::new_err(
                "a raw file needs both shape and dtype",
            ))
        }
    };
    let level = match (level, spacing) {
        (Some(l), _) => ZarrOptions::Level(l),
        (None, Some(s)) => ZarrOptions::Spacing(s),
        (None, None) => ZarrOptions::FullResolution,
    };
    let sparse_values = match (values, shape) {
        (Some(v), Some(s)) => Some((v, s)),
        (Some(_), None) => return Err(PyValueError::new_err("values= needs the volume's shape=")),
        _ => None,
    };
    let opts = OpenOptions {
        raw,
        level,
        sparse_values,
        index: IndexRequest {
            named: index_named,
            positional: index_positional,
        },
        s3_endpoint: endpoint_url,
    };
    if voxfield::is_neural_model(&path) {
        let model = py
            .detach(|| voxfield::neural::NeuralModel::load(&path))
            .map_err(py_err)?;
        return neural_volume(model, &path);
    }
    let src = py.detach(|| voxfield::open(&path, &opts)).map_err(py_err)?;
    Ok(Volume {
        src: src.into(),
        neural: None,
        cache: ChunkCache::new(cache_mb << 20),
        source_id: voxfield_core::cache::new_source_id(),
    })
}

fn neural_volume(model: voxfield::neural::NeuralModel, path: &std::path::Path) -> PyResult<Volume> {
    let vol = voxfield::neural::NeuralVolume::new(model.clone(), path).map_err(py_err)?;
    Ok(Volume {
        src: Arc::new(vol),
        neural: Some(Box::new(model)),
        cache: ChunkCache::new(64 << 20),
        source_id: voxfield_core::cache::new_source_id(),
    })
}

/// Trains a neural model of `source` (its 3-D view), interruptible with Ctrl-C.
#[pyfunction]
#[pyo3(signature = (source, ratio=None, epochs=5, target_psnr=None, time_limit=None, seed=1, log2_table=None, levels=None, width=None, batch=None, init=None, bits=6, loss="l2", grad_loss=0.0, steps=None, rate_weight=None))]
#[allow(clippy::too_many_arguments)]
fn compress(
    py: Python<'_>,
    source: &Volume,
    ratio: Option<f64>,
    epochs: usize,
    target_psnr: Option<f64>,
    time_limit: Option<f64>,
    seed: u64,
    log2_table: Option<u32>,
    levels: Option<usize>,
    width: Option<usize>,
    batch: Option<usize>,
    init: Option<PyRef<'_, Volume>>,
    bits: u32,
    loss: &str,
    grad_loss: f32,
    steps: Option<u64>,
    rate_weight: Option<f32>,
) -> PyResult<Volume> {
    let loss = parse::<voxfield::neural::Loss>(loss)?;
    let src = source.src.as_ref();
    let i = src.info();
    let opts = voxfield::neural::CompressOptions {
        epochs,
        target_psnr,
        time_limit,
        seed,
        batch,
        bits,
        loss,
        grad_loss,
        steps,
        rate_weight,
        ..Default::default()
    };
    let init = match init {
        Some(init) => match &init.neural {
            Some(m) => Some(m.net.clone()),
            None => {
                return Err(PyValueError::new_err(
                    "init= takes a neural model (from voxfield.meta_train or a .vxn)",
                ))
            }
        },
        None => None,
    };
    let sizes = voxfield::neural::Sizes {
        log2_table,
        levels,
        width,
    };
    let native = voxfield::neural::native_bytes(i);
    let opts = opts
        .for_request(i.shape, native, ratio, sizes, init)
        .map_err(py_err)?;
    let model = work::interruptible(py, |watch| voxfield::neural::compress(src, &opts, watch))?;
    neural_volume(model, &i.path)
}

/// Reptile meta-learning of an initialisation over `sources`, interruptible.
#[pyfunction]
#[pyo3(signature = (sources, inner_steps=16, meta_steps=200, meta_lr=1.0, seed=1, log2_table=None, levels=None, width=None, batch=None))]
#[allow(clippy::too_many_arguments)]
fn meta_train(
    py: Python<'_>,
    sources: Vec<PyRef<'_, Volume>>,
    inner_steps: usize,
    meta_steps: usize,
    meta_lr: f32,
    seed: u64,
    log2_table: Option<u32>,
    levels: Option<usize>,
    width: Option<usize>,
    batch: Option<usize>,
) -> PyResult<Volume> {
    let sizes = voxfield::neural::Sizes {
        log2_table,
        levels,
        width,
    };
    let opts = voxfield::neural::MetaOptions::for_request(
        sizes,
        batch,
        seed,
        inner_steps,
        meta_steps,
        meta_lr,
    );
    let srcs: Vec<&dyn voxfield::VolumeSource> = sources.iter().map(|v| v.src.as_ref()).collect();
    let path = srcs
        .first()
        .map(|s| s.info().path.clone())
        .unwrap_or_default();
    let model = work::interruptible(py, |watch| {
        voxfield::neural::meta_train(&srcs, &opts, watch)
    })?;
    neural_volume(model, &path)
}

/// Panics with `msg`: lets the tests check that a panic reaches Python as an
/// ordinary exception (voxfield.InternalError).
#[pyfunction]
fn _panic(msg: &str) {
    panic!("{msg}");
}

/// Bytes of B-spline coefficients cached for an in-memory array.
const SPLINE_CACHE: usize = 64 << 20;

/// Wraps a numpy buffer of any rank without copying it: `address` is the lowest
/// byte any element occupies, `nbytes` the extent from there, `origin` the offset
/// of element (0, ..., 0), `strides` in bytes (negative allowed). `index` selects
/// the leading non-spatial axes of an array of rank above 3.
#[pyfunction]
#[pyo3(signature = (owner, address, nbytes, shape, strides, origin, dtype, endian, index_named=vec![], index_positional=vec![]))]
#[allow(clippy::too_many_arguments)]
fn from_buffer(
    owner: Py<PyAny>,
    address: usize,
    nbytes: usize,
    shape: Vec<usize>,
    strides: Vec<isize>,
    origin: usize,
    dtype: &str,
    endian: &str,
    index_named: Vec<(String, usize)>,
    index_positional: Vec<usize>,
) -> PyResult<Volume> {
    let dtype: DType = parse(dtype)?;
    let endian: Endian = parse(endian)?;
    if strides.len() != shape.len() {
        return Err(PyValueError::new_err("shape and strides differ in length"));
    }
    let req = IndexRequest {
        named: index_named,
        positional: index_positional,
    };
    let path = PathBuf::from("<array>");
    let axes = Axes::select(&path, Axes::default_for(&shape), &req).map_err(py_err)?;
    let (offset, view_strides) = axes.view_strides(&strides);
    let origin = usize::try_from(origin as isize + offset)
        .map_err(|_| PyValueError::new_err("the selected element lies before the buffer"))?;
    let info = VolumeInfo::selected("numpy", &path, axes, &shape, dtype, endian);
    let v = BufferVolume {
        info,
        addr: address,
        len: nbytes,
        strides: view_strides,
        origin,
        _owner: owner,
    };
    if v.contiguous().is_none() {
        return Err(PyValueError::new_err(format!("array of shape {shape:?} with strides {strides:?} does not fit its buffer of {nbytes} bytes")));
    }
    Ok(Volume {
        src: Arc::new(v),
        neural: None,
        // Reads are zero-copy; the cache holds B-spline coefficient bricks
        // (2 MiB each) for orders 2 to 5.
        cache: ChunkCache::new(SPLINE_CACHE),
        source_id: voxfield_core::cache::new_source_id(),
    })
}

/// A sparse volume from a (3, nnz) int64 C-contiguous coordinate array and (nnz,)
/// float64 values: indexed once (O(nnz), in parallel), never densified.
#[pyfunction]
#[allow(clippy::too_many_arguments)]
fn from_sparse(
    py: Python<'_>,
    coords_addr: usize,
    values_addr: usize,
    nnz: usize,
    shape: [usize; 3],
    dtype: &str,
    fill: f64,
    cache_mb: usize,
) -> PyResult<Volume> {
    let dtype: DType = parse(dtype)?;
    // SAFETY: the Python layer passed live C-contiguous arrays of these sizes and
    // keeps them alive for the call; they are copied into the index here.
    let (coords, values) = unsafe {
        (
            std::slice::from_raw_parts(coords_addr as *const i64, 3 * nnz),
            std::slice::from_raw_parts(values_addr as *const f64, nnz),
        )
    };
    let rows = [&coords[..nnz], &coords[nnz..2 * nnz], &coords[2 * nnz..]];
    let v = py
        .detach(|| voxfield_io::SparseVolume::from_memory(rows, values, shape, dtype, fill))
        .map_err(py_err)?;
    Ok(Volume {
        src: Arc::new(v),
        neural: None,
        cache: ChunkCache::new(cache_mb << 20),
        source_id: voxfield_core::cache::new_source_id(),
    })
}

#[pymodule]
fn _voxfield(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<Volume>()?;
    m.add_function(wrap_pyfunction!(open_path, m)?)?;
    m.add_function(wrap_pyfunction!(from_buffer, m)?)?;
    m.add_function(wrap_pyfunction!(_panic, m)?)?;
    m.add_function(wrap_pyfunction!(from_sparse, m)?)?;
    m.add_function(wrap_pyfunction!(compress, m)?)?;
    m.add_function(wrap_pyfunction!(meta_train, m)?)?;
    m.add_class::<rbf::Model>()?;
    m.add_function(wrap_pyfunction!(render::render_field, m)?)?;
    m.add_function(wrap_pyfunction!(render::render_pixel_spacing, m)?)?;
    m.add_class::<env::Env>()?;
    m.add_class::<serve::Server>()?;
    m.add_function(wrap_pyfunction!(serve::serve, m)?)?;
    m.add_function(wrap_pyfunction!(serve::serve_default_name, m)?)?;
    m.add_function(wrap_pyfunction!(env::rate_scores, m)?)?;
    m.add_function(wrap_pyfunction!(env::grid_scores, m)?)?;
    m.add_function(wrap_pyfunction!(env::directional_rates, m)?)?;
    m.add_function(wrap_pyfunction!(env::bin_spikes_in_time, m)?)?;
    m.add_function(wrap_pyfunction!(vectors::vectors_levels, m)?)?;
    m.add_function(wrap_pyfunction!(vectors::vectors_info, m)?)?;
    m.add_function(wrap_pyfunction!(vectors::vectors_read_points, m)?)?;
    m.add_function(wrap_pyfunction!(vectors::vectors_select, m)?)?;
    m.add_function(wrap_pyfunction!(vectors::vectors_validate, m)?)?;
    m.add_function(wrap_pyfunction!(vectors::vectors_import, m)?)?;
    m.add_function(wrap_pyfunction!(vectors::vectors_export, m)?)?;
    m.add_function(wrap_pyfunction!(vectors::vectors_parents, m)?)?;
    m.add_function(wrap_pyfunction!(vectors::vectors_write_point_objects, m)?)?;
    m.add_function(wrap_pyfunction!(vectors::vectors_children, m)?)?;
    m.add_function(wrap_pyfunction!(vectors::vectors_write_points, m)?)?;
    m.add_function(wrap_pyfunction!(vectors::vectors_write_polylines, m)?)?;
    m.add_function(wrap_pyfunction!(vectors::vectors_write_graph, m)?)?;
    m.add_function(wrap_pyfunction!(vectors::vectors_read_graph, m)?)?;
    m.add_function(wrap_pyfunction!(vectors::vectors_read_objects, m)?)?;
    m.add_function(wrap_pyfunction!(vectors::vectors_remove_level, m)?)?;
    m.add_function(wrap_pyfunction!(vectors::vectors_build_pyramid, m)?)?;
    m.add_function(wrap_pyfunction!(rbf::fit_rbf, m)?)?;
    m.add_function(wrap_pyfunction!(rbf::load_model, m)?)?;
    m.add_function(wrap_pyfunction!(rbf::rbf_check_options, m)?)?;
    m.add_function(wrap_pyfunction!(rbf::rbf_tile_grid, m)?)?;
    m.add_function(wrap_pyfunction!(rbf::rbf_route, m)?)?;
    m.add_function(wrap_pyfunction!(rbf::rbf_prepare_tile, m)?)?;
    m.add_function(wrap_pyfunction!(rbf::rbf_plan_tiles, m)?)?;
    m.add_function(wrap_pyfunction!(rbf::rbf_halo, m)?)?;
    m.add_function(wrap_pyfunction!(rbf::rbf_solve_tile, m)?)?;
    m.add_function(wrap_pyfunction!(rbf::rbf_assemble, m)?)?;
    Ok(())
}
