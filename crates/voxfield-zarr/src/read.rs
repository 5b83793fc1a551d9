use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::Value;
use std::sync::atomic::{AtomicU64, Ordering};
use voxfield_core::{
    check_chunk, Affine, ArrayEntry, Axes, Axis, DType, Endian, Error, IndexRequest, Result,
    VolumeInfo, VolumeSource,
};
use zarrs::array::{
    Array, ArrayBytes, ArrayMetadata, ArrayMetadataV3, ArrayShardedExt, ArrayShardedReadableExt,
    ArrayShardedReadableExtCache,
};

use zarrs::filesystem::FilesystemStore;
use zarrs::storage::{ReadableStorageTraits, StoreKey};

use crate::ome;
use crate::remote;

/// Any readable store: a local directory or a remote one.
type Storage = Arc<dyn ReadableStorageTraits>;

/// How to pick a level of an OME-Zarr multiscale image.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub enum ZarrOptions {
    /// Level 0 (full resolution).
    #[default]
    FullResolution,
    /// Level by index.
    Level(usize),
    /// The coarsest level whose voxel spacing (smallest axis, world units) is at
    /// most this; the finest level if none is that fine.
    Spacing(f64),
}

/// One Zarr array as a chunked volume source.
pub struct ZarrVolume {
    array: Array<dyn ReadableStorageTraits>,
    shards: ArrayShardedReadableExtCache,
    info: VolumeInfo,
    /// The stored array's (inner) chunk shape.
    chunk: Vec<usize>,
    /// Behind a URL: reads wait on the network.
    remote: bool,
    /// The array's directory, for a local store.
    local_dir: Option<PathBuf>,
    /// Chunks read, and how many of them were missing from the store.
    reads: AtomicU64,
    missing: AtomicU64,
}

/// Splits `a/b/store.zarr/g/arr` into the store root and the node path inside it.
fn split_store(path: &Path) -> (PathBuf, String) {
    let comps: Vec<_> = path.components().collect();
    for (i, c) in comps.iter().enumerate() {
        if c.as_os_str()
            .to_string_lossy()
            .to_ascii_lowercase()
            .ends_with(".zarr")
        {
            let root: PathBuf = comps[..=i].iter().collect();
            let inner: Vec<String> = comps[i + 1..]
                .iter()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect();
            return (root, format!("/{}", inner.join("/")));
        }
    }
    (path.to_path_buf(), "/".to_string())
}

fn node_dir(root: &Path, node: &str) -> PathBuf {
    match node.trim_matches('/') {
        "" => root.to_path_buf(),
        n => root.join(n),
    }
}

/// What a node in a store is, from its metadata files.
pub(crate) enum Node {
    /// An array, with its Zarr v3 metadata document when it was fetched from a
    /// remote store (so opening it costs no second round trip).
    Array(Option<Value>),
    Group(Value),
}

fn read_json(p: &Path) -> Result<Option<Value>> {
    match std::fs::read_to_string(p) {
        Ok(s) => serde_json::from_str(&s)
            .map(Some)
            .map_err(|e| Error::format(p, format!("invalid JSON metadata: {e}"))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::io(p, e)),
    }
}

pub(crate) fn node_kind(dir: &Path) -> Result<Option<Node>> {
    if dir.is_file() {
        return Err(Error::format(
            dir,
            "is a regular file, not a Zarr store or node (a Zarr array or group is a directory)",
        ));
    }
    if let Some(v) = read_json(&dir.join("zarr.json"))? {
        return match v.get("node_type").and_then(Value::as_str) {
            Some("array") => Ok(Some(Node::Array(None))),
            Some("group") => Ok(Some(Node::Group(
                v.get("attributes").cloned().unwrap_or(Value::Null),
            ))),
            other => Err(Error::format(
                dir.join("zarr.json"),
                format!("invalid zarr.json: node_type is {other:?}"),
            )),
        };
    }
    if dir.join(".zarray").exists() {
        read_json(&dir.join(".zarray"))?;
        return Ok(Some(Node::Array(None)));
    }
    if dir.join(".zgroup").exists() {
        let attrs = read_json(&dir.join(".zattrs"))?.unwrap_or(Value::Null);
        return Ok(Some(Node::Group(attrs)));
    }
    Ok(None)
}

