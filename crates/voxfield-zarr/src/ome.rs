//! OME-NGFF multiscales metadata (0.4 in `.zattrs`, 0.5 under `attributes.ome`):
//! the axes (names, types, units), the levels and their `coordinateTransformations`,
//! turned into index→world affines of the selected 3-D view.

use serde_json::Value;
use voxfield_core::{Affine, Axes, Axis, AxisKind};

use crate::ZarrOptions;

pub(crate) struct Level {
    pub path: String,
    /// Per array axis: world = scale · index + translation.
    pub scale: Vec<f64>,
    pub trans: Vec<f64>,
}

impl Level {
    /// Voxel spacing along each spatial axis of `axes` (world units).
    pub fn spacing(&self, axes: &Axes) -> Vec<f64> {
        axes.spatial.iter().map(|&a| self.scale[a].abs()).collect()
    }

    /// The index→world affine of the 3-D view `axes` selects (padded axes: identity).
    pub fn affine(&self, axes: &Axes) -> Result<Affine, String> {
        let mut rows = [[0.0; 4]; 4];
        for (v, a) in axes.view_axes().iter().enumerate() {
            match a {
                Some(a) => {
                    rows[v][v] = self.scale[*a];
                    rows[v][3] = self.trans[*a];
                }
                None => rows[v][v] = 1.0,
            }
        }
        rows[3][3] = 1.0;
        Affine::from_rows(rows).map_err(|e| format!("level '{}': {e}", self.path))
    }
}

/// (scale, translation) of a list of `n`-axis transformations, applied in order.
fn transforms(v: Option<&Value>, n: usize) -> Result<(Vec<f64>, Vec<f64>), String> {
    let mut scale = vec![1.0; n];
    let mut trans = vec![0.0; n];
    for t in v
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
    {
        let values = |key: &str| -> Result<Vec<f64>, String> {
            let a = t[key]
                .as_array()
                .ok_or(format!("'{key}' transformation without a list of values"))?;
            let v: Vec<f64> = a
                .iter()
                .map(|x| {
                    x.as_f64()
                        .filter(|f| f.is_finite())
                        .ok_or(format!("'{key}' has a non-numeric entry {x}"))
                })
                .collect::<Result<_, _>>()?;
            if v.len() != n {
                return Err(format!(
                    "'{key}' has {} values for an image of {n} axes",
                    v.len()
                ));
            }
            Ok(v)
        };
        match t["type"].as_str() {
            Some("scale") => {
                let s = values("scale")?;
                if let Some(z) = s.iter().position(|&x| x == 0.0) {
                    return Err(format!("'scale' is 0 on axis {z}"));
                }
                for a in 0..n {
                    scale[a] *= s[a];
                    trans[a] *= s[a];
                }
            }
            Some("translation") => {
                let d = values("translation")?;
                for a in 0..n {
                    trans[a] += d[a];
                }
            }
            Some("identity") => {}
            other => {
                return Err(format!(
                    "coordinate transformation {other:?} is not supported (scale, translation and identity are)"
                ))
            }
        }
    }
    Ok((scale, trans))
}

/// An OME-Zarr image: its axes (lengths unknown until a level is opened) and levels.
pub(crate) struct Image {
    pub axes: Option<Vec<Axis>>,
    pub levels: Vec<Level>,
}

fn axis_of(v: &Value, i: usize) -> Result<Axis, String> {
    // NGFF 0.3 lists axes as bare names.
    let (name, kind, unit) = match v {
        Value::String(s) => (s.clone(), None, None),
        Value::Object(_) => (
            v["name"]
                .as_str()
                .ok_or(format!("axis {i} has no 'name'"))?
                .to_string(),
            v["type"].as_str().map(str::to_string),
            v["unit"].as_str().map(str::to_string),
        ),
        _ => return Err(format!("axis {i} is neither a name nor an object")),
    };
    let kind = match kind.as_deref() {
        Some("space") => AxisKind::Space,
        Some("time") => AxisKind::Time,
        Some("channel") => AxisKind::Channel,
        Some(_) => AxisKind::Other,
        None => match name.as_str() {
            "x" | "y" | "z" => AxisKind::Space,
            "t" => AxisKind::Time,
            "c" => AxisKind::Channel,
            _ => AxisKind::Other,
        },
    };
    Ok(Axis {
        name,
        kind,
        unit,
        len: 0,
    })
}

/// The first multiscale image in `attrs`, if it is an OME-Zarr image; `ndim` is
/// the rank of level 0, needed when the metadata lists no axes.
pub(crate) fn multiscales(
    attrs: &Value,
    ndim: impl FnOnce(&str) -> Option<usize>,
) -> Result<Option<Image>, String> {
    let ms = attrs
        .get("multiscales")
        .or_else(|| attrs.get("ome").and_then(|o| o.get("multiscales")));
    let Some(first) = ms.and_then(Value::as_array).and_then(|a| a.first()) else {
        return Ok(None);
    };
    let datasets = first["datasets"]
        .as_array()
        .ok_or("multiscales entry without 'datasets'")?;
    let paths: Vec<String> = datasets
        .iter()
        .map(|d| {
            d["path"]
                .as_str()
                .map(str::to_string)
                .ok_or("multiscales dataset without 'path'".to_string())
        })
        .collect::<Result<_, _>>()?;
    if paths.is_empty() {
        return Err("multiscales entry has no datasets".into());
    }
    let axes = match first.get("axes").and_then(Value::as_array) {
        Some(a) => Some(
            a.iter()
                .enumerate()
                .map(|(i, v)| axis_of(v, i))
                .collect::<Result<Vec<_>, _>>()?,
        ),
        None => None,
    };
    let n = match &axes {
        Some(a) => a.len(),
        None => ndim(&paths[0]).ok_or("cannot read the rank of level 0")?,
    };
    let (gs, gt) = transforms(first.get("coordinateTransformations"), n)?;
    let mut levels = vec![];
    for (d, path) in datasets.iter().zip(paths) {
        let (s, t) = transforms(d.get("coordinateTransformations"), n)
            .map_err(|m| format!("level '{path}': {m}"))?;
        let scale = (0..n).map(|a| s[a] * gs[a]).collect();
        let trans = (0..n).map(|a| t[a] * gs[a] + gt[a]).collect();
        levels.push(Level { path, scale, trans });
    }
    Ok(Some(Image { axes, levels }))
}

pub(crate) fn choose<'a>(
    levels: &'a [Level],
    axes: &Axes,
    opts: ZarrOptions,
) -> Result<(usize, &'a Level), String> {
    let i = match opts {
        ZarrOptions::FullResolution => 0,
        ZarrOptions::Level(i) if i < levels.len() => i,
        ZarrOptions::Level(i) => {
            return Err(format!(
                "level {i} requested, the image has levels 0..{}",
                levels.len() - 1
            ))
        }
        ZarrOptions::Spacing(s) => {
            let fine = |l: &Level| {
                l.spacing(axes)
                    .iter()
                    .cloned()
                    .fold(f64::INFINITY, f64::min)
                    <= s * (1.0 + 1e-9)
            };
            levels.iter().rposition(fine).unwrap_or(0)
        }
    };
    Ok((i, &levels[i]))
}
