//! `voxfield serve`: any field over HTTP, computed on request.
//!
//! Every field (a stored volume of any format, a neural model, an RBF model on
//! a grid) is offered as a Zarr v3 / OME-Zarr 0.5 image (`/zarr/NAME.ome.zarr/`),
//! a Neuroglancer precomputed volume (`/precomputed/NAME/`), server-rendered
//! pictures (`/render/NAME.png`, `/slice/NAME.png`) and a viewer page
//! (`/view/NAME`). URLs name fields given at start-up, never paths. The HTTP
//! stack is axum + tower-http (CORS, gzip); this crate only maps keys to boxes
//! of a field and frames the bytes (ETag, ranges).
//!
//! ```no_run
//! let field = voxfield_serve::open_field("brain".into(), "brain.nii.gz".as_ref(), &Default::default()).unwrap();
//! let server = voxfield_serve::start(vec![field], voxfield_serve::ServeOptions::default()).unwrap();
//! println!("{}", server.url());
//! server.stop();
//! ```

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::Path;
use std::time::Duration;

mod accept;
mod app;
pub mod field;
mod http;
mod open;
mod picture;
pub mod precomputed;
mod viewer;
pub mod zarr;

pub use field::{ServedField, MAX_BOX_VOXELS};
pub use open::{open_field, volume_field, FieldRequest, FieldSource};

use voxfield::{Error, Result};

/// How chunks are encoded in the Zarr view.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Codec {
    Raw,
    /// zstd at this level.
    Zstd(i32),
}

impl std::str::FromStr for Codec {
    type Err = Error;
    fn from_str(s: &str) -> Result<Codec> {
        match s {
            "raw" | "none" => Ok(Codec::Raw),
            "zstd" => Ok(Codec::Zstd(3)),
            _ => match s.strip_prefix("zstd:").map(str::parse::<i32>) {
                Some(Ok(l)) if (1..=19).contains(&l) => Ok(Codec::Zstd(l)),
                _ => Err(Error::invalid(format!(
                    "chunk codec '{s}': expected raw, zstd or zstd:LEVEL (1-19)"
                ))),
            },
        }
    }
}

/// Requests computing at once, at most (each holds a blocking thread).
pub const MAX_WORKERS: usize = 1024;
/// Connections served at once, at most.
pub const MAX_CONNECTIONS: usize = 65_536;
/// The longest request or header timeout.
pub const MAX_WAIT: Duration = Duration::from_secs(86_400);

/// How to serve.
#[derive(Clone, Debug)]
pub struct ServeOptions {
    pub bind: IpAddr,
    /// 0: any free port.
    pub port: u16,
    /// Every URL then starts with `/TOKEN/`. Required off loopback unless
    /// `no_token`.
    pub token: Option<String>,
    /// Serve a non-loopback address without a token (said explicitly).
    pub no_token: bool,
    /// Chunk edge of every level (16 to 256 voxels).
    pub chunk: usize,
    pub codec: Codec,
    /// Serve uint8 fields' precomputed chunks as JPEG at this quality (1-100).
    pub jpeg: Option<u8>,
    /// Bytes of computed chunks kept (coarse levels).
    pub cache_bytes: usize,
    /// Bytes a render lattice may take per field (the finest level that fits
    /// is rendered).
    pub render_bytes: usize,
    /// Requests computing at once (others wait).
    pub workers: usize,
    /// A request still waiting or computing after this gets 503.
    pub timeout: Duration,
    /// A connection that has not sent a whole request head within this is
    /// closed (slow or stalled clients cannot hold connections open).
    pub header_timeout: Duration,
    /// Connections served at once; further ones wait to be accepted.
    pub max_connections: usize,
}

impl Default for ServeOptions {
    fn default() -> Self {
        ServeOptions {
            bind: IpAddr::V4(Ipv4Addr::LOCALHOST),
            port: 8000,
            token: None,
            no_token: false,
            chunk: 64,
            codec: Codec::Raw,
            jpeg: None,
            cache_bytes: 512 << 20,
            render_bytes: 1 << 30,
            workers: 2 * std::thread::available_parallelism().map_or(2, |n| n.get()),
            timeout: Duration::from_secs(60),
            header_timeout: Duration::from_secs(10),
            max_connections: 1024,
        }
    }
}

