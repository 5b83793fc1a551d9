//! The router: URL segments to a field's view, the work bounded (a fixed
//! number of requests compute at once, each within a timeout), CORS and gzip
//! around everything.

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, Method, Response, StatusCode, Uri};
use axum::Router;
use tokio::sync::Semaphore;
use tower_http::compression::predicate::{Predicate, SizeAbove};
use tower_http::compression::{CompressionLayer, CompressionLevel};
use tower_http::cors::{Any, CorsLayer};

use crate::field::ServedField;
use crate::picture::Pictures;
use crate::{http, precomputed, zarr, Reply, ServeOptions};

pub(crate) struct App {
    pub fields: Vec<Arc<ServedField>>,
    by_name: HashMap<String, usize>,
    pub opts: ServeOptions,
    permits: Arc<Semaphore>,
    pub pictures: Pictures,
    /// This server instance (fields are fixed while it runs; a restart may
    /// serve other data under the same keys, so its tags differ).
    nonce: u64,
}

/// The service for `fields`.
pub(crate) fn router(fields: Vec<Arc<ServedField>>, opts: ServeOptions) -> Router {
    let by_name = fields
        .iter()
        .enumerate()
        .map(|(i, f)| (f.name.clone(), i))
        .collect();
    let app = Arc::new(App {
        pictures: Pictures::new(&fields),
        fields,
        by_name,
        permits: Arc::new(Semaphore::new(opts.workers)),
        nonce: u64::from_str_radix(&crate::random_token()[..16], 16).unwrap_or(0),
        opts,
    });
    let cors = CorsLayer::new()
        .allow_origin(Any)
        .allow_methods([Method::GET, Method::HEAD, Method::OPTIONS])
        .allow_headers(Any)
        .expose_headers([
            header::CONTENT_RANGE,
            header::CONTENT_LENGTH,
            header::ETAG,
            header::ACCEPT_RANGES,
        ])
        .max_age(std::time::Duration::from_secs(3600));
    // Text and raw chunks compress; pictures and zstd chunks do not.
    let compressible = |_: StatusCode, _: axum::http::Version, h: &HeaderMap, _: &_| {
        h.get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|t| {
                t.starts_with("application/json")
                    || t.starts_with("text/")
                    || t.starts_with("application/javascript")
                    || t == "application/octet-stream"
            })
    };
    let gzip = CompressionLayer::new()
        .gzip(true)
        .no_br()
        .no_deflate()
        .no_zstd()
        .quality(CompressionLevel::Fastest)
        .compress_when(SizeAbove::new(256).and(compressible));
    Router::new()
        .fallback(handle)
        .with_state(app)
        .layer(gzip)
        .layer(cors)
}

