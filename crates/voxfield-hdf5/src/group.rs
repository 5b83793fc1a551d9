//! Groups: the links of a group, whether stored the old way (a symbol table: a
//! version-1 B-tree of symbol nodes with names in a local heap, h5py's default) or
//! the new way (link messages in the group's object header).

use crate::format::{
    find, Cur, H5File, Message, Res, MSG_LINK, MSG_LINK_INFO, MSG_SYMBOL_TABLE, UNDEF,
};

/// A group member: its name and object header address (None: a soft or external
/// link, which voxfield does not follow).
pub(crate) struct Link {
    pub name: String,
    pub addr: Option<u64>,
}

/// The links of the group whose header messages are `msgs`.
pub(crate) fn links(f: &H5File, msgs: &[Message]) -> Res<Vec<Link>> {
    if let Some(m) = find(msgs, MSG_SYMBOL_TABLE) {
        let mut c = Cur::new(&m.data, f);
        let (btree, heap) = (c.addr()?, c.addr()?);
        return symbol_table(f, btree, heap);
    }
    if let Some(m) = find(msgs, MSG_LINK_INFO) {
        let mut c = Cur::new(&m.data, f);
        c.skip(1)?;
        if c.u8()? & 1 != 0 {
            c.skip(8)?;
        }
        let heap = c.addr()?;
        if heap != UNDEF {
            let names = c.addr()?;
            return crate::dense::link_messages(f, heap, names)?
                .iter()
                .map(|m| link_message(f, m))
                .collect();
        }
    }
    msgs.iter()
        .filter(|m| m.kind == MSG_LINK)
        .map(|m| link_message(f, &m.data))
        .collect()
}

fn link_message(f: &H5File, data: &[u8]) -> Res<Link> {
    let mut c = Cur::new(data, f);
    if c.u8()? != 1 {
        return Err("unknown link message version".into());
    }
    let flags = c.u8()?;
    let kind = if flags & 0x08 != 0 { c.u8()? } else { 0 };
    if flags & 0x04 != 0 {
        c.skip(8)?;
    }
    if flags & 0x10 != 0 {
        c.skip(1)?;
    }
    let n = c.uint(1 << (flags & 3))? as usize;
    let name = String::from_utf8_lossy(c.bytes(n)?).into_owned();
    let addr = if kind == 0 { Some(c.addr()?) } else { None };
    Ok(Link { name, addr })
}

fn symbol_table(f: &H5File, btree: u64, heap: u64) -> Res<Vec<Link>> {
    let h = f.read(heap, 8 + 2 * f.l as u64 + f.o as u64)?;
    if !h.starts_with(b"HEAP") {
        return Err(format!(
            "local heap at {heap} has no HEAP signature (corrupt)"
        ));
    }
    let mut c = Cur::at(&h, 8, f);
    let size = c.length()?;
    c.length()?;
    let data_addr = c.addr()?;
    let names = f.read(data_addr, size)?;
    let mut out = vec![];
    let mut stack = vec![(btree, 0usize)];
    while let Some((node, depth)) = stack.pop() {
        if depth > 64 || out.len() > 1 << 24 {
            return Err("group B-tree is too deep or too large (corrupt)".into());
        }
        let head = f.read(node, 8 + 2 * f.o as u64)?;
        if head.starts_with(b"SNOD") {
            let n = u16::from_le_bytes([head[6], head[7]]) as u64;
            let entry = 2 * f.o as u64 + 24;
            let b = f.read(node + 8, n * entry)?;
            let mut c = Cur::new(&b, f);
            for _ in 0..n {
                let off = c.addr()?;
                let addr = c.addr()?;
                c.skip(24)?;
                let s = names
                    .get(off as usize..)
                    .ok_or("symbol name offset past the heap")?;
                let end = s.iter().position(|&x| x == 0).unwrap_or(s.len());
                out.push(Link {
                    name: String::from_utf8_lossy(&s[..end]).into_owned(),
                    addr: Some(addr),
                });
            }
            continue;
        }
        if !head.starts_with(b"TREE") || head[4] != 0 {
            return Err(format!("group B-tree node at {node} is corrupt"));
        }
        let entries = u16::from_le_bytes([head[6], head[7]]) as u64;
        let key = f.l as u64;
        let b = f.read(
            node + 8 + 2 * f.o as u64,
            (entries + 1) * key + entries * f.o as u64,
        )?;
        let mut c = Cur::new(&b, f);
        let mut kids = vec![];
        for _ in 0..entries {
            c.skip(key as usize)?;
            kids.push(c.addr()?);
        }
        for k in kids.into_iter().rev() {
            stack.push((k, depth + 1));
        }
    }
    Ok(out)
}

/// Follows `path` (`/a/b/c`) from the root; the object header address.
pub(crate) fn resolve(f: &H5File, path: &str) -> Res<Option<u64>> {
    let mut at = f.root;
    for part in path.split('/').filter(|p| !p.is_empty()) {
        let msgs = f.messages(at)?;
        match links(f, &msgs)?.into_iter().find(|l| l.name == part) {
            Some(Link { addr: Some(a), .. }) => at = a,
            Some(_) => {
                return Err(format!(
                    "'{part}' is a soft or external link, which voxfield does not follow"
                ))
            }
            None => return Ok(None),
        }
    }
    Ok(Some(at))
}