impl ServeOptions {
    /// Refuses unsafe or impossible settings; makes the token a non-loopback
    /// bind needs.
    pub fn resolve(mut self) -> Result<ServeOptions> {
        if !(16..=256).contains(&self.chunk) {
            return Err(Error::invalid(format!(
                "chunk {}: give 16 to 256 voxels per edge",
                self.chunk
            )));
        }
        if self.jpeg.is_some_and(|q| !(1..=100).contains(&q)) {
            return Err(Error::invalid("jpeg quality: give 1 to 100"));
        }
        if !(1..=MAX_CONNECTIONS).contains(&self.max_connections) {
            return Err(Error::invalid(format!(
                "max connections {}: give 1 to {MAX_CONNECTIONS}",
                self.max_connections
            )));
        }
        for (name, t) in [
            ("timeout", self.timeout),
            ("header timeout", self.header_timeout),
        ] {
            if t.is_zero() || t > MAX_WAIT {
                return Err(Error::invalid(format!(
                    "{name} {t:?}: give more than 0 and at most a day"
                )));
            }
        }
        if !(1..=MAX_WORKERS).contains(&self.workers) {
            return Err(Error::invalid(format!(
                "workers {}: give 1 to {MAX_WORKERS} (each computing request holds a thread)",
                self.workers
            )));
        }
        if let Some(t) = &self.token {
            if t.len() < 8 || !t.chars().all(|c| c.is_ascii_alphanumeric()) {
                return Err(Error::invalid(
                    "a token must be at least 8 letters or digits (it is a URL segment)",
                ));
            }
            if self.no_token {
                return Err(Error::invalid("a token and no-token were both given"));
            }
        }
        if !self.bind.is_loopback() && self.token.is_none() && !self.no_token {
            self.token = Some(random_token());
        }
        Ok(self)
    }
}

/// 32 hex digits from the OS's random source (time and address as a fallback).
pub fn random_token() -> String {
    let mut b = [0u8; 16];
    let ok = std::fs::File::open("/dev/urandom")
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut b))
        .is_ok();
    if !ok {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let mut rng = voxfield::Rng((t as u64) ^ (&b as *const _ as u64));
        for x in b.iter_mut() {
            *x = rng.next_u64() as u8;
        }
    }
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// What a request gets instead of data.
#[derive(Debug)]
pub enum Reply {
    NotFound(String),
    BadRequest(String),
    TooLarge(String),
    Forbidden(String),
    Unavailable(String),
    Internal(String),
}

impl From<Error> for Reply {
    fn from(e: Error) -> Reply {
        match e {
            Error::Invalid(m) => Reply::BadRequest(m),
            other => Reply::Internal(other.to_string()),
        }
    }
}

/// A whole number from a URL (no sign, no leading '+', at most 12 digits).
pub(crate) fn number(s: &str, what: &str) -> std::result::Result<usize, Reply> {
    if s.is_empty() || s.len() > 12 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(Reply::BadRequest(format!(
            "{what} '{s}' is not a whole number"
        )));
    }
    s.parse()
        .map_err(|_| Reply::BadRequest(format!("{what} '{s}' is not a whole number")))
}

