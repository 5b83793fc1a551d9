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
