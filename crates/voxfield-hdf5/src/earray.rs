//! The extensible-array chunk index (layout version 4, datasets with one
//! unlimited dimension written with `libver="latest"`): chunk addresses in an
//! index block, then in data blocks of doubling size reached directly from the
//! index block or through super blocks; large data blocks are paged. Geometry as
//! libhdf5's `H5EA__hdr_init` (see the HDF5 file format specification, III.H).

use crate::checksum::verify_metadata;
use crate::format::{Cur, H5File, Res, Stored, UNDEF};

pub(crate) struct Earray {
    /// Bytes per element: an address, or address + chunk size + filter mask.
    elem: usize,
    filtered: bool,
    idx_blk_elmts: u64,
    data_blk_min: u64,
    page_nelmts: u64,
    /// Bytes of a block offset field.
    arr_off: usize,
    iblock_nsblks: u32,
    /// The index block's direct elements, data-block and super-block addresses.
    direct: Vec<u8>,
    dblk_addrs: Vec<u64>,
    sblk_addrs: Vec<u64>,
    chunk_bytes: u64,
}

/// Data blocks in super block `u`, and elements per data block.
fn ndblks(u: u32) -> u64 {
    1 << (u / 2)
}

impl Earray {
    fn dblk_nelmts(&self, u: u32) -> u64 {
        (1 << u.div_ceil(2)) * self.data_blk_min
    }

    /// (first element, first global data block) of super block `u`.
    fn start(&self, u: u32) -> (u64, u64) {
        let (mut idx, mut dblk) = (0, 0);
        for k in 0..u {
            idx += ndblks(k) * self.dblk_nelmts(k);
            dblk += ndblks(k);
        }
        (idx, dblk)
    }

    pub fn open(f: &H5File, header: u64, chunk_bytes: u64) -> Res<Self> {
        let bad = |m: String| format!("extensible-array chunk index at byte {header}: {m}");
        let h = f
            .read(header, 12 + 6 * f.l as u64 + f.o as u64 + 4)
            .map_err(bad)?;
        if !h.starts_with(b"EAHD") {
            return Err(bad("no EAHD signature".into()));
        }
        verify_metadata(&h, "the extensible-array header").map_err(bad)?;
        let client = h[5];
        let elem = h[6] as usize;
        let max_bits = h[7] as u32;
        let idx_blk_elmts = h[8] as u64;
        let data_blk_min = h[9] as u64;
        let sblk_min_ptrs = h[10] as u64;
        let page_bits = h[11] as u32;
        if elem < f.o
            || (client == 1 && elem < f.o + 5)
            || !data_blk_min.is_power_of_two()
            || !sblk_min_ptrs.is_power_of_two()
            || max_bits > 64
            || page_bits > 32
        {
            return Err(bad("header parameters are corrupt".into()));
        }
        let mut c = Cur::at(&h, 12 + 6 * f.l, f);
        let iblock = c.addr()?;
        let nsblks = 1 + max_bits - data_blk_min.trailing_zeros();
        let iblock_nsblks = 2 * sblk_min_ptrs.trailing_zeros();
        let ndblk_addrs = 2 * (sblk_min_ptrs - 1);
        let nsblk_addrs = nsblks.saturating_sub(iblock_nsblks) as u64;
        let mut ea = Earray {
            elem,
            filtered: client == 1,
            idx_blk_elmts,
            data_blk_min,
            page_nelmts: 1 << page_bits,
            arr_off: max_bits.div_ceil(8) as usize,
            iblock_nsblks,
            direct: vec![],
            dblk_addrs: vec![],
            sblk_addrs: vec![],
            chunk_bytes,
        };
        if iblock == UNDEF {
            return Ok(ea); // nothing written yet
        }
        let len =
            6 + f.o as u64 + idx_blk_elmts * elem as u64 + (ndblk_addrs + nsblk_addrs) * f.o as u64;
        let b = f.read(iblock, len + 4).map_err(bad)?;
        if !b.starts_with(b"EAIB") {
            return Err(bad("no EAIB signature".into()));
        }
        verify_metadata(&b, &format!("the extensible-array index block at {iblock}"))
            .map_err(bad)?;
        let mut c = Cur::at(&b, 6 + f.o, f);
        ea.direct = c.bytes(idx_blk_elmts as usize * elem)?.to_vec();
        ea.dblk_addrs = (0..ndblk_addrs).map(|_| c.addr()).collect::<Res<_>>()?;
        ea.sblk_addrs = (0..nsblk_addrs).map(|_| c.addr()).collect::<Res<_>>()?;
        Ok(ea)
    }