/// A running server: its address, and a way to stop it.
pub struct Server {
    addr: SocketAddr,
    token: Option<String>,
    fields: Vec<std::sync::Arc<ServedField>>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Server {
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The fields served, in the order given.
    pub fn fields(&self) -> &[std::sync::Arc<ServedField>] {
        &self.fields
    }

    /// The root URL (with the token segment when there is one), ending in '/'.
    pub fn url(&self) -> String {
        let host = match self.addr.ip() {
            IpAddr::V6(ip) => format!("[{ip}]"),
            ip => ip.to_string(),
        };
        match &self.token {
            Some(t) => format!("http://{host}:{}/{t}/", self.addr.port()),
            None => format!("http://{host}:{}/", self.addr.port()),
        }
    }

    /// Stops accepting, lets requests in flight finish, and joins the server thread.
    pub fn stop(mut self) {
        self.shutdown();
    }

    /// Blocks until the server stops (it stops when `stop` is called elsewhere).
    pub fn wait(mut self) {
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }

    /// A handle that stops the server from another thread (e.g. on Ctrl-C).
    pub fn stopper(&mut self) -> Option<tokio::sync::oneshot::Sender<()>> {
        self.stop.take()
    }

    fn shutdown(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// Binds and starts serving `fields` on a background thread (its own tokio
/// runtime); returns once the socket is bound.
pub fn start(sources: Vec<FieldSource>, opts: ServeOptions) -> Result<Server> {
    let opts = opts.resolve()?;
    let cache = voxfield::ChunkCache::new(opts.cache_bytes);
    let fields = sources
        .into_iter()
        .map(|s| s.serve(opts.chunk, cache.clone()).map(std::sync::Arc::new))
        .collect::<Result<Vec<_>>>()?;
    let mut names = std::collections::HashSet::new();
    for f in &fields {
        if !names.insert(f.name.clone()) {
            return Err(Error::invalid(format!(
                "two fields are named '{}': name them with NAME=SRC",
                f.name
            )));
        }
    }
    if fields.is_empty() {
        return Err(Error::invalid("nothing to serve: give at least one field"));
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .max_blocking_threads(opts.workers.max(1) + 2)
        .enable_all()
        .build()
        .map_err(|e| Error::invalid(format!("starting the server's runtime: {e}")))?;
    let addr = SocketAddr::new(opts.bind, opts.port);
    let listener = rt
        .block_on(tokio::net::TcpListener::bind(addr))
        .map_err(|e| Error::invalid(format!("binding {addr}: {e}")))?;
    let addr = listener
        .local_addr()
        .map_err(|e| Error::invalid(format!("binding {addr}: {e}")))?;
    let token = opts.token.clone();
    let limits = (opts.header_timeout, opts.max_connections);
    let app = app::router(fields.clone(), opts);
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let thread = std::thread::Builder::new()
        .name("voxfield-serve".into())
        .spawn(move || {
            rt.block_on(accept::serve(listener, app, rx, limits));
            rt.shutdown_timeout(Duration::from_secs(5));
        })
        .map_err(|e| Error::invalid(format!("starting the server thread: {e}")))?;
    Ok(Server {
        addr,
        token,
        fields,
        stop: Some(tx),
        thread: Some(thread),
    })
}

/// Whether `name` may name a field in a URL (letters, digits, `.`, `_`, `-`;
/// not starting with `.`).
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 128
        && !name.starts_with('.')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}

/// An error unless `name` is a [`valid_name`].
pub(crate) fn check_name(name: &str) -> Result<()> {
    if valid_name(name) {
        return Ok(());
    }
    Err(Error::invalid(format!(
        "field name '{name}': use letters, digits, '.', '_' or '-' (it is a URL segment)"
    )))
}

/// A field's default name: its file stem without volume extensions.
pub fn default_name(path: &Path) -> String {
    let s = path
        .to_string_lossy()
        .trim_end_matches('/')
        .rsplit('/')
        .next()
        .unwrap_or("field")
        .to_string();
    let mut name = s.as_str();
    for ext in [
        ".gz",
        ".nii",
        ".ome.zarr",
        ".zarr",
        ".npy",
        ".nrrd",
        ".nhdr",
        ".vxn",
        ".vxr",
        ".h5",
        ".hdf5",
        ".raw",
        ".npz",
    ] {
        if let Some(stripped) = name.strip_suffix(ext) {
            name = stripped;
        }
    }
    let clean: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '_' | '-') {
                c
            } else {
                '_'
            }
        })
        .collect();
    if clean.is_empty() {
        "field".into()
    } else {
        clean
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_numbers() {
        assert_eq!(default_name(Path::new("/a/b/brain.nii.gz")), "brain");
        assert_eq!(default_name(Path::new("s3://b/img.ome.zarr/")), "img");
        assert_eq!(default_name(Path::new("x y.npy")), "x_y");
        assert!(valid_name("brain-1.v2"));
        assert!(!valid_name("../x") && !valid_name(".hidden") && !valid_name("a/b"));
        assert!(number("12", "k").is_ok());
        for bad in ["", "-1", "+1", "1e3", "0x10", "9999999999999", "１"] {
            assert!(number(bad, "k").is_err(), "{bad}");
        }
        assert_eq!("zstd:5".parse::<Codec>().unwrap(), Codec::Zstd(5));
        assert!("zstd:50".parse::<Codec>().is_err());
    }

    #[test]
    fn tokens() {
        let o = ServeOptions {
            bind: "0.0.0.0".parse().unwrap(),
            ..Default::default()
        }
        .resolve()
        .unwrap();
        assert_eq!(o.token.as_ref().map(String::len), Some(32));
        let o = ServeOptions::default().resolve().unwrap();
        assert!(o.token.is_none());
        let bad = ServeOptions {
            token: Some("short".into()),
            ..Default::default()
        };
        assert!(bad.resolve().is_err());
    }
}
