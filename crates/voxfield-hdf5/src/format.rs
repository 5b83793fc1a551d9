//! The HDF5 file format read directly (no libhdf5): the superblock (versions 0–3),
//! object headers (versions 1 and 2, with continuation blocks) and the messages a
//! dataset needs: dataspace, datatype, fill value, data layout (versions 3 and 4)
//! and filter pipeline. Every read is bounded by the file's length, so a corrupt or
//! hostile file gives an error naming what is wrong, never a huge allocation.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;

use crate::checksum::verify_metadata;

/// "Undefined address": every byte 0xff.
pub(crate) const UNDEF: u64 = u64::MAX;
/// Object header blocks larger than this are refused as corrupt.
const MAX_BLOCK: u64 = 64 << 20;

pub(crate) type Res<T> = std::result::Result<T, String>;

/// An open HDF5 file: its layout parameters and the root group's object header.
pub(crate) struct H5File {
    pub file: File,
    pub len: u64,
    /// Size of file addresses ("offsets") and of lengths, in bytes.
    pub o: usize,
    pub l: usize,
    /// Base address every stored address is relative to.
    base: u64,
    pub root: u64,
}

/// A little-endian reader over one structure's bytes.
pub(crate) struct Cur<'a> {
    pub b: &'a [u8],
    pub p: usize,
    o: usize,
    l: usize,
}

impl<'a> Cur<'a> {
    pub fn new(b: &'a [u8], f: &H5File) -> Self {
        Cur {
            b,
            p: 0,
            o: f.o,
            l: f.l,
        }
    }
    pub fn at(b: &'a [u8], p: usize, f: &H5File) -> Self {
        Cur {
            p,
            ..Cur::new(b, f)
        }
    }
    pub fn bytes(&mut self, n: usize) -> Res<&'a [u8]> {
        let s = self
            .b
            .get(self.p..self.p.checked_add(n).ok_or("length overflows")?)
            .ok_or("structure is truncated")?;
        self.p += n;
        Ok(s)
    }
    pub fn skip(&mut self, n: usize) -> Res<()> {
        self.bytes(n).map(|_| ())
    }
    /// An unsigned little-endian integer of `n` (≤ 8) bytes.
    pub fn uint(&mut self, n: usize) -> Res<u64> {
        let s = self.bytes(n)?;
        Ok(s.iter().rev().fold(0u64, |a, &x| (a << 8) | x as u64))
    }
    pub fn u8(&mut self) -> Res<u8> {
        Ok(self.bytes(1)?[0])
    }
    pub fn u16(&mut self) -> Res<u16> {
        self.uint(2).map(|v| v as u16)
    }
    pub fn u32(&mut self) -> Res<u32> {
        self.uint(4).map(|v| v as u32)
    }
    /// A file address (UNDEF when every byte is 0xff).
    pub fn addr(&mut self) -> Res<u64> {
        let n = self.o;
        let v = self.uint(n)?;
        Ok(if n < 8 && v == (1u64 << (8 * n)) - 1 {
            UNDEF
        } else {
            v
        })
    }
    pub fn length(&mut self) -> Res<u64> {
        let n = self.l;
        self.uint(n)
    }
    pub fn rest(&self) -> &'a [u8] {
        &self.b[self.p.min(self.b.len())..]
    }
}

/// One header message: its type and body.
pub(crate) struct Message {
    pub kind: u16,
    pub flags: u8,
    pub data: Vec<u8>,
}

pub(crate) const MSG_DATASPACE: u16 = 0x1;
pub(crate) const MSG_LINK_INFO: u16 = 0x2;
pub(crate) const MSG_DATATYPE: u16 = 0x3;
pub(crate) const MSG_FILL_OLD: u16 = 0x4;
pub(crate) const MSG_FILL: u16 = 0x5;
pub(crate) const MSG_LINK: u16 = 0x6;
pub(crate) const MSG_LAYOUT: u16 = 0x8;
pub(crate) const MSG_PIPELINE: u16 = 0xB;
const MSG_CONTINUATION: u16 = 0x10;
pub(crate) const MSG_SYMBOL_TABLE: u16 = 0x11;