/// Opens a Zarr array (or an OME-Zarr image's level) as a volume; `index` selects
/// the non-spatial axes of an N-D array. `path` may be an `http(s)://` or
/// `s3://` URL (see [`open_url`]).
pub fn open(path: &Path, opts: ZarrOptions, index: &IndexRequest) -> Result<ZarrVolume> {
    if let Some(url) = path.to_str().filter(|s| remote::is_url(s)) {
        return open_url(url, None, opts, index);
    }
    let (root, node) = split_store(path);
    let dir = node_dir(&root, &node);
    match std::fs::metadata(&dir) {
        Ok(m) if !m.is_dir() => return Err(Error::format(
            path,
            "is a regular file, not a Zarr store or node (a Zarr array or group is a directory)",
        )),
        Ok(_) => {}
        Err(e) => return Err(Error::io(path, e)),
    }
    let store: Storage = Arc::new(crate::bounded::Bounded(
        FilesystemStore::new(&root)
            .map_err(|e| Error::format(&root, format!("cannot open Zarr store: {e}")))?,
    ));
    let kind = node_kind(&dir)?;
    let at = Place {
        store,
        root: root.clone(),
        local: true,
    };
    open_node(&at, &node, path, kind, opts, index, || list_container(path))
}

/// Opens an array or OME-Zarr image behind an `http(s)://` or `s3://` URL,
/// fetching only metadata until chunks are read; `s3_endpoint` overrides
/// the S3 endpoint (S3-compatible servers).
pub fn open_url(
    url: &str,
    s3_endpoint: Option<&str>,
    opts: ZarrOptions,
    index: &IndexRequest,
) -> Result<ZarrVolume> {
    let r = remote::connect(url, s3_endpoint)?;
    let at = Place {
        store: r.storage.clone(),
        root: PathBuf::from(&r.root),
        local: false,
    };
    let kind = node_kind_in(&at.store, &r.node, Path::new(url))?;
    open_node(&at, &r.node, Path::new(url), kind, opts, index, || {
        list_remote(&r, &at.store)
    })
}

/// Whether a URL names a Zarr group that is not an OME-Zarr image.
pub fn is_plain_remote_group(url: &str, s3_endpoint: Option<&str>) -> Result<bool> {
    let r = remote::connect(url, s3_endpoint)?;
    Ok(match node_kind_in(&r.storage, &r.node, Path::new(url))? {
        Some(Node::Group(attrs)) => ome::multiscales(&attrs, |_| Some(3))
            .ok()
            .flatten()
            .is_none(),
        _ => false,
    })
}

/// The arrays below a remote group: from its consolidated metadata (Zarr v3
/// `consolidated_metadata`, or v2 `.zmetadata`), else from an S3 listing.
pub fn list_container_url(url: &str, s3_endpoint: Option<&str>) -> Result<Vec<ArrayEntry>> {
    let r = remote::connect(url, s3_endpoint)?;
    let storage = r.storage.clone();
    list_remote(&r, &storage)
}

fn list_remote(r: &remote::RemoteStore, store: &Storage) -> Result<Vec<ArrayEntry>> {
    let shown = PathBuf::from(format!("{}{}", r.root, r.node.trim_end_matches('/')));
    let node = r.node.trim_matches('/');
    let get = |name: &str| json_at(store, node, name, &shown);
    let entry = |path: &str, meta: &Value| ArrayEntry {
        path: path.to_string(),
        shape: meta["shape"]
            .as_array()
            .map(|a| a.iter().filter_map(Value::as_u64).collect())
            .unwrap_or_default(),
        dtype: meta
            .get("data_type")
            .or(meta.get("dtype"))
            .map(|d| d.to_string().trim_matches('"').to_string())
            .unwrap_or_default(),
    };
    let mut out = vec![];
    if let Some(cm) =
        get("zarr.json")?.and_then(|g| g["consolidated_metadata"]["metadata"].as_object().cloned())
    {
        for (path, meta) in cm {
            if meta["node_type"] == "array" {
                out.push(entry(&path, &meta));
            }
        }
    } else if let Some(cm) = get(".zmetadata")?.and_then(|g| g["metadata"].as_object().cloned()) {
        for (key, meta) in cm {
            if let Some(path) = key
                .strip_suffix("/.zarray")
                .or((key == ".zarray").then_some("."))
            {
                out.push(entry(path, &meta));
            }
        }
    } else if r.root.to_ascii_lowercase().starts_with("s3://") {
        // Keys come relative to the store root (the client is prefixed by it).
        for key in r.keys_below(node)? {
            let rel = key.as_str();
            let Some(dir) = rel
                .strip_suffix("zarr.json")
                .or(rel.strip_suffix(".zarray"))
            else {
                continue;
            };
            let dir = dir.trim_end_matches('/');
            let Some(meta) = json_at(store, "", rel, &shown)? else {
                continue;
            };
            if meta.get("node_type").is_some_and(|t| t != "array") {
                continue;
            }
            let inner = dir
                .strip_prefix(node)
                .unwrap_or(dir)
                .trim_start_matches('/');
            out.push(entry(if inner.is_empty() { "." } else { inner }, &meta));
        }
    } else {
        return Err(Error::format(
            &shown,
            "is a Zarr group without consolidated metadata, and an HTTP server cannot be listed: name one of its arrays",
        ));
    }
    out.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(out)
}

