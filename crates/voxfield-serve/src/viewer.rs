//! The viewer page: plain HTML and JavaScript inside the binary (no build
//! step, no network fetch): three orthogonal slices with a crosshair, a
//! server-rendered DVR/MIP panel, window/level and colormap, the value under
//! the cursor, and a link that opens the same data in Neuroglancer.

use axum::body::Body;
use axum::http::{HeaderMap, Method, Response};
use serde_json::{json, Value};

use crate::app::App;
use crate::http;

const PAGE: &str = include_str!("viewer/index.html");
pub(crate) const SCRIPT: &str = include_str!("viewer/viewer.js");

/// The page, showing `name` (or the first field).
pub(crate) fn page(
    method: &Method,
    headers: &HeaderMap,
    name: Option<&str>,
    app: &App,
) -> Response<Body> {
    let base = match &app.opts.token {
        Some(t) => format!("/{t}/"),
        None => "/".into(),
    };
    let name = name.unwrap_or(&app.fields[0].name);
    // Names and tokens are URL-safe characters only (checked at start-up).
    let config = json!({"base": base, "field": name}).to_string();
    let html = PAGE
        .replace("{{CONFIG}}", &config)
        .replace("{{BASE}}", &base);
    let mut r = http::bytes(
        method,
        headers,
        html.into_bytes(),
        "text/html; charset=utf-8",
    );
    r.headers_mut().insert(
        axum::http::header::CACHE_CONTROL,
        axum::http::HeaderValue::from_static("no-cache"),
    );
    r
}

/// `/api/fields`: every field with its grid, levels, default window and URLs
/// (relative to the server's root).
pub(crate) fn fields(app: &App) -> Value {
    let list: Vec<Value> = app
        .fields
        .iter()
        .enumerate()
        .map(|(i, f)| {
            let precomputed = crate::precomputed::data_type(f.dtype).is_some();
            json!({
                "name": f.name,
                "kind": f.kind,
                "dtype": f.dtype.name(),
                "shape": f.levels[0].shape,
                "chunk": f.chunk,
                "levels": f.levels.iter().map(|l| l.shape).collect::<Vec<_>>(),
                "spacing": f.spacing(0),
                "unit": f.unit,
                "axes": f.axis_names,
                "window": app.pictures.window(app, i),
                "notes": f.notes,
                "urls": {
                    "zarr": format!("zarr/{}.ome.zarr/", f.name),
                    "precomputed": precomputed.then(|| format!("precomputed/{}/", f.name)),
                    "view": format!("view/{}", f.name),
                    "render": format!("render/{}.png", f.name),
                    "slice": format!("slice/{}.png", f.name),
                },
            })
        })
        .collect();
    json!({"fields": list})
}
