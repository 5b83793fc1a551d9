/// Output element types: values are computed in f64 and converted once, at the end.
pub trait OutElem: Copy + Send + Sync + Default + 'static {
    fn from_f64(v: f64) -> Self;
}

impl OutElem for f64 {
    #[inline(always)]
    fn from_f64(v: f64) -> Self {
        v
    }
}
impl OutElem for f32 {
    #[inline(always)]
    fn from_f64(v: f64) -> Self {
        v as f32
    }
}
impl OutElem for bool {
    #[inline(always)]
    fn from_f64(v: f64) -> Self {
        v != 0.0 && !v.is_nan()
    }
}

// Integers: round half away from zero, saturate at the type's range; NaN becomes 0
// (callers reject a NaN fill value for integer output up front).
macro_rules! out_int {
    ($($t:ty),*) => {$(
        impl OutElem for $t {
            #[inline(always)]
            fn from_f64(v: f64) -> Self {
                v.round() as $t
            }
        }
    )*};
}
out_int!(u8, i8, u16, i16, u32, i32, u64, i64);

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn rounds_and_saturates() {
        assert_eq!(u8::from_f64(2.5), 3);
        assert_eq!(u8::from_f64(-3.0), 0);
        assert_eq!(u8::from_f64(300.0), 255);
        assert_eq!(i16::from_f64(-2.5), -3);
        assert_eq!(i8::from_f64(f64::NAN), 0);
        assert_eq!(i64::from_f64(1e300), i64::MAX);
    }
}