/// Where a store lives: its storage and root (a directory, or a URL shown
/// as a path in messages).
struct Place {
    store: Storage,
    root: PathBuf,
    local: bool,
}

impl Place {
    fn shown(&self, node: &str) -> PathBuf {
        if self.local {
            return node_dir(&self.root, node);
        }
        match node.trim_matches('/') {
            "" => self.root.clone(),
            n => PathBuf::from(format!("{}/{n}", self.root.display())),
        }
    }
}

/// The JSON document `name` of `node` in any store; `None` if absent.
fn json_at(store: &Storage, node: &str, name: &str, shown: &Path) -> Result<Option<Value>> {
    let key = match node.trim_matches('/') {
        "" => name.to_string(),
        n => format!("{n}/{name}"),
    };
    let key = StoreKey::new(key).map_err(|e| Error::format(shown, e.to_string()))?;
    match store
        .get(&key)
        .map_err(|e| Error::format(shown, format!("{name}: {e}")))?
    {
        None => Ok(None),
        Some(b) => serde_json::from_slice(&b)
            .map(Some)
            .map_err(|e| Error::format(shown, format!("{name}: invalid JSON metadata: {e}"))),
    }
}

/// A node's kind from its metadata keys in any store (a remote one: one
/// request per key tried).
fn node_kind_in(store: &Storage, node: &str, shown: &Path) -> Result<Option<Node>> {
    let get = |name: &str| json_at(store, node, name, shown);
    if let Some(v) = get("zarr.json")? {
        return match v.get("node_type").and_then(Value::as_str) {
            Some("array") => Ok(Some(Node::Array(Some(v)))),
            Some("group") => Ok(Some(Node::Group(
                v.get("attributes").cloned().unwrap_or(Value::Null),
            ))),
            other => Err(Error::format(
                shown,
                format!("invalid zarr.json: node_type is {other:?}"),
            )),
        };
    }
    if get(".zarray")?.is_some() {
        return Ok(Some(Node::Array(None)));
    }
    if get(".zgroup")?.is_some() {
        return Ok(Some(Node::Group(get(".zattrs")?.unwrap_or(Value::Null))));
    }
    Ok(None)
}

/// Opens the node `node` of kind `kind` found at `at`.
fn open_node(
    at: &Place,
    node: &str,
    path: &Path,
    kind: Option<Node>,
    opts: ZarrOptions,
    index: &IndexRequest,
    list: impl FnOnce() -> Result<Vec<ArrayEntry>>,
) -> Result<ZarrVolume> {
    let dir = at.shown(node);
    let store = at.store.clone();
    match kind {
        Some(Node::Array(doc)) => {
            if opts != ZarrOptions::FullResolution {
                return Err(Error::format(
                    path,
                    "is a single Zarr array, not a multiscale OME-Zarr image: --scale-level/--spacing do not apply",
                ));
            }
            let opened = match doc {
                Some(doc) => Some(array_from(at, node, doc)?),
                None => None,
            };
            ZarrVolume::new(at, node, path, None, index, vec![], opened)
        }
        Some(Node::Group(attrs)) => {
            let rank = |p: &str| {
                let child = format!("{}/{p}", node.trim_end_matches('/'));
                Array::open(store.clone(), &child)
                    .ok()
                    .map(|a| a.shape().len())
            };
            match ome::multiscales(&attrs, rank).map_err(|m| Error::format(&dir, m))? {
                Some(image) => open_level(at, node, path, image, opts, index),
                None => {
                    let arrays = list()?;
                    let names: Vec<String> = arrays
                        .iter()
                        .map(|e| format!("{} {:?} {}", e.path, e.shape, e.dtype))
                        .collect();
                    Err(Error::format(
                        path,
                        format!(
                            "is a Zarr group, not an array; name one of its arrays: {}",
                            if names.is_empty() {
                                "(none)".into()
                            } else {
                                names.join(", ")
                            }
                        ),
                    ))
                }
            }
        }
        None => Err(Error::format(
            path,
            "not a Zarr array or group (no zarr.json, .zarray or .zgroup)",
        )),
    }
}

