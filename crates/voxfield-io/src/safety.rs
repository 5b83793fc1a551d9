//! Where results may be written and what may be read without blocking: outputs go
//! to regular files only (a symlink is followed to its target, a device, FIFO or
//! socket is refused rather than replaced by a rename), an output is never one of
//! the inputs, inputs are regular files (a FIFO or device would block forever), and
//! temporaries left by a killed process are removed by the next writer.

use std::path::{Path, PathBuf};

use voxfield_core::{Error, Result};

/// The largest PNG voxfield renders whole (pixels); bigger pictures are refused.
pub const MAX_PNG_PIXELS: usize = 1 << 28;

/// Outputs are local: `convert SRC http://host/x.zarr` once wrote a folder
/// named `http:`.
pub fn refuse_url(path: &Path) -> Result<()> {
    let s = path.to_string_lossy();
    match s.split_once("://") {
        Some((scheme, _)) if !scheme.is_empty() && scheme.chars().all(|c| c.is_ascii_alphanumeric() || "+.-".contains(c)) => {
            Err(Error::format(
                path,
                format!("is a {scheme}:// URL: voxfield writes to local paths only (write locally, then upload)"),
            ))
        }
        _ => Ok(()),
    }
}

/// The file `path` really writes to: symlinks followed. Errors for a directory or
/// a special file (device, FIFO, socket), which an atomic rename would replace.
pub fn output_target(path: &Path) -> Result<PathBuf> {
    refuse_url(path)?;
    let mut p = path.to_path_buf();
    for _ in 0..40 {
        match std::fs::symlink_metadata(&p) {
            Ok(m) if m.file_type().is_symlink() => {
                let link = std::fs::read_link(&p).map_err(|e| Error::io(&p, e))?;
                p = match p.parent() {
                    Some(dir) if link.is_relative() => dir.join(link),
                    _ => link,
                };
            }
            Ok(m) if m.is_dir() => {
                return Err(Error::format(path, "is a directory; name a file to write"))
            }
            Ok(m) if !m.is_file() => {
                return Err(Error::format(
                    path,
                    "is a device, FIFO or socket: voxfield writes regular files only (through a \
                     temporary file renamed into place); write to a file, then copy it there",
                ))
            }
            Ok(_) => return Ok(p),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(p),
            Err(e) => return Err(Error::io(&p, e)),
        }
    }
    Err(Error::format(path, "too many levels of symbolic links"))
}

/// Checks that `path` is a regular file that can be read (a FIFO or character
/// device would block; a directory is not a file). Errors keep the real cause
/// (permission denied, symlink loop, missing).
pub fn regular_input(path: &Path) -> Result<()> {
    match std::fs::metadata(path) {
        Err(e) => Err(Error::io(path, e)),
        Ok(m) if m.is_dir() => Err(Error::format(path, "is a directory, not a file")),
        Ok(m) if !m.is_file() => Err(Error::format(
            path,
            "is not a regular file (a FIFO, device or socket); voxfield reads regular files only",
        )),
        Ok(_) => Ok(()),
    }
}

/// The path of an input without a container suffix (`file.h5:/dataset`).
fn input_file(p: &Path) -> PathBuf {
    let s = p.to_string_lossy();
    let lower = s.to_ascii_lowercase();
    for ext in [".h5:", ".hdf5:", ".he5:", ".nc:"] {
        if let Some(i) = lower.find(ext) {
            return PathBuf::from(&s[..i + ext.len() - 1]);
        }
    }
    p.to_path_buf()
}

/// Refuses an output that is an input, lies inside one (a Zarr store) or contains one.
pub fn check_not_input(out: &Path, inputs: &[&Path]) -> Result<()> {
    let canon = |p: &Path| -> Option<PathBuf> {
        if let Ok(c) = p.canonicalize() {
            return Some(c);
        }
        let dir = p
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        Some(dir.canonicalize().ok()?.join(p.file_name()?))
    };
    let Some(o) = canon(out) else { return Ok(()) };
    for input in inputs {
        let Some(i) = canon(&input_file(input)) else {
            continue;
        };
        if o == i || o.starts_with(&i) || i.starts_with(&o) {
            return Err(Error::format(
                out,
                format!(
                    "the output would overwrite the input {}; choose another output path",
                    input.display()
                ),
            ));
        }
    }
    Ok(())
}

