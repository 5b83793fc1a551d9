//! Zarr stores behind a URL: `http(s)://host/…/store.zarr[/node]` and
//! `s3://bucket/…/store.zarr[/node]`, read through object_store's clients
//! (retries with exponential backoff on 5xx, 408/429, timeouts and dropped
//! connections), driven by one small tokio runtime shared by every remote
//! volume. Only the keys a read touches are
//! fetched: metadata, then whole chunks, or for shards the index and the
//! inner chunks' byte ranges. Credentials, region and endpoint for S3 come
//! from the standard AWS environment variables (`AWS_ACCESS_KEY_ID`,
//! `AWS_SECRET_ACCESS_KEY`, `AWS_REGION`, `AWS_ENDPOINT_URL`), or an
//! explicit endpoint for S3-compatible servers.
//!
//! `VOXFIELD_HTTP_TIMEOUT` (seconds, default 20, at most 3600) bounds each
//! request (connecting: 5 s at most) and `VOXFIELD_HTTP_RETRIES` (default 3,
//! at most 20) the retries of a transient failure, all within 3 timeouts: a
//! silent server costs a read about a minute, not several.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use object_store::path::Path as Key;
use object_store::{
    BackoffConfig, ClientOptions, GetOptions, GetRange, ObjectStore, ObjectStoreExt, RetryConfig,
};
use voxfield_core::{Error, Result};
use zarrs::storage::byte_range::{ByteRange, ByteRangeIterator};
use zarrs::storage::{MaybeBytesIterator, ReadableStorageTraits, StorageError, StoreKey};

/// Chunk reads a sampler keeps in flight against one remote store.
pub const CONCURRENCY: usize = 32;

/// Whether `s` names a remote store rather than a local path.
pub fn is_url(s: &str) -> bool {
    let l = s.to_ascii_lowercase();
    l.starts_with("http://") || l.starts_with("https://") || l.starts_with("s3://")
}

/// An object store read synchronously (by rayon workers) with one request
/// per read: a whole key is one GET, byte ranges one ranged GET each
/// (object_store coalesces neighbours), a shard index a suffix GET — no HEAD
/// first, which the generic async adapter would add to every read.
struct Remote {
    store: Arc<dyn ObjectStore>,
    rt: tokio::runtime::Handle,
}

/// The client's message with its root cause ("operation timed out",
/// "connection refused"), which the top-level message often leaves out.
fn storage_error(e: object_store::Error) -> StorageError {
    let mut msg = e.to_string();
    let mut cause = std::error::Error::source(&e);
    let mut last = None;
    while let Some(c) = cause {
        last = Some(c.to_string());
        cause = c.source();
    }
    if let Some(l) = last.filter(|l| !msg.contains(l.as_str())) {
        msg = format!("{msg} ({l})");
    }
    StorageError::Other(msg)
}

impl Remote {
    fn get_range(
        &self,
        key: &Key,
        range: Option<GetRange>,
    ) -> std::result::Result<Option<bytes::Bytes>, StorageError> {
        let options = GetOptions {
            range,
            ..GetOptions::default()
        };
        let limit = max_object_bytes();
        let got = self.rt.block_on(async {
            let r = self.store.get_opts(key, options).await?;
            let len = r.range.end.saturating_sub(r.range.start);
            if len > limit {
                return Ok(Err(len));
            }
            r.bytes().await.map(Ok)
        });
        match got {
            Ok(Ok(b)) => Ok(Some(b)),
            Ok(Err(len)) => Err(StorageError::Other(format!(
                "{key}: the server offers {len} bytes, more than the {} MiB one object may hold \
                 (VOXFIELD_MAX_OBJECT_MB)",
                limit >> 20
            ))),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(storage_error(e)),
        }
    }
}