/// Opens the level of an OME-Zarr image that `opts` picks.
fn open_level(
    at: &Place,
    node: &str,
    path: &Path,
    image: ome::Image,
    opts: ZarrOptions,
    index: &IndexRequest,
) -> Result<ZarrVolume> {
    let dir = at.shown(node);
    let child = |p: &str| format!("{}/{p}", node.trim_end_matches('/'));
    let first = Array::open(at.store.clone(), &child(&image.levels[0].path))
        .map_err(|e| Error::format(&dir, format!("level '{}': {e}", image.levels[0].path)))?;
    let axes0 = with_lengths(&dir, image.axes.clone(), first.shape())?;
    let sel = Axes::select(path, axes0, index)?;
    let (i, level) = ome::choose(&image.levels, &sel, opts).map_err(|m| Error::format(&dir, m))?;
    let note = format!(
        "OME-Zarr image with {} levels: using level {i} ('{}', spacing {:?})",
        image.levels.len(),
        level.path,
        level.spacing(&sel)
    );
    ZarrVolume::new(
        at,
        &child(&level.path),
        path,
        Some((image.axes, level)),
        index,
        vec![note],
        (i == 0).then_some(first),
    )
}

/// The array at `node` from its Zarr v3 metadata document, already fetched.
fn array_from(at: &Place, node: &str, doc: Value) -> Result<Array<dyn ReadableStorageTraits>> {
    let bad =
        |e: String| Error::format(at.shown(node), format!("invalid Zarr array metadata: {e}"));
    let meta: ArrayMetadataV3 = serde_json::from_value(doc).map_err(|e| bad(e.to_string()))?;
    Array::new_with_metadata(at.store.clone(), node, ArrayMetadata::V3(meta))
        .map_err(|e| bad(e.to_string()))
}

/// OME axes (or the default ones) with the lengths of an array's shape.
fn with_lengths(dir: &Path, axes: Option<Vec<Axis>>, shape: &[u64]) -> Result<Vec<Axis>> {
    let shape: Vec<usize> = shape.iter().map(|&n| n as usize).collect();
    match axes {
        None => Ok(Axes::default_for(&shape)),
        Some(a) if a.len() != shape.len() => Err(Error::format(
            dir,
            format!(
                "OME metadata lists {} axes but the array has shape {shape:?}",
                a.len()
            ),
        )),
        Some(mut a) => {
            for (x, n) in a.iter_mut().zip(shape) {
                x.len = n;
            }
            Ok(a)
        }
    }
}

/// Whether `path` names a Zarr group that is not an OME-Zarr image.
pub fn is_plain_group(path: &Path) -> Result<bool> {
    let (root, node) = split_store(path);
    Ok(match node_kind(&node_dir(&root, &node))? {
        Some(Node::Group(attrs)) => ome::multiscales(&attrs, |_| Some(3))
            .ok()
            .flatten()
            .is_none(),
        _ => false,
    })
}

