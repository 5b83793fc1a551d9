//! Where a store's bytes live: a local folder, or an `http(s)://` or
//! `s3://` object store reached through the volume readers' remote layer
//! (`voxfield_zarr::remote`: retries, timeouts, size limits). A
//! [`Location`] is one node of the store (root, level, array); reads fetch
//! exactly the object asked for, so a bounding-box read touches only its
//! cells. Metadata comes from the root's consolidated metadata when the
//! store has it (one request for every `zarr.json`).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::Value;
use voxfield_core::{Error, Result};
use voxfield_zarr::remote::{self, RemoteStore};

enum Backend {
    Local(PathBuf),
    Remote(Box<Remote>),
}

struct Remote {
    store: RemoteStore,
    url: String,
    /// The root's `zarr.json` (fetched once, when the store is opened).
    root: Option<Value>,
    /// zarr-python's inline consolidated metadata: node key → `zarr.json`.
    consolidated: Option<HashMap<String, Value>>,
}

/// One node of a store (its key below the root; "" for the root).
#[derive(Clone)]
pub struct Location {
    backend: Arc<Backend>,
    key: String,
}

impl std::fmt::Debug for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.path().display())
    }
}

impl Location {
    /// The root of a local store.
    pub fn local(path: &Path) -> Location {
        Location {
            backend: Arc::new(Backend::Local(path.to_path_buf())),
            key: String::new(),
        }
    }

    /// The root of the store `s` names: a URL (`http(s)://`, `s3://`) or a
    /// local path. Nothing is fetched yet.
    pub fn open(s: &str) -> Result<Location> {
        if !remote::is_url(s) {
            return Ok(Location::local(Path::new(s)));
        }
        let url = s.trim_end_matches('/').to_string();
        let store = remote::connect(&url, None)?;
        // The root's metadata is fetched once here; with consolidated
        // metadata in it, no other `zarr.json` is ever requested.
        let root = match store.get("zarr.json")? {
            Some(b) => Some(parse_json(&b, &PathBuf::from(format!("{url}/zarr.json")))?),
            None => None,
        };
        let consolidated = root.as_ref().and_then(|r| {
            r["consolidated_metadata"]["metadata"].as_object().map(|m| {
                let mut map: HashMap<String, Value> =
                    m.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
                map.insert(String::new(), r.clone());
                map
            })
        });
        Ok(Location {
            backend: Arc::new(Backend::Remote(Box::new(Remote {
                store,
                url,
                root,
                consolidated,
            }))),
            key: String::new(),
        })
    }

    pub fn is_remote(&self) -> bool {
        matches!(*self.backend, Backend::Remote(_))
    }

    /// Runs `f` (parallel cell reads) in the remote-read pool — 32 threads,
    /// since a fetch waits on the network, not on a core — or right here
    /// for a local store, on the global pool.
    pub fn install<R: Send>(&self, f: impl FnOnce() -> R + Send) -> R {
        match (&*self.backend, fetch_pool()) {
            (Backend::Remote(_), Some(pool)) => pool.install(f),
            _ => f(),
        }
    }

    /// The node `name` below this one.
    pub fn join(&self, name: &str) -> Location {
        Location {
            backend: self.backend.clone(),
            key: if self.key.is_empty() {
                name.to_string()
            } else {
                format!("{}/{name}", self.key)
            },
        }
    }

    /// The node as a path or URL, for messages.
    pub fn path(&self) -> PathBuf {
        match &*self.backend {
            Backend::Local(p) if self.key.is_empty() => p.clone(),
            Backend::Local(p) => p.join(&self.key),
            Backend::Remote(r) if self.key.is_empty() => PathBuf::from(&r.url),
            Backend::Remote(r) => PathBuf::from(format!("{}/{}", r.url, self.key)),
        }
    }

    /// The object `rel` below this node, whole (None when absent). A local
    /// file must be a regular one (a FIFO or device would block).
    pub fn get(&self, rel: &str) -> Result<Option<Vec<u8>>> {
        match &*self.backend {
            Backend::Local(root) => match regular_file(&root.join(&self.key).join(rel))? {
                Some(p) => std::fs::read(&p).map(Some).map_err(|e| Error::io(&p, e)),
                None => Ok(None),
            },
            Backend::Remote(r) => r.store.get(&self.rel_key(rel)),
        }
    }

    /// `len` bytes of object `rel` from `offset`, or its last `len` with
    /// `offset` None; the object's size alongside (None when absent).
    pub fn get_range(&self, rel: &str, offset: Option<u64>, len: u64) -> Result<Option<Vec<u8>>> {
        match &*self.backend {
            Backend::Local(root) => {
                use std::os::unix::fs::FileExt;
                let Some(p) = regular_file(&root.join(&self.key).join(rel))? else {
                    return Ok(None);
                };
                let f = std::fs::File::open(&p).map_err(|e| Error::io(&p, e))?;
                let size = f.metadata().map_err(|e| Error::io(&p, e))?.len();
                let at = match offset {
                    Some(o) => o,
                    None => size.checked_sub(len).ok_or_else(|| {
                        Error::format(&p, format!("{size} bytes, fewer than the {len} asked for"))
                    })?,
                };
                if at.checked_add(len).is_none_or(|end| end > size) {
                    return Err(Error::format(
                        &p,
                        format!("bytes {at}+{len} asked of a {size}-byte file"),
                    ));
                }
                let mut out = vec![0u8; len as usize];
                f.read_exact_at(&mut out, at)
                    .map_err(|e| Error::io(&p, e))?;
                Ok(Some(out))
            }
            Backend::Remote(r) => r.store.get_range(&self.rel_key(rel), offset, len),
        }
    }

