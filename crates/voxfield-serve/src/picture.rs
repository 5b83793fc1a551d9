//! Pictures and values for the viewer: server-rendered frames (the render
//! engine over a lattice of the finest level that fits the budget, built once
//! per field), axis slices as PNG, and the value at a voxel.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use serde_json::{json, Value};
use voxfield::render::{
    AxisView, Background, CameraSpec, Colormap, Frame, Lattice, LatticeSource, Mode, Opacity,
    Output, Picture, Request, Scene, Stats, Transfer,
};
use voxfield::{Error, Result, Watch};

use crate::app::App;
use crate::field::ServedField;
use crate::Reply;

/// Pixels of a slice, at most: a finer level's plane past this is read from a
/// coarser level.
const SLICE_PIXELS: usize = 1 << 21;
/// Picture side, at most (a render's pixels are also bounded by the engine).
const MAX_SIDE: usize = 2048;

/// A field's render scene and the level it was built from.
type Built = std::result::Result<Arc<(Scene<'static>, usize)>, String>;

pub(crate) struct Pictures {
    scenes: Vec<OnceLock<Built>>,
    windows: Vec<OnceLock<Option<[f64; 2]>>>,
}

/// The query string as names and values; every name must be one `allowed`.
type Params = HashMap<String, String>;

/// The query string (percent-decoded) as names and values; every name must
/// be one of `allowed`.
fn params(query: &str, allowed: &[&str]) -> Result<Params> {
    let mut out = HashMap::new();
    for (k, v) in form_urlencoded::parse(query.as_bytes()) {
        if !allowed.contains(&k.as_ref()) {
            return Err(Error::invalid(format!(
                "parameter '{k}' does not apply here (expected {})",
                allowed.join(", ")
            )));
        }
        if out.insert(k.to_string(), v.to_string()).is_some() {
            return Err(Error::invalid(format!("parameter '{k}' is given twice")));
        }
    }
    Ok(out)
}

fn num<T: std::str::FromStr>(p: &Params, name: &str) -> Result<Option<T>> {
    p.get(name)
        .map(|v| {
            v.parse()
                .map_err(|_| Error::invalid(format!("{name}={v}: not a number")))
        })
        .transpose()
}

fn pair(p: &Params, name: &str) -> Result<Option<[f64; 2]>> {
    let Some(v) = p.get(name) else {
        return Ok(None);
    };
    let parts: Vec<f64> = v
        .split(',')
        .map(|x| x.parse::<f64>())
        .collect::<std::result::Result<_, _>>()
        .map_err(|_| Error::invalid(format!("{name}={v}: expected two numbers LO,HI")))?;
    match parts.as_slice() {
        [a, b] => Ok(Some([*a, *b])),
        _ => Err(Error::invalid(format!(
            "{name}={v}: expected two numbers LO,HI"
        ))),
    }
}

fn parsed<T: std::str::FromStr<Err = Error>>(p: &Params, name: &str) -> Result<Option<T>> {
    p.get(name).map(|v| v.parse()).transpose()
}

/// A PNG of one frame, fast-compressed (fdeflate): a viewer waits on it.
fn png(picture: &Picture, frame: &Frame) -> Result<Vec<u8>> {
    let (color, pixels) = picture.pixels(frame);
    let side = |n: usize| u32::try_from(n).map_err(|_| Error::invalid("picture too large"));
    let mut out = Vec::new();
    let mut enc = png::Encoder::new(&mut out, side(frame.width)?, side(frame.height)?);
    enc.set_color(color);
    enc.set_depth(png::BitDepth::Eight);
    enc.set_compression(png::Compression::Fast);
    let io = |e: png::EncodingError| Error::invalid(format!("PNG encoding: {e}"));
    let mut writer = enc.write_header().map_err(io)?;
    writer.write_image_data(&pixels).map_err(io)?;
    writer.finish().map_err(io)?;
    Ok(out)
}

/// A level of a field as a lattice source (chunk-aligned boxes).
struct LevelLattice<'a>(&'a ServedField, usize);