/// The arrays below a Zarr group (or an HDF5-like container listing): path, shape, dtype.
pub fn list_container(path: &Path) -> Result<Vec<ArrayEntry>> {
    let (root, node) = split_store(path);
    let base = node_dir(&root, &node);
    let mut out = vec![];
    let mut stack = vec![base.clone()];
    while let Some(dir) = stack.pop() {
        if let Some(Node::Array(_)) = node_kind(&dir)? {
            let meta = read_json(&dir.join("zarr.json"))?
                .or(read_json(&dir.join(".zarray"))?)
                .unwrap_or(Value::Null);
            let shape = meta["shape"]
                .as_array()
                .map(|a| a.iter().filter_map(Value::as_u64).collect())
                .unwrap_or_default();
            let dtype = meta
                .get("data_type")
                .or(meta.get("dtype"))
                .map(|d| d.to_string().trim_matches('"').to_string())
                .unwrap_or_default();
            let rel = dir
                .strip_prefix(&base)
                .unwrap_or(&dir)
                .to_string_lossy()
                .into_owned();
            let path = if rel.is_empty() { ".".into() } else { rel };
            out.push(ArrayEntry { path, shape, dtype });
            continue;
        }
        let mut subdirs: Vec<PathBuf> = std::fs::read_dir(&dir)
            .map_err(|e| Error::io(&dir, e))?
            .filter_map(|e| e.ok())
            .map(|e| e.path())
            .filter(|p| p.is_dir())
            .collect();
        subdirs.sort();
        stack.extend(subdirs.into_iter().rev());
    }
    out.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(out)
}

impl ZarrVolume {
    fn new(
        at: &Place,
        node: &str,
        user_path: &Path,
        ome: Option<(Option<Vec<Axis>>, &ome::Level)>,
        index: &IndexRequest,
        notes: Vec<String>,
        opened: Option<Array<dyn ReadableStorageTraits>>,
    ) -> Result<Self> {
        let meta_path = at.shown(node);
        let array = match opened {
            Some(a) => a,
            None => Array::open(at.store.clone(), node).map_err(|e| {
                Error::format(&meta_path, format!("invalid Zarr array metadata: {e}"))
            })?,
        };
        let shape: Vec<u64> = array.shape().to_vec();
        let template = ome.as_ref().and_then(|(a, _)| a.clone());
        let axes = Axes::select(
            user_path,
            with_lengths(&meta_path, template, &shape)?,
            index,
        )?;
        let dt_name = array.data_type().to_string();
        let dt_name = dt_name.split(" / ").next().unwrap_or("").to_string();
        let dtype = dt_name
            .parse::<DType>()
            .ok()
            .filter(|_| !dt_name.is_empty())
            .ok_or_else(|| {
                Error::format(user_path, format!("unsupported Zarr data type '{dt_name}'"))
            })?;
        let origin = vec![0u64; shape.len()];
        let chunk: Vec<usize> = match array.effective_subchunk_shape() {
            Some(s) => s.iter().map(|n| n.get() as usize).collect(),
            None => array
                .chunk_shape(&origin)
                .map_err(|e| Error::format(user_path, format!("irregular chunk grid: {e}")))?
                .iter()
                .map(|n| n.get() as usize)
                .collect(),
        };
        if chunk.len() != shape.len() || chunk.contains(&0) {
            return Err(Error::format(
                &meta_path,
                format!(
                    "chunk shape {chunk:?} does not fit an array of {} axes (corrupt metadata)",
                    shape.len()
                ),
            ));
        }
        let affine = match &ome {
            Some((_, level)) => Some(
                level
                    .affine(&axes)
                    .map_err(|m| Error::format(&meta_path, m))?,
            ),
            None => stored_affine(&array, &meta_path)?,
        };
        let format = match array.metadata() {
            zarrs::array::ArrayMetadata::V2(_) => "zarr-v2",
            _ => "zarr-v3",
        };
        let mut info = VolumeInfo::selected(format, user_path, axes, &chunk, dtype, Endian::NATIVE);
        info.affine = affine;
        info.notes = notes;
        let shards = ArrayShardedReadableExtCache::new(&array);
        Ok(Self {
            array,
            shards,
            info,
            chunk,
            remote: !at.local,
            local_dir: at.local.then_some(meta_path),
            reads: AtomicU64::new(0),
            missing: AtomicU64::new(0),
        })
    }
}

