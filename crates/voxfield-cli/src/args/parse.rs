//! Value parsers for flags: numbers, lists, shapes, dtypes, methods, affines.

use voxfield::{Affine, DType, Endian, IndexRequest};
use voxfield::{Method, Mode};

pub fn parse_f64(s: &str) -> Result<f64, String> {
    s.trim()
        .parse::<f64>()
        .map_err(|_| format!("'{s}' is not a number"))
}

pub(crate) fn parse_list<const N: usize>(s: &str) -> Result<[f64; N], String> {
    let v: Vec<f64> = s.split(',').map(parse_f64).collect::<Result<_, _>>()?;
    v.try_into()
        .map_err(|v: Vec<f64>| format!("expected {N} comma-separated numbers, got {}", v.len()))
}

/// A position or step of 1 to 3 finite coordinates.
#[derive(Clone, Debug, PartialEq)]
pub struct Vec3OrLess(pub Vec<f64>);

pub(crate) fn parse_vec(s: &str) -> Result<Vec3OrLess, String> {
    let v: Vec<f64> = s.split(',').map(parse_f64).collect::<Result<_, _>>()?;
    if !(1..=3).contains(&v.len()) {
        return Err(format!(
            "expected 2 or 3 comma-separated numbers, got {}",
            v.len()
        ));
    }
    if v.iter().any(|x| !x.is_finite()) {
        return Err(format!("'{s}' has a non-finite component"));
    }
    Ok(Vec3OrLess(v))
}

pub(crate) fn parse_index(s: &str) -> Result<IndexRequest, String> {
    IndexRequest::parse(s).map_err(|e| e.to_string())
}

pub(crate) fn parse_window(s: &str) -> Result<[f64; 2], String> {
    let w = parse_list::<2>(s)?;
    if !(w[0].is_finite() && w[1].is_finite() && w[0] < w[1]) {
        return Err(format!(
            "window '{s}' must be two finite numbers LO,HI with LO < HI"
        ));
    }
    Ok(w)
}

pub(crate) fn parse_counts<const N: usize>(s: &str) -> Result<[usize; N], String> {
    let v: Vec<usize> = s
        .split(',')
        .map(|t| match t.trim().parse::<i64>() {
            Ok(n) if n > 0 => Ok(n as usize),
            Ok(n) => Err(format!("'{n}' must be positive")),
            Err(_) => Err(format!("'{t}' is not a whole number")),
        })
        .collect::<Result<_, _>>()?;
    v.try_into()
        .map_err(|v: Vec<usize>| format!("expected {N} comma-separated counts, got {}", v.len()))
}

pub(crate) fn parse_loss(s: &str) -> Result<voxfield::neural::Loss, String> {
    s.parse().map_err(|e: voxfield::Error| e.to_string())
}
pub(crate) fn parse_shape(s: &str) -> Result<[usize; 3], String> {
    parse_counts::<3>(s)
}
pub(crate) fn parse_size2(s: &str) -> Result<[usize; 2], String> {
    parse_counts::<2>(s)
}
pub(crate) fn parse_dtype(s: &str) -> Result<DType, String> {
    s.parse().map_err(|e: voxfield::Error| e.to_string())
}
pub(crate) fn parse_endian(s: &str) -> Result<Endian, String> {
    s.parse().map_err(|e: voxfield::Error| e.to_string())
}
pub(crate) fn parse_method(s: &str) -> Result<Method, String> {
    s.parse().map_err(|e: voxfield::Error| e.to_string())
}
pub(crate) fn parse_mode(s: &str) -> Result<Mode, String> {
    s.parse().map_err(|e: voxfield::Error| e.to_string())
}
pub(crate) fn parse_affine(s: &str) -> Result<Affine, String> {
    Affine::parse(s).map_err(|e| e.to_string())
}