impl H5File {
    pub fn open(path: &Path) -> Res<Self> {
        let file = File::open(path).map_err(|e| e.to_string())?;
        let len = file.metadata().map_err(|e| e.to_string())?.len();
        // The superblock is at 0 or after a user block of 512, 1024, 2048, ... bytes.
        let mut at = 0u64;
        loop {
            if at + 8 > len {
                return Err("not an HDF5 file (no HDF5 signature found)".into());
            }
            let mut sig = [0u8; 8];
            file.read_exact_at(&mut sig, at)
                .map_err(|e| e.to_string())?;
            if &sig == b"\x89HDF\r\n\x1a\n" {
                break;
            }
            at = if at == 0 { 512 } else { at * 2 };
        }
        let mut head = vec![0u8; 128.min((len - at) as usize)];
        file.read_exact_at(&mut head, at)
            .map_err(|e| e.to_string())?;
        let mut f = H5File {
            file,
            len,
            o: 8,
            l: 8,
            base: at,
            root: 0,
        };
        let trunc = || "the superblock is truncated".to_string();
        let version = *head.get(8).ok_or_else(trunc)?;
        let eof;
        match version {
            0 | 1 => {
                f.o = *head.get(13).ok_or_else(trunc)? as usize;
                f.l = *head.get(14).ok_or_else(trunc)? as usize;
                check_sizes(f.o, f.l)?;
                let mut c = Cur::at(&head, if version == 0 { 24 } else { 28 }, &f);
                let base = c.addr()?;
                f.base = if base == UNDEF { 0 } else { base };
                c.skip(f.o)?; // free space
                eof = c.addr()?;
                c.skip(f.o)?; // driver information
                c.skip(f.o)?; // root entry: link name offset
                f.root = c.addr()?;
            }
            2 | 3 => {
                f.o = *head.get(9).ok_or_else(trunc)? as usize;
                f.l = *head.get(10).ok_or_else(trunc)? as usize;
                check_sizes(f.o, f.l)?;
                let mut c = Cur::at(&head, 12, &f);
                let base = c.addr()?;
                f.base = if base == UNDEF { 0 } else { base };
                c.skip(f.o)?; // superblock extension
                eof = c.addr()?;
                f.root = c.addr()?;
                let block = head.get(..c.p + 4).ok_or_else(trunc)?;
                verify_metadata(block, "the superblock")?;
            }
            v => {
                return Err(format!(
                    "superblock version {v} is not supported (0 to 3 are)"
                ))
            }
        }
        if f.root == UNDEF {
            return Err("the superblock has no root group".into());
        }
        // The end-of-file address counts the user block already (h5py's
        // userblock_size files end exactly there).
        if eof != UNDEF && eof > len {
            return Err(format!(
                "the file is truncated: its superblock says it ends at byte {eof}, but it has {len} bytes"
            ));
        }
        Ok(f)
    }

    /// Reads `n` bytes at stored address `addr` (relative to the base address).
    pub fn read(&self, addr: u64, n: u64) -> Res<Vec<u8>> {
        let at = self.abs(addr)?;
        if at.checked_add(n).is_none_or(|e| e > self.len) {
            return Err(format!(
                "a structure of {n} bytes at byte {at} runs past the end of the file ({} bytes): is it truncated?",
                self.len
            ));
        }
        let mut b = vec![0u8; n as usize];
        self.file
            .read_exact_at(&mut b, at)
            .map_err(|e| format!("cannot read {n} bytes at byte {at}: {e}"))?;
        Ok(b)
    }

    /// Reads up to `n` bytes at `addr` (fewer at the end of the file).
    pub fn read_upto(&self, addr: u64, n: u64) -> Res<Vec<u8>> {
        let at = self.abs(addr)?;
        let n = n.min(self.len.saturating_sub(at));
        self.read(addr, n)
    }

    pub fn abs(&self, addr: u64) -> Res<u64> {
        if addr == UNDEF {
            return Err("undefined address".into());
        }
        addr.checked_add(self.base)
            .filter(|&a| a < self.len)
            .ok_or_else(|| {
                format!(
                    "address {addr} lies past the end of the file ({} bytes): is it truncated?",
                    self.len
                )
            })
    }