/// The affine voxfield keeps in a plain array's attributes (`voxfield.affine`).
fn stored_affine(array: &Array<dyn ReadableStorageTraits>, path: &Path) -> Result<Option<Affine>> {
    let Some(v) = array
        .attributes()
        .get("voxfield")
        .and_then(|v| v.get("affine"))
    else {
        return Ok(None);
    };
    let bad = || {
        Error::format(
            path,
            "attribute voxfield.affine is not a 4×4 matrix of numbers",
        )
    };
    let rows: Vec<Vec<f64>> = serde_json::from_value(v.clone()).map_err(|_| bad())?;
    let mut m = [[0.0; 4]; 4];
    for (r, row) in rows.iter().enumerate() {
        if rows.len() != 4 || row.len() != 4 {
            return Err(bad());
        }
        m[r].copy_from_slice(row);
    }
    Affine::from_rows(m)
        .map(Some)
        .map_err(|e| Error::format(path, format!("attribute voxfield.affine: {e}")))
}

fn dir_size(dir: &Path) -> u64 {
    let mut total = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        if let Ok(rd) = std::fs::read_dir(&d) {
            for e in rd.flatten() {
                match e.metadata() {
                    Ok(m) if m.is_dir() => stack.push(e.path()),
                    Ok(m) => total += m.len(),
                    Err(_) => {}
                }
            }
        }
    }
    total
}

impl VolumeSource for ZarrVolume {
    fn info(&self) -> &VolumeInfo {
        &self.info
    }

    fn disk_usage(&self) -> u64 {
        match &self.local_dir {
            Some(dir) => dir_size(dir),
            None => 0,
        }
    }

    fn read_warnings(&self) -> Vec<String> {
        let (reads, missing) = (
            self.reads.load(Ordering::Relaxed),
            self.missing.load(Ordering::Relaxed),
        );
        if self.remote && reads > 0 && missing == reads {
            vec![format!(
                "none of the {reads} chunks read from {} exists (the server answered 'not found' \
                 for every one): every value read is the fill value; check the URL",
                self.info.path.display()
            )]
        } else {
            vec![]
        }
    }

    fn concurrency(&self) -> usize {
        if self.remote {
            remote::CONCURRENCY
        } else {
            1
        }
    }

    fn read_chunk(&self, idx: [usize; 3], out: &mut [u8]) -> Result<()> {
        check_chunk(&self.info, idx, out.len())?;
        let i: Vec<u64> = self
            .info
            .axes
            .array_chunk(idx, &self.chunk)
            .iter()
            .map(|&x| x as u64)
            .collect();
        let esize = self.info.dtype.size();
        let bad = |e: zarrs::array::ArrayError| {
            Error::format(&self.info.path, format!("chunk {i:?}: {e}"))
        };
        self.reads.fetch_add(1, Ordering::Relaxed);
        let bytes: ArrayBytes<'static> = if self.shards.array_is_sharded() {
            // The shard index (cached, read once per shard) says whether the
            // inner chunk was ever written; a missing shard counts as missing.
            if self
                .array
                .subchunk_byte_range(&self.shards, &i)
                .map_err(bad)?
                .is_none()
            {
                self.missing.fetch_add(1, Ordering::Relaxed);
            }
            self.array
                .retrieve_subchunk_opt(&self.shards, &i, &Default::default())
                .map_err(bad)?
        } else {
            match self
                .array
                .retrieve_chunk_if_exists_opt(&i, &Default::default())
                .map_err(bad)?
            {
                Some(b) => b,
                None => {
                    // Never written (or 404): the fill value, counted.
                    self.missing.fetch_add(1, Ordering::Relaxed);
                    let fill = self.array.fill_value().as_ne_bytes();
                    if fill.len() != esize {
                        return Err(Error::format(
                            &self.info.path,
                            "fill value of the wrong size",
                        ));
                    }
                    for e in out.chunks_exact_mut(esize) {
                        e.copy_from_slice(fill);
                    }
                    return Ok(());
                }
            }
        };
        let raw = bytes
            .into_fixed()
            .map_err(|e| Error::format(&self.info.path, format!("chunk {i:?}: {e}")))?;
        let want = self.chunk.iter().product::<usize>() * esize;
        if raw.len() != want {
            return Err(Error::format(
                &self.info.path,
                format!(
                    "chunk {i:?} decoded to {} bytes, expected {want}",
                    raw.len()
                ),
            ));
        }
        self.info.axes.extract_chunk(&self.chunk, esize, &raw, out);
        Ok(())
    }
}
