//! Little-endian integers at byte offsets of a buffer, for parsing binary headers
//! (zip directories, HDF5 structures); `None` when the buffer is too short.

pub fn u16_at(b: &[u8], o: usize) -> Option<u16> {
    Some(u16::from_le_bytes(b.get(o..o + 2)?.try_into().ok()?))
}

pub fn u32_at(b: &[u8], o: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(o..o + 4)?.try_into().ok()?))
}

pub fn u64_at(b: &[u8], o: usize) -> Option<u64> {
    Some(u64::from_le_bytes(b.get(o..o + 8)?.try_into().ok()?))
}

/// Little-endian values read in sequence from a buffer, with an error naming
/// what was wanted where when the buffer ends first (for binary records: model
/// cells, fragment tables).
pub struct Cursor<'a> {
    pub bytes: &'a [u8],
    /// The offset of the next read.
    pub at: usize,
}

type Read<T> = std::result::Result<T, String>;

impl<'a> Cursor<'a> {
    pub fn new(bytes: &'a [u8], at: usize) -> Self {
        Cursor { bytes, at }
    }

    /// Bytes not read yet.
    pub fn remaining(&self) -> usize {
        self.bytes.len().saturating_sub(self.at)
    }

    pub fn take(&mut self, n: usize) -> Read<&'a [u8]> {
        let end = self.at.checked_add(n).filter(|&e| e <= self.bytes.len());
        let end = end.ok_or_else(|| {
            format!(
                "truncated: {n} bytes wanted at byte {} of {}",
                self.at,
                self.bytes.len()
            )
        })?;
        let s = &self.bytes[self.at..end];
        self.at = end;
        Ok(s)
    }

    fn array<const N: usize>(&mut self) -> Read<[u8; N]> {
        Ok(self.take(N)?.try_into().expect("N bytes taken"))
    }

    pub fn u8(&mut self) -> Read<u8> {
        Ok(self.take(1)?[0])
    }
    pub fn u16(&mut self) -> Read<u16> {
        Ok(u16::from_le_bytes(self.array()?))
    }
    pub fn u32(&mut self) -> Read<u32> {
        Ok(u32::from_le_bytes(self.array()?))
    }
    pub fn u64(&mut self) -> Read<u64> {
        Ok(u64::from_le_bytes(self.array()?))
    }
    pub fn i64(&mut self) -> Read<i64> {
        Ok(i64::from_le_bytes(self.array()?))
    }

    /// `n` f64 values (the byte count checked against overflow first).
    pub fn f64s(&mut self, n: usize) -> Read<Vec<f64>> {
        let bytes = self.take(n.checked_mul(8).ok_or("implausible count")?)?;
        Ok(bytes
            .chunks_exact(8)
            .map(|c| f64::from_le_bytes(c.try_into().expect("8 bytes")))
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cursor_reads_in_order_and_names_a_short_read() {
        let b = [1u8, 2, 0, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xf0, 0x3f];
        let mut c = Cursor::new(&b, 0);
        assert_eq!(c.u8().unwrap(), 1);
        assert_eq!(c.u16().unwrap(), 2);
        assert_eq!(c.u32().unwrap(), 3);
        assert_eq!(c.f64s(1).unwrap(), vec![1.0]);
        assert_eq!(c.remaining(), 0);
        let e = c.u32().unwrap_err();
        assert_eq!(e, "truncated: 4 bytes wanted at byte 15 of 15");
        assert!(c.f64s(usize::MAX).unwrap_err().contains("implausible"));
    }
}