    /// The size of object `rel` (None when absent).
    pub fn size(&self, rel: &str) -> Result<Option<u64>> {
        match &*self.backend {
            Backend::Local(root) => {
                let p = root.join(&self.key).join(rel);
                match std::fs::metadata(&p) {
                    Ok(m) => Ok(Some(m.len())),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                    Err(e) => Err(Error::io(&p, e)),
                }
            }
            Backend::Remote(r) => r.store.size(&self.rel_key(rel)),
        }
    }

    fn rel_key(&self, rel: &str) -> String {
        if self.key.is_empty() {
            rel.to_string()
        } else {
            format!("{}/{rel}", self.key)
        }
    }

    /// The node's `zarr.json`, parsed (None when the node does not exist).
    pub fn try_json(&self) -> Result<Option<Value>> {
        if let Backend::Remote(r) = &*self.backend {
            if let Some(m) = &r.consolidated {
                return Ok(m.get(&self.key).cloned());
            }
            if self.key.is_empty() {
                return Ok(r.root.clone());
            }
        }
        match self.get("zarr.json")? {
            Some(b) => parse_json(&b, &self.path().join("zarr.json")).map(Some),
            None => Ok(None),
        }
    }

    /// The node's `zarr.json`, parsed; a missing one is an error naming it.
    pub fn json(&self) -> Result<Value> {
        self.try_json()?.ok_or_else(|| {
            Error::format(self.path().join("zarr.json"), "missing: no Zarr node here")
        })
    }

    /// Whether a Zarr node (a `zarr.json`) is here.
    pub fn exists(&self) -> Result<bool> {
        if let Backend::Remote(r) = &*self.backend {
            if let Some(m) = &r.consolidated {
                return Ok(m.contains_key(&self.key));
            }
            if self.key.is_empty() {
                return Ok(r.root.is_some());
            }
        }
        Ok(self.size("zarr.json")?.is_some())
    }

    /// Names of the Zarr nodes directly below, sorted; None when the store
    /// cannot list (a plain HTTP server without an index page). A missing
    /// local folder has none.
    pub fn children(&self) -> Result<Option<Vec<String>>> {
        match &*self.backend {
            Backend::Remote(r) if r.consolidated.is_some() => {
                let m = r.consolidated.as_ref().expect("checked");
                let prefix = if self.key.is_empty() {
                    String::new()
                } else {
                    format!("{}/", self.key)
                };
                let mut names: Vec<String> = m
                    .keys()
                    .filter_map(|k| k.strip_prefix(&prefix))
                    .filter(|k| !k.is_empty() && !k.contains('/'))
                    .map(String::from)
                    .collect();
                names.sort();
                Ok(Some(names))
            }
            Backend::Remote(r) => r.store.children(&self.key),
            Backend::Local(root) => {
                let dir = root.join(&self.key);
                let Ok(entries) = std::fs::read_dir(&dir) else {
                    return Ok(Some(vec![]));
                };
                let mut names: Vec<String> = entries
                    .flatten()
                    .filter(|e| e.path().join("zarr.json").is_file())
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect();
                names.sort();
                Ok(Some(names))
            }
        }
    }
}

/// A `zarr.json`'s bytes parsed (at most 256 MiB of UTF-8 JSON).
fn parse_json(b: &[u8], meta: &Path) -> Result<Value> {
    if b.len() > 256 << 20 {
        return Err(Error::format(meta, "a zarr.json over 256 MiB"));
    }
    let text =
        std::str::from_utf8(b).map_err(|_| Error::format(meta, "zarr.json is not UTF-8 text"))?;
    serde_json::from_str(text).map_err(|e| Error::format(meta, format!("not valid JSON: {e}")))
}

/// `p` when it is a readable regular file, None when it does not exist (a
/// FIFO or device, which would block a read, is an error).
fn regular_file(p: &Path) -> Result<Option<PathBuf>> {
    match std::fs::metadata(p) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        _ => voxfield_io::safety::regular_input(p).map(|()| Some(p.to_path_buf())),
    }
}

/// Requests a remote read keeps in flight.
const FETCHES_IN_FLIGHT: usize = 32;

/// The pool remote cell reads run on (None if the OS refused the threads:
/// reads then run on the global pool).
fn fetch_pool() -> Option<&'static rayon::ThreadPool> {
    static POOL: std::sync::OnceLock<Option<rayon::ThreadPool>> = std::sync::OnceLock::new();
    POOL.get_or_init(|| {
        rayon::ThreadPoolBuilder::new()
            .num_threads(FETCHES_IN_FLIGHT)
            .thread_name(|i| format!("voxfield-fetch-{i}"))
            .build()
            .ok()
    })
    .as_ref()
}