impl LatticeSource for LevelLattice<'_> {
    fn shape(&self) -> [usize; 3] {
        self.0.levels[self.1].shape
    }
    fn block(&self) -> [usize; 3] {
        self.0.chunk
    }
    fn read(&self, start: [usize; 3], size: [usize; 3], out: &mut [f32]) -> Result<()> {
        let v = self.0.read_values(self.1, start, size)?;
        for (o, v) in out.iter_mut().zip(v) {
            *o = v as f32;
        }
        Ok(())
    }
}

impl Pictures {
    pub fn new(fields: &[Arc<ServedField>]) -> Pictures {
        Pictures {
            scenes: fields.iter().map(|_| OnceLock::new()).collect(),
            windows: fields.iter().map(|_| OnceLock::new()).collect(),
        }
    }

    /// The default window of slices: the 0.5th to 99.5th percentile of the
    /// coarsest level's finite values (one chunk; outliers do not wash out
    /// the picture).
    pub fn window(&self, app: &App, index: usize) -> Option<[f64; 2]> {
        *self.windows[index].get_or_init(|| {
            let f = &app.fields[index];
            let last = f.levels.len() - 1;
            let v = f.read_values(last, [0; 3], f.levels[last].shape).ok()?;
            let mut v: Vec<f64> = v.into_iter().filter(|x| x.is_finite()).collect();
            if v.is_empty() {
                return None;
            }
            v.sort_unstable_by(f64::total_cmp);
            let at = |q: f64| v[((v.len() - 1) as f64 * q).round() as usize];
            let (lo, hi) = (at(0.005), at(0.995));
            let (lo, hi) = if lo < hi {
                (lo, hi)
            } else {
                (v[0], v[v.len() - 1])
            };
            Some(if lo < hi {
                [lo, hi]
            } else {
                [lo - 0.5, hi + 0.5]
            })
        })
    }

    /// The scene renders use: the finest level whose lattice fits the budget.
    fn scene(
        &self,
        app: &App,
        index: usize,
    ) -> std::result::Result<Arc<(Scene<'static>, usize)>, Reply> {
        let built = self.scenes[index].get_or_init(|| {
            let f = &app.fields[index];
            let level = (0..f.levels.len())
                .find(|&l| {
                    Lattice::bytes_for(f.levels[l].shape)
                        .is_some_and(|b| b <= app.opts.render_bytes)
                })
                .ok_or_else(|| format!("{}: no level fits the render budget", f.name))?;
            let lattice = Lattice::load(
                &LevelLattice(f, level),
                app.opts.render_bytes,
                &Watch::none(),
            )
            .map_err(|e| e.to_string())?;
            Ok(Arc::new((Scene::new(lattice, None), level)))
        });
        built.clone().map_err(Reply::Internal)
    }

    /// `/render/NAME.png?mode=&azimuth=&elevation=&zoom=&size=&window=&colormap=&opacity=&iso=&step=&shading=&view=&background=`
    pub fn render(
        &self,
        app: &App,
        index: usize,
        query: &str,
    ) -> std::result::Result<Vec<u8>, Reply> {
        let p = params(
            query,
            &[
                "mode",
                "azimuth",
                "elevation",
                "roll",
                "zoom",
                "size",
                "window",
                "colormap",
                "opacity",
                "iso",
                "step",
                "shading",
                "view",
                "background",
            ],
        )?;
        let req = render_request(&p)?;
        let built = self.scene(app, index)?;
        let rendered = req.render(&built.0, &Watch::none())?;
        Ok(png(&req.picture(&rendered.transfer), &rendered.frames[0])?)
    }

    /// `/slice/NAME.png?axis=&index=&level=&window=&colormap=`: the plane
    /// `index` (level-0 voxels) across `axis`, from `level` (default: the
    /// finest whose plane has at most 2^21 pixels); or an oblique plane with
    /// `origin=&u=&v=&size=` (level-0 indices; volumes interpolated linearly,
    /// models evaluated).
    pub fn slice(
        &self,
        app: &App,
        index: usize,
        query: &str,
    ) -> std::result::Result<Vec<u8>, Reply> {
        let p = params(
            query,
            &[
                "axis", "index", "level", "window", "colormap", "origin", "u", "v", "size",
            ],
        )?;
        let f = &app.fields[index];
        let window = match pair(&p, "window")? {
            Some(w) => w,
            None => self.window(app, index).unwrap_or([0.0, 1.0]),
        };
        let cmap = parsed::<Colormap>(&p, "colormap")?.unwrap_or(Colormap::Gray);
        let frame = if p.contains_key("origin") {
            oblique(f, &p)?
        } else {
            self.axis_slice(f, &p)?
        };
        let transfer = Transfer::new(window, cmap, Opacity::default(), 1.0)?;
        let picture = Picture {
            transfer: &transfer,
            background: Some([0.0; 3]),
        };
        Ok(png(&picture, &frame)?)
    }