    /// The messages of the object header at `addr`, continuation blocks followed.
    pub fn messages(&self, addr: u64) -> Res<Vec<Message>> {
        let head = self.read_upto(addr, 16)?;
        let mut out = vec![];
        let mut blocks: Vec<Block> = vec![];
        let v2 = head.starts_with(b"OHDR");
        if v2 {
            let b = self.read_upto(addr, 40)?;
            let mut c = Cur::new(&b, self);
            c.skip(4)?;
            if c.u8()? != 2 {
                return Err(format!("object header at {addr}: unknown OHDR version"));
            }
            let flags = c.u8()?;
            if flags & 0x20 != 0 {
                c.skip(16)?;
            }
            if flags & 0x10 != 0 {
                c.skip(4)?;
            }
            let size = c.uint(1 << (flags & 3))?;
            blocks.push(Block {
                at: addr,
                messages: c.p as u64,
                len: size,
                checked: Some("object header"),
                signature: None, // OHDR, checked with the prefix above
            });
            self.walk(&mut blocks, &mut out, flags & 0x04 != 0)?;
        } else {
            if head.first() != Some(&1) {
                return Err(format!(
                    "object header at {addr} has unknown version {:?}",
                    head.first()
                ));
            }
            let size = Cur::at(&head, 8, self).u32()? as u64;
            blocks.push(Block {
                at: addr + 16,
                messages: 0,
                len: size,
                checked: None,
                signature: None,
            });
            self.walk(&mut blocks, &mut out, false)?;
        }
        Ok(out)
    }

    fn walk(&self, blocks: &mut Vec<Block>, out: &mut Vec<Message>, order: bool) -> Res<()> {
        let mut budget = 1024;
        while let Some(block) = blocks.pop() {
            budget -= 1;
            if budget == 0 || block.len > MAX_BLOCK {
                return Err("object header has too many or too large blocks (corrupt)".into());
            }
            let v2 = block.checked.is_some();
            let whole = self.read(
                block.at,
                block.messages + block.len + if v2 { 4 } else { 0 },
            )?;
            if let Some(sig) = block.signature {
                if !whole.starts_with(sig) {
                    return Err(format!(
                        "object header continuation at {} has no {} signature (corrupt)",
                        block.at,
                        String::from_utf8_lossy(sig)
                    ));
                }
            }
            if let Some(what) = block.checked {
                verify_metadata(&whole, &format!("{what} at {}", block.at))?;
            }
            let b = &whole[block.messages as usize..][..block.len as usize];
            let mut c = Cur::new(b, self);
            let head = if v2 { 4 + if order { 2 } else { 0 } } else { 8 };
            let end = b.len();
            while c.p + head <= end {
                let (kind, len, flags) = if v2 {
                    let k = c.u8()? as u16;
                    let n = c.u16()? as usize;
                    let fl = c.u8()?;
                    if order {
                        c.skip(2)?;
                    }
                    (k, n, fl)
                } else {
                    let k = c.u16()?;
                    let n = c.u16()? as usize;
                    let fl = c.u8()?;
                    c.skip(3)?;
                    (k, n, fl)
                };
                let data = c.bytes(len)?.to_vec();
                if kind == MSG_CONTINUATION {
                    let mut m = Cur::new(&data, self);
                    let (a, n) = (m.addr()?, m.length()?);
                    blocks.push(if v2 {
                        // "OCHK" signature first (checked when the block is read), checksum last.
                        Block {
                            at: a,
                            messages: 4,
                            len: n
                                .checked_sub(8)
                                .ok_or("object header continuation is too short")?,
                            checked: Some("object header continuation"),
                            signature: Some(b"OCHK"),
                        }
                    } else {
                        Block {
                            at: a,
                            messages: 0,
                            len: n,
                            checked: None,
                            signature: None,
                        }
                    });
                } else if kind != 0 {
                    out.push(Message { kind, flags, data });
                }
            }
        }
        Ok(())
    }
}

/// A block of object header messages: `len` bytes of messages `messages`
/// bytes after `at`; a version-2 block (`checked` names it) ends in a lookup3
/// checksum of everything from `at`.
struct Block {
    at: u64,
    messages: u64,
    len: u64,
    checked: Option<&'static str>,
    /// The signature the block starts with, checked when it is read.
    signature: Option<&'static [u8; 4]>,
}

fn check_sizes(o: usize, l: usize) -> Res<()> {
    if ![2, 4, 8].contains(&o) || ![2, 4, 8].contains(&l) {
        return Err(format!(
            "superblock gives address size {o} and length size {l} (2, 4 or 8 expected)"
        ));
    }
    Ok(())
}

/// The first message of `kind`.
pub(crate) fn find(msgs: &[Message], kind: u16) -> Option<&Message> {
    msgs.iter().find(|m| m.kind == kind)
}