/// Refuses to write `bytes` to `out` when its file system has less room: an
/// output sized by a file's own header (a forged model claiming 10^12 voxels)
/// must fail before it fills the disk, not after.
pub fn check_free_space(out: &Path, bytes: u64) -> Result<()> {
    let target = output_target(out)?;
    let dir = target
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let Some(free) = free_bytes(dir) else {
        return Ok(());
    };
    if bytes > free {
        return Err(Error::format(
            out,
            format!(
                "needs {:.1} GiB but its file system has {:.1} GiB free",
                bytes as f64 / (1u64 << 30) as f64,
                free as f64 / (1u64 << 30) as f64
            ),
        ));
    }
    Ok(())
}

/// Bytes an unprivileged writer may still use on `dir`'s file system (None
/// where it cannot be asked).
#[cfg(unix)]
fn free_bytes(dir: &Path) -> Option<u64> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(dir.as_os_str().as_bytes()).ok()?;
    let mut st = std::mem::MaybeUninit::<libc::statvfs>::uninit();
    // SAFETY: `c` is a NUL-terminated path and `st` is written by statvfs on success.
    if unsafe { libc::statvfs(c.as_ptr(), st.as_mut_ptr()) } != 0 {
        return None;
    }
    // SAFETY: statvfs returned 0, so `st` is initialised.
    let st = unsafe { st.assume_init() };
    // (The field types vary between platforms: u64 here, u32 on some.)
    #[allow(clippy::unnecessary_cast)]
    Some((st.f_bavail as u64).saturating_mul(st.f_frsize as u64))
}

#[cfg(not(unix))]
fn free_bytes(_: &Path) -> Option<u64> {
    None
}

/// The name prefix of this process's temporaries for `dst`: `.NAME.voxfield-tmp-PID-`.
pub fn temp_prefix(dst: &Path) -> String {
    let name = dst
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    format!(".{name}.voxfield-tmp-{}-", std::process::id())
}

/// Removes `.NAME.voxfield-tmp-PID-*` files and directories beside `dst` whose
/// process no longer runs (left by a kill); those of live processes are kept.
pub fn remove_stale_temporaries(dst: &Path) {
    let Some(name) = dst.file_name().map(|n| n.to_string_lossy().into_owned()) else {
        return;
    };
    let dir = dst
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let head = format!(".{name}.voxfield-tmp-");
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let n = e.file_name().to_string_lossy().into_owned();
        let Some(rest) = n.strip_prefix(&head) else {
            continue;
        };
        let Some(pid) = rest.split('-').next().and_then(|p| p.parse::<u32>().ok()) else {
            continue;
        };
        if Path::new(&format!("/proc/{pid}")).exists() {
            continue;
        }
        let p = e.path();
        let _ = if p.is_dir() {
            std::fs::remove_dir_all(&p)
        } else {
            std::fs::remove_file(&p)
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outputs_follow_symlinks_and_refuse_special_files() {
        let d = tempfile::tempdir().unwrap();
        let real = d.path().join("real.npy");
        std::fs::write(&real, b"x").unwrap();
        let link = d.path().join("link.npy");
        std::os::unix::fs::symlink(&real, &link).unwrap();
        assert_eq!(output_target(&link).unwrap(), real);
        let fifo = d.path().join("fifo");
        let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        // SAFETY: a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o644) }, 0);
        assert!(output_target(&fifo)
            .unwrap_err()
            .to_string()
            .contains("FIFO"));
        assert!(regular_input(&fifo)
            .unwrap_err()
            .to_string()
            .contains("regular"));
        assert!(output_target(d.path()).is_err());
        let e = check_not_input(&link, &[&real]).unwrap_err().to_string();
        assert!(e.contains("overwrite the input"), "{e}");
        assert!(check_not_input(&d.path().join("other.npy"), &[&real]).is_ok());
        let h5 = d.path().join("f.h5");
        std::fs::write(&h5, b"x").unwrap();
        let ds = PathBuf::from(format!("{}:/a/b", h5.display()));
        assert!(check_not_input(&h5, &[&ds]).is_err());
        // A store written into the input store, or around it.
        let store = d.path().join("in.zarr");
        std::fs::create_dir(&store).unwrap();
        assert!(check_not_input(&store.join("x.npy"), &[&store]).is_err());
    }

    #[test]
    fn stale_temporaries_of_dead_processes_are_removed() {
        let d = tempfile::tempdir().unwrap();
        let dst = d.path().join("out.npy");
        let dead = d.path().join(".out.npy.voxfield-tmp-4194399-abc");
        let live = d
            .path()
            .join(format!(".out.npy.voxfield-tmp-{}-def", std::process::id()));
        let other = d.path().join(".x.npy.voxfield-tmp-4194399-abc");
        for p in [&dead, &live, &other] {
            std::fs::write(p, b"x").unwrap();
        }
        remove_stale_temporaries(&dst);
        assert!(!dead.exists() && live.exists() && other.exists());
    }
}
