//! Responses: bodies with a strong `ETag`, `Cache-Control`, conditional GETs
//! (304), single byte ranges (206, 416; RFC 9110) and `HEAD`. Chunk bodies
//! are computed in memory, so a range is a slice of them.

use axum::body::Body;
use axum::http::{header, HeaderMap, HeaderValue, Method, Response, StatusCode};

use crate::Reply;

/// How long clients may reuse a response: fields do not change while served.
const CACHE: &str = "public, max-age=3600";

/// A response carrying `body` of `content_type`, honouring the request's
/// `If-None-Match`, `Range` and method; the ETag is the body's checksum.
pub fn bytes(
    method: &Method,
    req: &HeaderMap,
    body: Vec<u8>,
    content_type: &str,
) -> Response<Body> {
    let etag = format!("\"{:08x}-{:x}\"", crc32c::crc32c(&body), body.len());
    tagged(method, req, body, content_type, &etag)
}

/// Whether the request's `If-None-Match` names `etag`.
pub fn matches(req: &HeaderMap, etag: &str) -> bool {
    req.get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*"))
}

/// 304 for a representation the client holds (no body, nothing computed).
pub fn not_modified(method: &Method, etag: &str) -> Response<Body> {
    let mut headers = HeaderMap::new();
    headers.insert(header::ETAG, value(etag));
    headers.insert(header::CACHE_CONTROL, value(CACHE));
    respond(StatusCode::NOT_MODIFIED, headers, Vec::new(), method)
}

/// [`bytes`] with a given strong `etag` (chunks: the server's instance and the
/// key, so no pass over the body is needed and a revalidation skips the work).
pub fn tagged(
    method: &Method,
    req: &HeaderMap,
    body: Vec<u8>,
    content_type: &str,
    etag: &str,
) -> Response<Body> {
    let mut headers = HeaderMap::new();
    headers.insert(header::CONTENT_TYPE, value(content_type));
    headers.insert(header::ETAG, value(etag));
    headers.insert(header::CACHE_CONTROL, value(CACHE));
    headers.insert(header::ACCEPT_RANGES, value("bytes"));
    if matches(req, etag) {
        return respond(StatusCode::NOT_MODIFIED, headers, Vec::new(), method);
    }
    let len = body.len() as u64;
    let range = req.get(header::RANGE).and_then(|v| v.to_str().ok());
    let Some(range) = range else {
        return respond(StatusCode::OK, headers, body, method);
    };
    let ranges = http_range_header::parse_range_header(range).and_then(|r| r.validate(len));
    match ranges {
        Ok(r) if r.len() == 1 => {
            let (a, b) = (*r[0].start(), *r[0].end());
            headers.insert(
                header::CONTENT_RANGE,
                value(&format!("bytes {a}-{b}/{len}")),
            );
            let part = body[a as usize..=b as usize].to_vec();
            respond(StatusCode::PARTIAL_CONTENT, headers, part, method)
        }
        // Several ranges: the whole body (a server may ignore Range).
        Ok(_) => respond(StatusCode::OK, headers, body, method),
        Err(_) => {
            headers.insert(header::CONTENT_RANGE, value(&format!("bytes */{len}")));
            headers.insert(header::CONTENT_TYPE, value("text/plain; charset=utf-8"));
            let msg = format!("range '{range}' is not satisfiable: the body has {len} bytes\n");
            respond(
                StatusCode::RANGE_NOT_SATISFIABLE,
                headers,
                msg.into_bytes(),
                method,
            )
        }
    }
}

/// A JSON document (never ranged: metadata is small).
pub fn json(method: &Method, req: &HeaderMap, doc: &serde_json::Value) -> Response<Body> {
    let body = serde_json::to_vec_pretty(doc).expect("JSON values serialise");
    bytes(method, req, body, "application/json")
}

/// An error as plain text with its status.
pub fn error(method: &Method, reply: Reply) -> Response<Body> {
    let (status, msg) = match reply {
        Reply::NotFound(m) => (StatusCode::NOT_FOUND, m),
        Reply::BadRequest(m) => (StatusCode::BAD_REQUEST, m),
        Reply::TooLarge(m) => (StatusCode::PAYLOAD_TOO_LARGE, m),
        Reply::Forbidden(m) => (StatusCode::FORBIDDEN, m),
        Reply::Unavailable(m) => (StatusCode::SERVICE_UNAVAILABLE, m),
        Reply::Internal(m) => (StatusCode::INTERNAL_SERVER_ERROR, m),
    };
    let mut headers = HeaderMap::new();
    headers.insert(header::CONTENT_TYPE, value("text/plain; charset=utf-8"));
    headers.insert(header::CACHE_CONTROL, value("no-store"));
    respond(status, headers, format!("{msg}\n").into_bytes(), method)
}

fn respond(
    status: StatusCode,
    headers: HeaderMap,
    body: Vec<u8>,
    method: &Method,
) -> Response<Body> {
    let len = body.len();
    let mut r = Response::new(if method == Method::HEAD {
        Body::empty()
    } else {
        Body::from(body)
    });
    *r.status_mut() = status;
    *r.headers_mut() = headers;
    if status != StatusCode::NOT_MODIFIED {
        r.headers_mut()
            .insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    }
    r
}

fn value(s: &str) -> HeaderValue {
    HeaderValue::from_str(s).unwrap_or_else(|_| HeaderValue::from_static("invalid"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(range: &str) -> Response<Body> {
        let mut h = HeaderMap::new();
        h.insert(header::RANGE, value(range));
        bytes(
            &Method::GET,
            &h,
            (0..100u8).collect(),
            "application/octet-stream",
        )
    }

    #[test]
    fn ranges() {
        let r = with("bytes=10-19");
        assert_eq!(r.status(), StatusCode::PARTIAL_CONTENT);
        assert_eq!(r.headers()[header::CONTENT_RANGE], "bytes 10-19/100");
        assert_eq!(r.headers()[header::CONTENT_LENGTH], "10");
        assert_eq!(
            with("bytes=-5").headers()[header::CONTENT_RANGE],
            "bytes 95-99/100"
        );
        assert_eq!(
            with("bytes=100-").status(),
            StatusCode::RANGE_NOT_SATISFIABLE
        );
        assert_eq!(
            with("bytes=5-2").status(),
            StatusCode::RANGE_NOT_SATISFIABLE
        );
        assert_eq!(with("bytes=0-1,5-6").status(), StatusCode::OK);
        let head = bytes(&Method::HEAD, &HeaderMap::new(), vec![1; 7], "text/plain");
        assert_eq!(head.headers()[header::CONTENT_LENGTH], "7");
    }
}
