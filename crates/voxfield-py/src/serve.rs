//! `voxfield.serve`: the HTTP server on a background thread (its own runtime;
//! the GIL is never held while it serves).

use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use voxfield_serve::{FieldRequest, FieldSource, ServeOptions};

use crate::{parse, py_err, Volume};

/// A running server; `stop()` ends it (also on garbage collection).
#[pyclass(frozen, module = "voxfield._voxfield")]
pub struct Server {
    inner: Mutex<Option<voxfield_serve::Server>>,
    url: String,
}

#[pymethods]
impl Server {
    /// The root URL, ending in '/' (with the token segment when there is one).
    #[getter]
    fn url(&self) -> String {
        self.url.clone()
    }

    /// Whether the server still runs.
    #[getter]
    fn running(&self) -> bool {
        self.inner.lock().is_ok_and(|s| s.is_some())
    }

    /// Stops accepting and joins the server thread (requests in flight finish).
    fn stop(&self, py: Python<'_>) {
        let server = self.inner.lock().ok().and_then(|mut s| s.take());
        if let Some(s) = server {
            py.detach(|| s.stop());
        }
    }
}

/// `s` seconds as a duration (the server refuses 0 and more than a day).
fn seconds(name: &str, s: f64) -> PyResult<Duration> {
    Duration::try_from_secs_f64(s)
        .map_err(|_| PyValueError::new_err(format!("{name}={s}: give a number of seconds above 0")))
}

/// A path's default field name (the CLI's: its stem without volume
/// extensions, other characters as `_`).
#[pyfunction]
pub fn serve_default_name(path: std::path::PathBuf) -> String {
    voxfield_serve::default_name(&path)
}

/// Starts serving `fields` — (name, path or Volume, grid shape or None) — and
/// returns once the socket is bound.
#[pyfunction]
#[pyo3(signature = (fields, bind="127.0.0.1", port=0, token=None, no_token=false, chunk=64,
    codec="raw", jpeg=None, cache_mb=512, render_mb=1024, workers=None, timeout=60.0,
    header_timeout=10.0))]
#[allow(clippy::too_many_arguments)]
pub fn serve(
    py: Python<'_>,
    fields: Vec<(String, Bound<'_, PyAny>, Option<[usize; 3]>)>,
    bind: &str,
    port: u16,
    token: Option<String>,
    no_token: bool,
    chunk: usize,
    codec: &str,
    jpeg: Option<u8>,
    cache_mb: usize,
    render_mb: usize,
    workers: Option<usize>,
    timeout: f64,
    header_timeout: f64,
) -> PyResult<Server> {
    let mut opts = ServeOptions {
        bind: bind
            .parse()
            .map_err(|_| PyValueError::new_err(format!("bind '{bind}': not an IP address")))?,
        port,
        token,
        no_token,
        chunk,
        codec: parse(codec)?,
        jpeg,
        cache_bytes: cache_mb.saturating_mul(1 << 20),
        render_bytes: render_mb.saturating_mul(1 << 20),
        timeout: seconds("timeout", timeout)?,
        header_timeout: seconds("header_timeout", header_timeout)?,
        ..ServeOptions::default()
    };
    if let Some(w) = workers {
        opts.workers = w;
    }
    let mut sources: Vec<FieldSource> = Vec::new();
    for (name, obj, shape) in &fields {
        let src = if let Ok(v) = obj.extract::<PyRef<'_, Volume>>() {
            if shape.is_some() {
                return Err(PyValueError::new_err(format!(
                    "field '{name}': a shape applies to RBF models only (this is a volume)"
                )));
            }
            voxfield_serve::volume_field(name.clone(), v.src.clone()).map_err(py_err)?
        } else if let Ok(path) = obj.extract::<PathBuf>() {
            let req = FieldRequest {
                shape: *shape,
                ..Default::default()
            };
            py.detach(|| voxfield_serve::open_field(name.clone(), &path, &req))
                .map_err(py_err)?
        } else {
            return Err(PyTypeError::new_err(format!(
                "field '{name}': serve takes paths, URLs, numpy arrays or voxfield.Volume objects"
            )));
        };
        sources.push(src);
    }
    let server = py
        .detach(|| voxfield_serve::start(sources, opts))
        .map_err(py_err)?;
    Ok(Server {
        url: server.url(),
        inner: Mutex::new(Some(server)),
    })
}