async fn handle(
    State(app): State<Arc<App>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response<Body> {
    if method != Method::GET && method != Method::HEAD {
        let mut r = http::error(
            &method,
            Reply::BadRequest(format!("method {method} is not served (GET, HEAD)")),
        );
        *r.status_mut() = StatusCode::METHOD_NOT_ALLOWED;
        r.headers_mut().insert(
            header::ALLOW,
            HeaderValue::from_static("GET, HEAD, OPTIONS"),
        );
        return r;
    }
    match route(&app, &method, &uri, &headers).await {
        Ok(r) => r,
        Err(reply) => http::error(&method, reply),
    }
}

async fn route(
    app: &Arc<App>,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
) -> Result<Response<Body>, Reply> {
    let path = uri.path();
    if path.contains('%') {
        return Err(Reply::BadRequest(
            "encoded characters are not allowed in voxfield URLs".into(),
        ));
    }
    let mut segs: Vec<&str> = path.split('/').skip(1).collect();
    if segs.iter().any(|s| *s == ".." || *s == ".") {
        return Err(Reply::BadRequest(
            "'.' and '..' are not URL segments here".into(),
        ));
    }
    if let Some(token) = &app.opts.token {
        if segs.first() != Some(&token.as_str()) {
            return Err(Reply::Forbidden(
                "this server needs its token as the first URL segment (printed at start-up)".into(),
            ));
        }
        segs.remove(0);
    }
    if segs.last() == Some(&"") && segs.len() > 1 {
        segs.pop();
    }
    let query = uri.query().unwrap_or("");
    match segs.as_slice() {
        [] | [""] => Ok(crate::viewer::page(method, headers, None, app)),
        ["view", name] => {
            app.field(name)?;
            Ok(crate::viewer::page(method, headers, Some(name), app))
        }
        ["viewer.js"] => Ok(http::bytes(
            method,
            headers,
            crate::viewer::SCRIPT.as_bytes().to_vec(),
            "application/javascript; charset=utf-8",
        )),
        ["api", "fields"] => Ok(http::json(method, headers, &crate::viewer::fields(app))),
        ["zarr", group, rest @ ..] => {
            let name = group.strip_suffix(".ome.zarr").ok_or_else(|| {
                Reply::NotFound(format!(
                    "'{group}': a field's Zarr view is /zarr/NAME.ome.zarr/"
                ))
            })?;
            let f = app.field(name)?;
            match zarr::parse(rest)? {
                zarr::Key::Group => Ok(http::json(method, headers, &zarr::group(&f))),
                zarr::Key::Array(l) => {
                    level(&f, l)?;
                    Ok(http::json(
                        method,
                        headers,
                        &zarr::array(&f, l, app.opts.codec),
                    ))
                }
                zarr::Key::Chunk(l, c) => {
                    level(&f, l)?;
                    let tag = app.tag(path);
                    if http::matches(headers, &tag) {
                        return Ok(http::not_modified(method, &tag));
                    }
                    let codec = app.opts.codec;
                    let body = app.compute(move || zarr::chunk(&f, l, c, codec)).await?;
                    let kind = "application/octet-stream";
                    Ok(http::tagged(method, headers, body, kind, &tag))
                }
            }
        }
        ["precomputed", name, "info"] => {
            let f = app.field(name)?;
            Ok(http::json(
                method,
                headers,
                &precomputed::info(&f, app.opts.jpeg)?,
            ))
        }
        ["precomputed", name, scale, key] => {
            let f = app.field(name)?;
            let l = crate::number(scale, "scale key")?;
            let (key, jpeg) = (key.to_string(), app.opts.jpeg);
            let kind = match precomputed::encoding(&f, jpeg) {
                Some(_) => "image/jpeg",
                None => "application/octet-stream",
            };
            let tag = app.tag(path);
            if http::matches(headers, &tag) {
                return Ok(http::not_modified(method, &tag));
            }
            let body = app
                .compute(move || precomputed::chunk(&f, l, &key, jpeg))
                .await?;
            Ok(http::tagged(method, headers, body, kind, &tag))
        }
        ["render", file] | ["slice", file] => {
            let name = file
                .strip_suffix(".png")
                .ok_or_else(|| Reply::NotFound(format!("'{file}': pictures are NAME.png")))?;
            let index = app.index(name)?;
            let (app2, query) = (app.clone(), query.to_string());
            let body = if segs[0] == "render" {
                app.compute(move || app2.pictures.render(&app2, index, &query))
                    .await?
            } else {
                app.compute(move || app2.pictures.slice(&app2, index, &query))
                    .await?
            };
            let mut r = http::bytes(method, headers, body, "image/png");
            r.headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
            Ok(r)
        }
        ["value", name] => {
            let index = app.index(name)?;
            let (app2, query) = (app.clone(), query.to_string());
            let doc = app
                .compute(move || app2.pictures.value(&app2, index, &query))
                .await?;
            Ok(http::json(method, headers, &doc))
        }
        _ => Err(Reply::NotFound(format!(
            "nothing at '{path}': see / for the fields and their URLs"
        ))),
    }
}

fn level(f: &ServedField, l: usize) -> Result<(), Reply> {
    if l < f.levels.len() {
        Ok(())
    } else {
        Err(Reply::NotFound(format!(
            "{}: no level {l} (it has {})",
            f.name,
            f.levels.len()
        )))
    }
}

impl App {
    /// The strong ETag of the chunk at `path` for this server's lifetime.
    fn tag(&self, path: &str) -> String {
        format!(
            "\"{:016x}-{:08x}\"",
            self.nonce,
            crc32c::crc32c(path.as_bytes())
        )
    }

    pub fn index(&self, name: &str) -> Result<usize, Reply> {
        self.by_name
            .get(name)
            .copied()
            .ok_or_else(|| Reply::NotFound(format!("no field named '{name}'")))
    }

    pub fn field(&self, name: &str) -> Result<Arc<ServedField>, Reply> {
        Ok(self.fields[self.index(name)?].clone())
    }

    /// Runs `work` on the blocking pool once a worker permit is free; 503
    /// when waiting and working take longer than the timeout.
    async fn compute<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> Result<T, Reply> + Send + 'static,
    ) -> Result<T, Reply> {
        let timeout = self.opts.timeout;
        let busy = || {
            Reply::Unavailable(format!(
                "the server is busy: the request did not finish within {} s; retry",
                timeout.as_secs()
            ))
        };
        let run = async {
            let permit = self
                .permits
                .clone()
                .acquire_owned()
                .await
                .map_err(|_| Reply::Unavailable("the server is stopping".into()))?;
            tokio::task::spawn_blocking(move || {
                let _permit = permit;
                work()
            })
            .await
            .map_err(|e| Reply::Internal(format!("the request's work failed: {e}")))?
        };
        tokio::time::timeout(timeout, run)
            .await
            .map_err(|_| busy())?
    }
}