/// Dataspace: the dimensions (a scalar has none).
pub(crate) fn dataspace(m: &Message, f: &H5File) -> Res<Vec<u64>> {
    dataspace_max(m, f).map(|(d, _)| d)
}

/// Dataspace: the dimensions and, when stored, the maximum dimensions (UNDEF:
/// unlimited).
pub(crate) fn dataspace_max(m: &Message, f: &H5File) -> Res<(Vec<u64>, Option<Vec<u64>>)> {
    let mut c = Cur::new(&m.data, f);
    let version = c.u8()?;
    let rank = c.u8()? as usize;
    let flags = c.u8()?;
    match version {
        1 => c.skip(5)?,
        2 => {
            if c.u8()? == 2 {
                return Err("the dataspace is null (the dataset holds no data)".into());
            }
        }
        v => return Err(format!("dataspace message version {v} is not supported")),
    }
    let dims = (0..rank).map(|_| c.length()).collect::<Res<Vec<_>>>()?;
    let max = if flags & 1 != 0 {
        Some((0..rank).map(|_| c.length()).collect::<Res<Vec<_>>>()?)
    } else {
        None
    };
    Ok((dims, max))
}

/// A numeric element type.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct NumType {
    pub size: usize,
    pub float: bool,
    pub signed: bool,
    pub big_endian: bool,
    /// An enum of two 1-byte members (how h5py stores numpy booleans).
    pub boolean: bool,
}

/// Datatype: numeric classes (integers, floats; h5py's boolean enum); others are
/// described by name for the error message.
pub(crate) fn datatype(data: &[u8]) -> Res<NumType> {
    let b = data.get(..8).ok_or("datatype message is truncated")?;
    let class = b[0] & 0x0f;
    let size = u32::from_le_bytes([b[4], b[5], b[6], b[7]]) as usize;
    match class {
        0 => Ok(NumType {
            size,
            float: false,
            signed: b[1] & 0x08 != 0,
            big_endian: b[1] & 0x01 != 0,
            boolean: false,
        }),
        1 => {
            if b[1] & 0x40 != 0 {
                return Err("VAX-ordered floats are not supported".into());
            }
            Ok(NumType {
                size,
                float: true,
                signed: true,
                big_endian: b[1] & 0x01 != 0,
                boolean: false,
            })
        }
        8 => {
            let members = u16::from_le_bytes([b[1], b[2]]);
            let mut base = datatype(&data[8..])?;
            base.boolean = base.size == 1 && members == 2 && !base.float;
            Ok(base)
        }
        c => Err(format!(
            "datatype class {} is not a number",
            [
                "integer",
                "float",
                "time",
                "string",
                "bitfield",
                "opaque",
                "compound",
                "reference",
                "enum",
                "variable-length",
                "array",
                "complex"
            ]
            .get(c as usize)
            .unwrap_or(&"unknown")
        )),
    }
}

/// The fill value's bytes, if one is defined (the new message, else the old one).
pub(crate) fn fill_value(msgs: &[Message], f: &H5File) -> Res<Option<Vec<u8>>> {
    if let Some(m) = find(msgs, MSG_FILL) {
        let mut c = Cur::new(&m.data, f);
        let version = c.u8()?;
        let defined = match version {
            1 | 2 => {
                c.skip(2)?;
                let d = c.u8()?;
                d != 0 || version == 1
            }
            3 => c.u8()? & 0x20 != 0,
            v => return Err(format!("fill value message version {v} is not supported")),
        };
        if !defined || c.rest().len() < 4 {
            return Ok(None);
        }
        let n = c.u32()? as usize;
        return (n > 0).then(|| c.bytes(n).map(<[u8]>::to_vec)).transpose();
    }
    if let Some(m) = find(msgs, MSG_FILL_OLD) {
        let mut c = Cur::new(&m.data, f);
        let n = c.u32()? as usize;
        return (n > 0).then(|| c.bytes(n).map(<[u8]>::to_vec)).transpose();
    }
    Ok(None)
}

/// One filter of a dataset's pipeline.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Filter {
    pub id: u16,
    pub optional: bool,
    pub client: Vec<u32>,
}