impl ReadableStorageTraits for Remote {
    fn get_partial_many<'a>(
        &'a self,
        key: &StoreKey,
        byte_ranges: ByteRangeIterator<'a>,
    ) -> std::result::Result<MaybeBytesIterator<'a>, StorageError> {
        let path = Key::from(key.as_str());
        let ranges: Vec<ByteRange> = byte_ranges.collect();
        let mut out = Vec::with_capacity(ranges.len());
        for r in ranges {
            let want = match r {
                ByteRange::FromStart(0, None) => None,
                ByteRange::FromStart(o, None) => Some(GetRange::Offset(o)),
                ByteRange::FromStart(o, Some(n)) => Some(GetRange::Bounded(o..o + n)),
                ByteRange::Suffix(n) => Some(GetRange::Suffix(n)),
            };
            let Some(b) = self.get_range(&path, want)? else {
                return Ok(None);
            };
            if let ByteRange::FromStart(_, Some(n)) | ByteRange::Suffix(n) = r {
                if b.len() as u64 != n {
                    return Err(StorageError::Other(format!(
                        "{key}: asked for {n} bytes, the server sent {}",
                        b.len()
                    )));
                }
            }
            out.push(Ok(b));
        }
        Ok(Some(Box::new(out.into_iter())))
    }

    fn size_key(&self, key: &StoreKey) -> std::result::Result<Option<u64>, StorageError> {
        match self.rt.block_on(self.store.head(&Key::from(key.as_str()))) {
            Ok(m) => Ok(Some(m.size)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(storage_error(e)),
        }
    }

    fn supports_get_partial(&self) -> bool {
        true
    }
}

fn runtime() -> Result<tokio::runtime::Handle> {
    static RT: OnceLock<std::result::Result<tokio::runtime::Runtime, String>> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("voxfield-remote")
            .enable_all()
            .build()
            .map_err(|e| e.to_string())
    })
    .as_ref()
    .map(|r| r.handle().clone())
    .map_err(|e| Error::invalid(format!("cannot start the I/O runtime: {e}")))
}

/// A positive number from the environment, clamped to `max` (absurd values
/// must not overflow a `Duration`); the default when unset or unusable.
fn env_number(key: &str, default: f64, max: f64) -> f64 {
    std::env::var(key)
        .ok()
        .and_then(|v| v.trim().parse::<f64>().ok())
        .filter(|v| *v > 0.0)
        .map_or(default, |v| v.min(max))
}

/// The time one request may take.
fn http_timeout() -> Duration {
    Duration::from_secs_f64(env_number("VOXFIELD_HTTP_TIMEOUT", 20.0, 3600.0))
}

fn client_options() -> ClientOptions {
    let timeout = http_timeout();
    ClientOptions::new()
        .with_timeout(timeout)
        .with_connect_timeout(timeout.min(Duration::from_secs(5)))
        .with_allow_http(true)
}

/// The largest object (or byte range) read into memory: 4 GiB unless
/// `VOXFIELD_MAX_OBJECT_MB` says otherwise, so a server cannot make a read
/// allocate without bound.
fn max_object_bytes() -> u64 {
    (env_number("VOXFIELD_MAX_OBJECT_MB", 4096.0, (1u64 << 24) as f64) * 1048576.0) as u64
}

fn retry_config() -> RetryConfig {
    RetryConfig {
        backoff: BackoffConfig {
            init_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(5),
            base: 2.0,
        },
        max_retries: env_number("VOXFIELD_HTTP_RETRIES", 3.0, 20.0) as usize,
        retry_timeout: 3 * http_timeout(),
    }
}

/// A remote store: the synchronous zarrs storage, the node inside it, and
/// the URL of the store root (for messages).
pub struct RemoteStore {
    pub storage: Arc<dyn ReadableStorageTraits>,
    pub node: String,
    pub root: String,
    lister: Arc<dyn ObjectStore>,
    rt: tokio::runtime::Handle,
}

impl RemoteStore {
    /// Every key below `prefix` (an S3 listing; plain HTTP servers cannot list).
    pub fn keys_below(&self, prefix: &str) -> Result<Vec<String>> {
        use futures::TryStreamExt;
        let p = Key::from(prefix.trim_matches('/'));
        let store = self.lister.clone();
        let listed: std::result::Result<Vec<object_store::ObjectMeta>, object_store::Error> = self
            .rt
            .block_on(async move { store.list(Some(&p)).try_collect().await });
        listed
            .map(|v| v.into_iter().map(|m| m.location.to_string()).collect())
            .map_err(|e| {
                Error::format(
                    &self.root,
                    format!("cannot list the store: {}", storage_error(e)),
                )
            })
    }
}