    /// The plane `index` across `axis` as a frame (see [`Pictures::slice`]).
    fn axis_slice(&self, f: &ServedField, p: &Params) -> std::result::Result<Frame, Reply> {
        if let Some(k) = ["u", "v", "size"].iter().find(|k| p.contains_key(**k)) {
            return Err(Reply::BadRequest(format!(
                "parameter '{k}' is for an oblique plane: give origin, u, v and size"
            )));
        }
        let axis: usize = num(p, "axis")?.unwrap_or(0);
        if axis > 2 {
            return Err(Reply::BadRequest(format!("axis={axis}: give 0, 1 or 2")));
        }
        let plane = |l: usize| {
            let s = f.levels[l].shape;
            (0..3)
                .filter(|&a| a != axis)
                .fold(1usize, |p, a| p.saturating_mul(s[a]))
        };
        let level = match num::<usize>(p, "level")? {
            Some(l) if l < f.levels.len() => l,
            Some(l) => {
                return Err(Reply::NotFound(format!(
                    "{}: no level {l} (it has {})",
                    f.name,
                    f.levels.len()
                )))
            }
            None => (0..f.levels.len())
                .find(|&l| plane(l) <= SLICE_PIXELS)
                .unwrap_or(f.levels.len() - 1),
        };
        if plane(level) > 1 << 26 {
            return Err(Reply::TooLarge(format!(
                "{}: a plane of level {level} has {} pixels; ask a coarser level",
                f.name,
                plane(level)
            )));
        }
        let l = &f.levels[level];
        let n0 = f.levels[0].shape[axis];
        let i0: usize = num(p, "index")?.unwrap_or(n0 / 2);
        if i0 >= n0 {
            return Err(Reply::NotFound(format!(
                "{}: index {i0} is past axis {axis} ({n0} voxels)",
                f.name
            )));
        }
        let i = (i0 / l.factor[axis]).min(l.shape[axis] - 1);
        let mut start = [0; 3];
        let mut size = l.shape;
        start[axis] = i;
        size[axis] = 1;
        let values = f.read_values(level, start, size)?;
        let others: Vec<usize> = (0..3).filter(|&a| a != axis).collect();
        Ok(Frame {
            width: l.shape[others[1]],
            height: l.shape[others[0]],
            channels: 1,
            pixels: values.iter().map(|&v| v as f32).collect(),
            stats: Stats::default(),
            seconds: 0.0,
        })
    }

    /// `/value/NAME?index=I,J,K`: the level-0 value there (null for NaN).
    pub fn value(&self, app: &App, index: usize, query: &str) -> std::result::Result<Value, Reply> {
        let p = params(query, &["index"])?;
        let f = &app.fields[index];
        let raw = p
            .get("index")
            .ok_or_else(|| Reply::BadRequest("give index=I,J,K".into()))?;
        let idx: Vec<usize> = raw
            .split(',')
            .map(|s| crate::number(s, "index"))
            .collect::<std::result::Result<_, _>>()?;
        let shape = f.levels[0].shape;
        if idx.len() != 3 || (0..3).any(|a| idx[a] >= shape[a]) {
            return Err(Reply::NotFound(format!(
                "{}: index {raw} is not a voxel of shape {shape:?}",
                f.name
            )));
        }
        let v = f.read_values(0, [idx[0], idx[1], idx[2]], [1; 3])?[0];
        Ok(json!({"index": idx, "value": if v.is_finite() { json!(v) } else { Value::Null }}))
    }
}

