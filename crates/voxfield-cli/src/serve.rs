//! `voxfield serve`: opens every field, prints the URLs, serves until Ctrl-C.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use voxfield_serve::{FieldRequest, ServeOptions};

use crate::args::ServeArgs;

pub(crate) fn serve(args: &ServeArgs) -> Result<()> {
    let opts = options(args)?;
    let mut named: Vec<(String, PathBuf)> = args
        .sources
        .iter()
        .map(|p| (voxfield_serve::default_name(p), p.clone()))
        .collect();
    for n in &args.named {
        let Some((name, src)) = n.split_once('=') else {
            bail!("--name {n}: expected NAME=SRC");
        };
        named.push((name.to_string(), PathBuf::from(src)));
    }
    if named.is_empty() {
        bail!("nothing to serve: give one or more fields (paths, URLs, or --name NAME=SRC)");
    }
    let mut sources = Vec::new();
    for (name, path) in &named {
        let req = request(args, path)?;
        let src = voxfield_serve::open_field(name.clone(), path, &req)
            .with_context(|| format!("opening {} as field '{name}'", path.display()))?;
        for note in src.notes() {
            eprintln!("voxfield: note: {note}");
        }
        sources.push(src);
    }
    crate::work::catch_interrupts();
    let server = voxfield_serve::start(sources, opts)?;
    let url = server.url();
    println!("serving {url}");
    for f in server.fields() {
        println!(
            "  {}: {} {} {:?}, {} level(s): {url}view/{} | {url}zarr/{}.ome.zarr/ | {}",
            f.name,
            f.kind,
            f.dtype,
            f.levels[0].shape,
            f.levels.len(),
            f.name,
            f.name,
            match voxfield_serve::precomputed::data_type(f.dtype) {
                Some(_) => format!("precomputed://{url}precomputed/{}", f.name),
                None => format!("no precomputed view ({})", f.dtype),
            }
        );
        for note in &f.notes {
            println!("    {note}");
        }
    }
    use std::io::Write;
    std::io::stdout().flush().ok();
    while !crate::work::interrupted() {
        std::thread::sleep(Duration::from_millis(100));
    }
    server.stop();
    eprintln!("voxfield: stopped serving");
    Ok(())
}

fn options(args: &ServeArgs) -> Result<ServeOptions> {
    let bind = args
        .bind
        .parse()
        .with_context(|| format!("--bind {}: not an IP address", args.bind))?;
    let token = match args.token.as_deref() {
        None => None,
        Some("") => Some(voxfield_serve::random_token()),
        Some(t) => Some(t.to_string()),
    };
    let mut o = ServeOptions {
        bind,
        port: args.port,
        token,
        no_token: args.no_token,
        chunk: args.chunk,
        codec: args.codec.parse()?,
        jpeg: args.jpeg,
        cache_bytes: args.cache_mb.saturating_mul(1 << 20),
        render_bytes: args.render_mb.saturating_mul(1 << 20),
        timeout: Duration::from_secs(args.timeout),
        ..ServeOptions::default()
    };
    if let Some(w) = args.workers {
        o.workers = w;
    }
    Ok(o)
}

/// How to open `path`: `--shape` is an RBF model's grid (for volumes, with
/// --raw-dtype, a raw file's shape).
fn request(args: &ServeArgs, path: &Path) -> Result<FieldRequest> {
    let rbf = voxfield::is_rbf_model(path);
    let mut raw = args.raw.clone();
    let shape = if rbf { raw.shape.take() } else { None };
    Ok(FieldRequest {
        open: raw.open_options()?,
        shape,
    })
}
