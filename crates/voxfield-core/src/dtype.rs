use std::fmt;
use std::str::FromStr;

use crate::{Error, Result};

/// Element types a volume may store. The volume is never cast: samplers read
/// these in place and convert one voxel at a time.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DType {
    Bool,
    U8,
    I8,
    U16,
    I16,
    U32,
    I32,
    U64,
    I64,
    F32,
    F64,
}

/// Byte order of multi-byte elements on disk.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Endian {
    Little,
    Big,
}

impl Endian {
    pub const NATIVE: Endian = if cfg!(target_endian = "little") {
        Endian::Little
    } else {
        Endian::Big
    };
}

impl DType {
    pub const ALL: [DType; 11] = [
        DType::Bool,
        DType::U8,
        DType::I8,
        DType::U16,
        DType::I16,
        DType::U32,
        DType::I32,
        DType::U64,
        DType::I64,
        DType::F32,
        DType::F64,
    ];

    pub fn size(self) -> usize {
        match self {
            DType::Bool | DType::U8 | DType::I8 => 1,
            DType::U16 | DType::I16 => 2,
            DType::U32 | DType::I32 | DType::F32 => 4,
            DType::U64 | DType::I64 | DType::F64 => 8,
        }
    }

    pub fn is_float(self) -> bool {
        matches!(self, DType::F32 | DType::F64)
    }

    /// numpy's short name (`u8` here is numpy's `uint8`).
    pub fn name(self) -> &'static str {
        match self {
            DType::Bool => "bool",
            DType::U8 => "uint8",
            DType::I8 => "int8",
            DType::U16 => "uint16",
            DType::I16 => "int16",
            DType::U32 => "uint32",
            DType::I32 => "int32",
            DType::U64 => "uint64",
            DType::I64 => "int64",
            DType::F32 => "float32",
            DType::F64 => "float64",
        }
    }

    /// The representable range of an integer type (None for floats and bool).
    pub fn int_range(self) -> Option<(f64, f64)> {
        Some(match self {
            DType::U8 => (0.0, u8::MAX as f64),
            DType::I8 => (i8::MIN as f64, i8::MAX as f64),
            DType::U16 => (0.0, u16::MAX as f64),
            DType::I16 => (i16::MIN as f64, i16::MAX as f64),
            DType::U32 => (0.0, u32::MAX as f64),
            DType::I32 => (i32::MIN as f64, i32::MAX as f64),
            DType::U64 => (0.0, u64::MAX as f64),
            DType::I64 => (i64::MIN as f64, i64::MAX as f64),
            DType::Bool => (0.0, 1.0),
            DType::F32 | DType::F64 => return None,
        })
    }
}

impl fmt::Display for DType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for DType {
    type Err = Error;
    /// Accepts numpy names (`uint8`, `float32`), short forms (`u8`, `f32`) and `bool`.
    fn from_str(s: &str) -> Result<Self> {
        let d = match s.to_ascii_lowercase().as_str() {
            "bool" | "b1" => DType::Bool,
            "u8" | "uint8" | "u1" => DType::U8,
            "i8" | "int8" | "i1" => DType::I8,
            "u16" | "uint16" | "u2" => DType::U16,
            "i16" | "int16" | "i2" => DType::I16,
            "u32" | "uint32" | "u4" => DType::U32,
            "i32" | "int32" | "i4" => DType::I32,
            "u64" | "uint64" | "u8b" => DType::U64,
            "i64" | "int64" | "i8b" => DType::I64,
            "f32" | "float32" | "f4" | "float" => DType::F32,
            "f64" | "float64" | "f8" | "double" => DType::F64,
            other => {
                return Err(Error::invalid(format!(
                    "unknown dtype '{other}' (expected one of bool, u8, i8, u16, i16, u32, i32, u64, i64, f32, f64)"
                )))
            }
        };
        Ok(d)
    }
}

impl FromStr for Endian {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s.to_ascii_lowercase().as_str() {
            "little" | "le" | "<" => Ok(Endian::Little),
            "big" | "be" | ">" => Ok(Endian::Big),
            "native" | "=" => Ok(Endian::NATIVE),
            other => Err(Error::invalid(format!(
                "unknown endianness '{other}' (expected little or big)"
            ))),
        }
    }
}