    fn element(&self, f: &H5File, raw: &[u8]) -> Res<Option<Stored>> {
        let mut c = Cur::new(raw, f);
        let addr = c.addr()?;
        if addr == UNDEF || addr == 0 && !self.filtered && raw.iter().all(|&b| b == 0) {
            return Ok(None);
        }
        if self.filtered {
            let size = c.uint(self.elem - f.o - 4)?;
            Ok(Some((addr, size, c.u32()?)))
        } else {
            Ok(Some((addr, self.chunk_bytes, 0)))
        }
    }

    /// The chunk with linear index `idx`; None if never written.
    pub fn locate(&self, f: &H5File, idx: u64) -> Res<Option<Stored>> {
        if idx < self.idx_blk_elmts {
            if self.direct.is_empty() {
                return Ok(None);
            }
            let at = idx as usize * self.elem;
            return self.element(f, &self.direct[at..at + self.elem]);
        }
        let e = idx - self.idx_blk_elmts;
        let u = 63 - (e / self.data_blk_min + 1).leading_zeros();
        let (start_idx, start_dblk) = self.start(u);
        let per = self.dblk_nelmts(u);
        let elmt = e - start_idx;
        let local = elmt / per;
        let (dblk, page_init) = if u < self.iblock_nsblks {
            let Some(&d) = self.dblk_addrs.get((start_dblk + local) as usize) else {
                return Ok(None);
            };
            (d, None)
        } else {
            let Some(&sb) = self.sblk_addrs.get((u - self.iblock_nsblks) as usize) else {
                return Ok(None);
            };
            if sb == UNDEF {
                return Ok(None);
            }
            let paged = per > self.page_nelmts;
            let npages = per.div_ceil(self.page_nelmts);
            let init_size = if paged { npages.div_ceil(8) } else { 0 };
            let prefix = 6 + f.o as u64 + self.arr_off as u64;
            let b = f.read(sb, prefix + ndblks(u) * (init_size + f.o as u64) + 4)?;
            if !b.starts_with(b"EASB") {
                return Err(format!(
                    "extensible-array super block at byte {sb} is corrupt"
                ));
            }
            verify_metadata(&b, &format!("extensible-array super block at {sb}"))?;
            let bitmap = b[(prefix + local * init_size) as usize..][..init_size as usize].to_vec();
            let mut c = Cur::at(
                &b,
                (prefix + ndblks(u) * init_size) as usize + local as usize * f.o,
                f,
            );
            (c.addr()?, paged.then_some(bitmap))
        };
        if dblk == UNDEF {
            return Ok(None);
        }
        let within = elmt % per;
        let prefix = 6 + f.o as u64 + self.arr_off as u64;
        let elem = self.elem as u64;
        // Each read below ends in the checksum of what it read.
        let (at, len, offset) = match page_init {
            None => (dblk, prefix + per * elem + 4, prefix + within * elem),
            Some(bitmap) => {
                let page = within / self.page_nelmts;
                if bitmap[(page / 8) as usize] & (0x80 >> (page % 8)) == 0 {
                    return Ok(None);
                }
                // The prefix's checksum, then pages of elements and a checksum each.
                let page_len = self.page_nelmts * elem + 4;
                let at = dblk + prefix + 4 + page * page_len;
                (at, page_len, (within % self.page_nelmts) * elem)
            }
        };
        let b = f.read(at, len)?;
        verify_metadata(&b, &format!("extensible-array data block at {at}"))?;
        self.element(f, &b[offset as usize..][..self.elem])
    }
}