/// `origin=I,J,K&u=..&v=..&size=NUxNV`: the oblique plane through level 0
/// (pixel (j, i) at origin + i·u + j·v; black where it leaves the field).
fn oblique(f: &ServedField, p: &Params) -> std::result::Result<Frame, Reply> {
    if let Some(k) = ["axis", "index", "level"]
        .iter()
        .find(|k| p.contains_key(**k))
    {
        return Err(Reply::BadRequest(format!(
            "parameter '{k}' is for an axis slice, not an oblique plane (origin, u, v, size)"
        )));
    }
    let triple = |name: &str| -> std::result::Result<[f64; 3], Reply> {
        let raw = p
            .get(name)
            .ok_or_else(|| Reply::BadRequest(format!("an oblique plane needs {name}=X,Y,Z")))?;
        let v: Vec<f64> = raw
            .split(',')
            .map(|x| x.trim().parse::<f64>())
            .collect::<std::result::Result<_, _>>()
            .map_err(|_| Reply::BadRequest(format!("{name}={raw}: expected three numbers")))?;
        match v.as_slice() {
            [a, b, c] => Ok([*a, *b, *c]),
            _ => Err(Reply::BadRequest(format!(
                "{name}={raw}: expected three numbers"
            ))),
        }
    };
    let (origin, u, v) = (triple("origin")?, triple("u")?, triple("v")?);
    let [nu, nv] = picture_size(p.get("size").map(String::as_str))?;
    let plane = voxfield::Plane::new(origin, u, v, nu, nv)?;
    let mut pixels = vec![0f32; nu * nv];
    f.sample_plane(&plane, &mut pixels)?;
    Ok(Frame {
        width: nu,
        height: nv,
        channels: 1,
        pixels,
        stats: Stats::default(),
        seconds: 0.0,
    })
}

/// `N` or `WxH` (each 1 to [`MAX_SIDE`]); 512² when absent.
fn picture_size(s: Option<&str>) -> Result<[usize; 2]> {
    let size = match s {
        None => [512, 512],
        Some(s) => {
            let v: Vec<usize> = s
                .split(['x', ','])
                .map(|x| x.parse::<usize>())
                .collect::<std::result::Result<_, _>>()
                .map_err(|_| Error::invalid(format!("size={s}: expected N or WxH")))?;
            match v.as_slice() {
                [n] => [*n, *n],
                [w, h] => [*w, *h],
                _ => return Err(Error::invalid(format!("size={s}: expected N or WxH"))),
            }
        }
    };
    if size.iter().any(|&n| n == 0 || n > MAX_SIDE) {
        return Err(Error::invalid(format!(
            "size {}x{}: each side 1 to {MAX_SIDE} pixels",
            size[0], size[1]
        )));
    }
    Ok(size)
}

/// A render request from query parameters (the engine checks what applies).
fn render_request(p: &Params) -> Result<Request> {
    let mode = Mode::parse(p.get("mode").map_or("dvr", String::as_str), num(p, "iso")?)?;
    let size = picture_size(p.get("size").map(String::as_str))?;
    let mut camera = CameraSpec {
        size: Some(size),
        ..CameraSpec::default()
    };
    if let Some(v) = parsed::<AxisView>(p, "view")? {
        camera.view = v;
    }
    camera.azimuth = num(p, "azimuth")?.unwrap_or(0.0);
    camera.elevation = num(p, "elevation")?.unwrap_or(0.0);
    camera.roll = num(p, "roll")?.unwrap_or(0.0);
    camera.zoom = num(p, "zoom")?.unwrap_or(1.0);
    if !(camera.zoom > 0.0 && camera.zoom <= 64.0) {
        return Err(Error::invalid(format!(
            "zoom={}: give a number above 0, at most 64",
            camera.zoom
        )));
    }
    let shading = match p.get("shading").map(String::as_str) {
        None | Some("0") | Some("false") => false,
        Some("1") | Some("true") => true,
        Some(o) => return Err(Error::invalid(format!("shading={o}: give 0 or 1"))),
    };
    Ok(Request {
        mode,
        camera,
        window: pair(p, "window")?,
        colormap: parsed(p, "colormap")?,
        opacity: parsed::<Opacity>(p, "opacity")?,
        step: num(p, "step")?.unwrap_or(1.0),
        shading,
        frames: 1,
        background: parsed::<Background>(p, "background")?,
        output: Output::Picture,
    })
}