impl RemoteStore {
    /// The store key of `rel`, a path below the node the URL named.
    fn key_str(&self, rel: &str) -> String {
        let node = self.node.trim_matches('/');
        let rel = rel.trim_matches('/');
        match (node.is_empty(), rel.is_empty()) {
            (true, _) => rel.to_string(),
            (false, true) => node.to_string(),
            (false, false) => format!("{node}/{rel}"),
        }
    }

    fn key(&self, rel: &str) -> Result<StoreKey> {
        let k = self.key_str(rel);
        StoreKey::new(k.clone()).map_err(|e| Error::format(&self.root, format!("key {k}: {e}")))
    }

    fn read_error(&self, rel: &str, e: StorageError) -> Error {
        Error::format(format!("{}/{rel}", self.root), e.to_string())
    }

    /// The object at `rel` (None when the server has none): one GET.
    pub fn get(&self, rel: &str) -> Result<Option<Vec<u8>>> {
        self.range(rel, ByteRange::FromStart(0, None))
    }

    /// `len` bytes of `rel` from `offset` (a ranged GET), or its last `len`
    /// bytes with `offset` None (a suffix GET).
    pub fn get_range(&self, rel: &str, offset: Option<u64>, len: u64) -> Result<Option<Vec<u8>>> {
        self.range(
            rel,
            match offset {
                Some(o) => ByteRange::FromStart(o, Some(len)),
                None => ByteRange::Suffix(len),
            },
        )
    }

    fn range(&self, rel: &str, r: ByteRange) -> Result<Option<Vec<u8>>> {
        self.storage
            .get_partial(&self.key(rel)?, r)
            .map(|b| b.map(|b| b.to_vec()))
            .map_err(|e| self.read_error(rel, e))
    }

    /// The size of the object at `rel` (a HEAD), None when absent.
    pub fn size(&self, rel: &str) -> Result<Option<u64>> {
        self.storage
            .size_key(&self.key(rel)?)
            .map_err(|e| self.read_error(rel, e))
    }
}

impl RemoteStore {
    /// The names of the nodes directly below `prefix` (a key inside the
    /// store root), or None when the server cannot say: S3 lists them; a
    /// plain HTTP server is asked for its HTML index of the folder (`GET
    /// prefix/`, as fsspec lists HTTP stores), which Python's `http.server`
    /// and nginx's autoindex serve.
    pub fn children(&self, prefix: &str) -> Result<Option<Vec<String>>> {
        let prefix = self.key_str(prefix);
        if self.root.to_ascii_lowercase().starts_with("s3://") {
            let p = Key::from(prefix.as_str());
            let store = self.lister.clone();
            let listed = self
                .rt
                .block_on(async move { store.list_with_delimiter(Some(&p)).await });
            return Ok(listed.ok().map(|l| {
                let mut names: Vec<String> = l
                    .common_prefixes
                    .iter()
                    .filter_map(|c| c.filename().map(String::from))
                    .collect();
                names.sort();
                names
            }));
        }
        // Plain HTTP: no WebDAV listing (PROPFIND draws 501s that the client
        // would retry); the server's index page instead.
        let key = Key::from(prefix.as_str());
        let store = self.lister.clone();
        let page = self.rt.block_on(async move {
            let r = store.get(&key).await?;
            if r.meta.size > 16 << 20 {
                return Ok(None);
            }
            r.bytes().await.map(Some)
        });
        Ok(match page {
            Ok(Some(b)) => std::str::from_utf8(&b).ok().map(index_links),
            _ => None,
        })
    }
}

