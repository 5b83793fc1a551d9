//! OME-NGFF multiscales metadata (0.4 in `.zattrs`, 0.5 under `attributes.ome`):
//! levels and their `coordinateTransformations` as index→world affines.

use serde_json::Value;
use voxfield_core::Affine;

use crate::ZarrOptions;

pub(crate) struct Level {
    pub path: String,
    pub affine: Affine,
}

impl Level {
    /// Voxel spacing along each axis (world units).
    pub fn spacing(&self) -> [f64; 3] {
        [0, 1, 2].map(|a| self.affine.linear[a][a].abs())
    }
}

/// (scale, translation) of a list of transformations, applied in order.
fn transforms(v: Option<&Value>) -> Result<([f64; 3], [f64; 3]), String> {
    let mut scale = [1.0; 3];
    let mut trans = [0.0; 3];
    for t in v
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
    {
        let vec3 = |key: &str| -> Result<[f64; 3], String> {
            let a: Vec<f64> = t[key]
                .as_array()
                .ok_or(format!("'{key}' transformation without values"))?
                .iter()
                .filter_map(Value::as_f64)
                .collect();
            a.try_into().map_err(|a: Vec<f64>| {
                format!(
                    "'{key}' has {} values; only 3-D (z, y, x) images are supported",
                    a.len()
                )
            })
        };
        match t["type"].as_str() {
            Some("scale") => {
                let s = vec3("scale")?;
                for a in 0..3 {
                    scale[a] *= s[a];
                    trans[a] *= s[a];
                }
            }
            Some("translation") => {
                let d = vec3("translation")?;
                for a in 0..3 {
                    trans[a] += d[a];
                }
            }
            Some("identity") => {}
            other => return Err(format!("unsupported coordinate transformation {other:?}")),
        }
    }
    Ok((scale, trans))
}

/// The levels of the first multiscale image in `attrs`, if it is an OME-Zarr image.
pub(crate) fn multiscales(attrs: &Value) -> Result<Option<Vec<Level>>, String> {
    let ms = attrs
        .get("multiscales")
        .or_else(|| attrs.get("ome").and_then(|o| o.get("multiscales")));
    let Some(first) = ms.and_then(Value::as_array).and_then(|a| a.first()) else {
        return Ok(None);
    };
    if let Some(axes) = first.get("axes").and_then(Value::as_array) {
        if axes.len() != 3 {
            return Err(format!(
                "OME-Zarr image has {} axes; only 3-D (z, y, x) images are supported",
                axes.len()
            ));
        }
    }
    let (gs, gt) = transforms(first.get("coordinateTransformations"))?;
    let datasets = first["datasets"]
        .as_array()
        .ok_or("multiscales entry without 'datasets'")?;
    let mut levels = vec![];
    for d in datasets {
        let path = d["path"]
            .as_str()
            .ok_or("multiscales dataset without 'path'")?
            .to_string();
        let (s, t) = transforms(d.get("coordinateTransformations"))?;
        let scale = [0, 1, 2].map(|a| s[a] * gs[a]);
        let trans = [0, 1, 2].map(|a| t[a] * gs[a] + gt[a]);
        let mut rows = [[0.0; 4]; 4];
        for a in 0..3 {
            rows[a][a] = scale[a];
            rows[a][3] = trans[a];
        }
        rows[3][3] = 1.0;
        let affine = Affine::from_rows(rows).map_err(|e| format!("level '{path}': {e}"))?;
        levels.push(Level { path, affine });
    }
    if levels.is_empty() {
        return Err("multiscales entry has no datasets".into());
    }
    Ok(Some(levels))
}

pub(crate) fn choose(levels: &[Level], opts: ZarrOptions) -> Result<(usize, &Level), String> {
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
                l.spacing().iter().cloned().fold(f64::INFINITY, f64::min) <= s * (1.0 + 1e-9)
            };
            levels.iter().rposition(fine).unwrap_or(0)
        }
    };
    Ok((i, &levels[i]))
}