pub(crate) fn pipeline(m: &Message, f: &H5File) -> Res<Vec<Filter>> {
    let mut c = Cur::new(&m.data, f);
    let version = c.u8()?;
    let n = c.u8()? as usize;
    if version == 1 {
        c.skip(6)?;
    } else if version != 2 {
        return Err(format!(
            "filter pipeline version {version} is not supported"
        ));
    }
    let mut out = vec![];
    for _ in 0..n {
        let id = c.u16()?;
        let name_len = if version == 1 || id >= 256 {
            c.u16()? as usize
        } else {
            0
        };
        let flags = c.u16()?;
        let nvals = c.u16()? as usize;
        if version == 1 {
            c.skip(name_len.div_ceil(8) * 8)?;
        } else {
            c.skip(name_len)?;
        }
        let client = (0..nvals).map(|_| c.u32()).collect::<Res<Vec<_>>>()?;
        if version == 1 && nvals % 2 == 1 {
            c.skip(4)?;
        }
        out.push(Filter {
            id,
            optional: flags & 1 != 0,
            client,
        });
    }
    Ok(out)
}

/// Where a dataset's elements are.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Layout {
    Contiguous {
        addr: u64,
        size: u64,
    },
    Compact,
    Chunked {
        chunk: Vec<usize>,
        index: ChunkIndexKind,
    },
}

/// How a chunked dataset finds its chunks.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum ChunkIndexKind {
    /// Version-1 B-tree (layout version 3: h5py's default).
    BTreeV1 { root: u64 },
    /// One chunk for the whole dataset, possibly filtered.
    Single {
        addr: u64,
        filtered: Option<(u64, u32)>,
    },
    /// Unfiltered chunks stored one after another in chunk order.
    Implicit { addr: u64 },
    /// Fixed array (layout version 4, fixed-size datasets).
    FixedArray { header: u64 },
    /// Extensible array (layout version 4, one unlimited dimension).
    ExtensibleArray { header: u64 },
    /// Version-2 B-tree (layout version 4, several unlimited dimensions).
    BTreeV2 { header: u64 },
}

pub(crate) fn layout(m: &Message, f: &H5File) -> Res<Layout> {
    let mut c = Cur::new(&m.data, f);
    let version = c.u8()?;
    // Version 5 (HDF5 2.0) has version 4's layout; only the width of filtered chunk
    // sizes in the index differs, which the index header gives.
    if !(3..=5).contains(&version) {
        return Err(format!(
            "data layout message version {version} is not supported (3 to 5 are)"
        ));
    }
    match c.u8()? {
        0 => Ok(Layout::Compact),
        1 => Ok(Layout::Contiguous {
            addr: c.addr()?,
            size: c.length()?,
        }),
        2 if version == 3 => {
            let dims = c.u8()? as usize;
            let root = c.addr()?;
            let chunk = (0..dims.saturating_sub(1))
                .map(|_| c.u32().map(|v| v as usize))
                .collect::<Res<_>>()?;
            Ok(Layout::Chunked {
                chunk,
                index: ChunkIndexKind::BTreeV1 { root },
            })
        }
        2 => {
            let flags = c.u8()?;
            let dims = c.u8()? as usize;
            let enc = c.u8()? as usize;
            if !(1..=8).contains(&enc) {
                return Err(format!("chunk dimension size of {enc} bytes"));
            }
            let all = (0..dims)
                .map(|_| c.uint(enc).map(|v| v as usize))
                .collect::<Res<Vec<_>>>()?;
            let chunk = all[..dims.saturating_sub(1)].to_vec();
            let index = match c.u8()? {
                1 => {
                    let filtered = if flags & 0x02 != 0 {
                        Some((c.length()?, c.u32()?))
                    } else {
                        None
                    };
                    ChunkIndexKind::Single {
                        addr: c.addr()?,
                        filtered,
                    }
                }
                2 => ChunkIndexKind::Implicit { addr: c.addr()? },
                3 => {
                    c.skip(1)?;
                    ChunkIndexKind::FixedArray { header: c.addr()? }
                }
                4 => {
                    c.skip(5)?; // max bits, index elements, min pointers, min elements, page bits
                    ChunkIndexKind::ExtensibleArray { header: c.addr()? }
                }
                5 => {
                    c.skip(6)?; // node size, split and merge percentages
                    ChunkIndexKind::BTreeV2 { header: c.addr()? }
                }
                t => return Err(format!("unknown chunk index type {t}")),
            };
            Ok(Layout::Chunked { chunk, index })
        }
        3 => Err("virtual datasets are not supported".into()),
        k => Err(format!("unknown layout class {k}")),
    }
}

/// A stored chunk: file address, stored size, filter mask.
pub(crate) type Stored = (u64, u64, u32);