/// The sub-folders an HTML index page links to (`href="name/"`), decoded.
fn index_links(page: &str) -> Vec<String> {
    let mut names = vec![];
    for part in page.split("href=").skip(1) {
        let Some(q) = part.chars().next().filter(|c| *c == '"' || *c == '\'') else {
            continue;
        };
        let Some(link) = part[1..].split(q).next() else {
            continue;
        };
        let Some(name) = link.strip_suffix('/') else {
            continue;
        };
        let name = percent_decode(name.rsplit('/').next().unwrap_or(name));
        if !name.is_empty() && !name.starts_with('.') && !name.contains(['?', '#', ':']) {
            names.push(name);
        }
    }
    names.sort();
    names.dedup();
    names
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = b
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (b[i], hex) {
            (b'%', Some(v)) => {
                out.push(v);
                i += 3;
            }
            (c, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Splits a URL at the first path segment ending in `.zarr` (the store
/// root) and the node below it; a URL without one is a store root itself.
fn split_url(url: &str) -> (String, String) {
    let url = url.trim_end_matches('/');
    let (scheme, rest) = url.split_once("://").unwrap_or(("", url));
    let segs: Vec<&str> = rest.split('/').collect();
    for (i, s) in segs.iter().enumerate().skip(1) {
        if s.to_ascii_lowercase().ends_with(".zarr") {
            return (
                format!("{scheme}://{}", segs[..=i].join("/")),
                format!("/{}", segs[i + 1..].join("/")),
            );
        }
    }
    (url.to_string(), "/".to_string())
}

/// Connects to the store a URL names (nothing is fetched yet).
pub fn connect(url: &str, s3_endpoint: Option<&str>) -> Result<RemoteStore> {
    let (root, node) = split_url(url);
    let bad = |e: object_store::Error| Error::format(url, format!("cannot reach the store: {e}"));
    let store: Arc<dyn ObjectStore> = if root.to_ascii_lowercase().starts_with("s3://") {
        let rest = &root[5..];
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty() {
            return Err(Error::format(
                url,
                "an s3:// URL needs a bucket: s3://bucket/path/store.zarr",
            ));
        }
        let mut b = object_store::aws::AmazonS3Builder::from_env()
            .with_bucket_name(bucket)
            .with_client_options(client_options())
            .with_retry(retry_config());
        if let Some(e) = s3_endpoint {
            b = b.with_endpoint(e);
        }
        if std::env::var_os("AWS_ACCESS_KEY_ID").is_none() {
            b = b.with_skip_signature(true); // public buckets
        }
        let s3 = Arc::new(b.build().map_err(bad)?);
        Arc::new(object_store::prefix::PrefixStore::new(
            s3,
            prefix.to_string(),
        ))
    } else {
        Arc::new(
            object_store::http::HttpBuilder::new()
                .with_url(root.clone())
                .with_client_options(client_options())
                .with_retry(retry_config())
                .build()
                .map_err(bad)?,
        )
    };
    let rt = runtime()?;
    let storage = Remote {
        store: store.clone(),
        rt: rt.clone(),
    };
    Ok(RemoteStore {
        storage: Arc::new(storage),
        node,
        root,
        lister: store,
        rt,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_split_at_the_store() {
        assert_eq!(
            split_url("http://h:8000/data/brain.ome.zarr/0"),
            ("http://h:8000/data/brain.ome.zarr".into(), "/0".into())
        );
        assert_eq!(
            split_url("s3://bucket/a/b.zarr/"),
            ("s3://bucket/a/b.zarr".into(), "/".into())
        );
        assert_eq!(split_url("https://h/x"), ("https://h/x".into(), "/".into()));
        assert!(is_url("S3://b/x.zarr") && !is_url("/tmp/http://x"));
    }

    #[test]
    fn html_indexes_name_their_folders() {
        let page = r#"<ul><li><a href="../">..</a></li><li><a href="intensity/">intensity/</a>
            <li><a href='my%20label/'>x</a><li><a href="zarr.json">zarr.json</a>
            <li><a href="/abs/path/deep/">deep</a><li><a href="?C=N;O=D/">sort</a></ul>"#;
        assert_eq!(index_links(page), vec!["deep", "intensity", "my label"]);
    }
}
