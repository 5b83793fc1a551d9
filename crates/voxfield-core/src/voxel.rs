//! Typed, endian-aware voxel loads. Samplers are monomorphised over `Voxel` so the
//! hot loop has no dtype branch; `with_voxel!` picks the instantiation once per call.

use std::marker::PhantomData;

use crate::{DType, Endian};

/// A stored element type with a fixed byte order.
pub trait Voxel: Copy + Send + Sync + 'static {
    const SIZE: usize;
    /// Reads one element at `ptr` (no alignment needed).
    ///
    /// # Safety
    /// `ptr` must point to `SIZE` readable bytes.
    unsafe fn load(ptr: *const u8) -> f64;
}

/// Marker for element `T` stored in byte order `BIG`.
#[derive(Clone, Copy)]
pub struct Elem<T, const BIG: bool>(PhantomData<T>);

macro_rules! impl_voxel {
    ($($t:ty),*) => {$(
        impl<const BIG: bool> Voxel for Elem<$t, BIG> {
            const SIZE: usize = std::mem::size_of::<$t>();
            #[inline(always)]
            unsafe fn load(ptr: *const u8) -> f64 {
                // SAFETY: the caller guarantees SIZE readable bytes at ptr.
                let raw = unsafe { std::ptr::read_unaligned(ptr as *const [u8; std::mem::size_of::<$t>()]) };
                (if BIG { <$t>::from_be_bytes(raw) } else { <$t>::from_le_bytes(raw) }) as f64
            }
        }
    )*};
}
impl_voxel!(u8, i8, u16, i16, u32, i32, u64, i64, f32, f64);

/// numpy bool: any non-zero byte is true.
#[derive(Clone, Copy)]
pub struct BoolElem;
impl Voxel for BoolElem {
    const SIZE: usize = 1;
    #[inline(always)]
    unsafe fn load(ptr: *const u8) -> f64 {
        // SAFETY: the caller guarantees one readable byte.
        (unsafe { *ptr } != 0) as u8 as f64
    }
}

/// Runs `$body` with the type alias `$V` bound to the `Voxel` for `(dtype, endian)`.
#[macro_export]
macro_rules! with_voxel {
    ($dtype:expr, $endian:expr, |$V:ident| $body:expr) => {{
        use $crate::voxel::{BoolElem, Elem};
        use $crate::{DType, Endian};
        let big = matches!($endian, Endian::Big);
        match ($dtype, big) {
            (DType::Bool, _) => {
                type $V = BoolElem;
                $body
            }
            (DType::U8, _) => {
                type $V = Elem<u8, false>;
                $body
            }
            (DType::I8, _) => {
                type $V = Elem<i8, false>;
                $body
            }
            (DType::U16, false) => {
                type $V = Elem<u16, false>;
                $body
            }
            (DType::U16, true) => {
                type $V = Elem<u16, true>;
                $body
            }
            (DType::I16, false) => {
                type $V = Elem<i16, false>;
                $body
            }
            (DType::I16, true) => {
                type $V = Elem<i16, true>;
                $body
            }
            (DType::U32, false) => {
                type $V = Elem<u32, false>;
                $body
            }
            (DType::U32, true) => {
                type $V = Elem<u32, true>;
                $body
            }
            (DType::I32, false) => {
                type $V = Elem<i32, false>;
                $body
            }
            (DType::I32, true) => {
                type $V = Elem<i32, true>;
                $body
            }
            (DType::U64, false) => {
                type $V = Elem<u64, false>;
                $body
            }
            (DType::U64, true) => {
                type $V = Elem<u64, true>;
                $body
            }
            (DType::I64, false) => {
                type $V = Elem<i64, false>;
                $body
            }
            (DType::I64, true) => {
                type $V = Elem<i64, true>;
                $body
            }
            (DType::F32, false) => {
                type $V = Elem<f32, false>;
                $body
            }
            (DType::F32, true) => {
                type $V = Elem<f32, true>;
                $body
            }
            (DType::F64, false) => {
                type $V = Elem<f64, false>;
                $body
            }
            (DType::F64, true) => {
                type $V = Elem<f64, true>;
                $body
            }
        }
    }};
}

/// Reads one element with runtime dispatch (slow path; `bytes` must hold it).
pub fn read_f64(bytes: &[u8], dtype: DType, endian: Endian) -> f64 {
    assert!(bytes.len() >= dtype.size());
    // SAFETY: length checked above.
    with_voxel!(dtype, endian, |V| unsafe { V::load(bytes.as_ptr()) })
}

/// Converts native-endian elements of `dtype` in `bytes` into `out` through
/// `f` (each element as f64), the element type chosen once for the whole run.
pub fn convert_native<T>(bytes: &[u8], dtype: DType, out: &mut [T], f: impl Fn(f64) -> T) {
    crate::with_voxel!(dtype, Endian::NATIVE, |V| {
        for (o, b) in out.iter_mut().zip(bytes.chunks_exact(dtype.size())) {
            // SAFETY: each chunk holds one element of V.
            *o = f(unsafe { <V as Voxel>::load(b.as_ptr()) });
        }
    })
}

/// Writes `v` as one native-endian element of `dtype` into `out`: integers are
/// rounded half to even (as numpy's `rint`) and saturated, bool is `v != 0`.
pub fn store_f64(v: f64, dtype: DType, out: &mut [u8]) {
    let r = |lo: f64, hi: f64| {
        if v.is_nan() {
            0.0
        } else {
            v.round_ties_even().clamp(lo, hi)
        }
    };
    match dtype {
        DType::Bool => out[0] = (v != 0.0 && !v.is_nan()) as u8,
        DType::U8 => out[0] = r(0.0, 255.0) as u8,
        DType::I8 => out[0] = r(-128.0, 127.0) as i8 as u8,
        DType::U16 => out[..2].copy_from_slice(&(r(0.0, 65535.0) as u16).to_ne_bytes()),
        DType::I16 => out[..2].copy_from_slice(&(r(-32768.0, 32767.0) as i16).to_ne_bytes()),
        DType::U32 => out[..4].copy_from_slice(&(r(0.0, u32::MAX as f64) as u32).to_ne_bytes()),
        DType::I32 => {
            out[..4].copy_from_slice(&(r(i32::MIN as f64, i32::MAX as f64) as i32).to_ne_bytes())
        }
        DType::U64 => out[..8].copy_from_slice(&(r(0.0, u64::MAX as f64) as u64).to_ne_bytes()),
        DType::I64 => {
            out[..8].copy_from_slice(&(r(i64::MIN as f64, i64::MAX as f64) as i64).to_ne_bytes())
        }
        DType::F32 => out[..4].copy_from_slice(&(v as f32).to_ne_bytes()),
        DType::F64 => out[..8].copy_from_slice(&v.to_ne_bytes()),
    }
}
