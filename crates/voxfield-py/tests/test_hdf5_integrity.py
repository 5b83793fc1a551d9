"""HDF5 integrity against libhdf5 (through h5py): every checksum the format defines is verified,
and no corrupted file reads as values nobody would give. A bit flipped anywhere in a file must
leave voxfield refusing it (an error naming the file and the dataset) or reading exactly the
uncorrupted values or exactly what h5py reads. (libhdf5 itself reads some mutants as zeros:
a chunk size flipped in a v1 B-tree key; voxfield then reads the original values.)"""

import os
import select
import subprocess
import sys

import h5py
import hdf5plugin
import numpy as np
import pytest

import voxfield
from _voxels import full


_WORKER = """
import sys, h5py, numpy as np
for line in sys.stdin:
    path, ds, out = line.rstrip("\\n").split("\\t")
    try:
        with h5py.File(path, "r") as f:
            np.save(out, f[ds][...].astype(np.float64))
        print("ok", flush=True)
    except Exception:
        print("refused", flush=True)
"""


class H5py:
    """h5py in a long-lived worker process: libhdf5 is not hardened against every corrupt
    file, and a crash there must not take the test down (it counts as a refusal)."""

    def __init__(self):
        self.proc = None

    def read(self, path, ds):
        if self.proc is None or self.proc.poll() is not None:
            self.proc = subprocess.Popen([sys.executable, "-c", _WORKER], stdin=subprocess.PIPE,
                                         stdout=subprocess.PIPE, text=True)
        out = f"{path}.npy"
        try:
            self.proc.stdin.write(f"{path}\t{ds}\t{out}\n")
            self.proc.stdin.flush()
            ready, _, _ = select.select([self.proc.stdout], [], [], 60)
            if not ready:  # libhdf5 caught in a loop: a refusal
                self.close()
                return None
            answer = self.proc.stdout.readline().strip()
        except BrokenPipeError:
            answer = ""
        if answer != "ok":
            return None
        values = np.load(out)
        os.unlink(out)
        return values

    def close(self):
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            self.proc = None


def _voxfield_read(path, ds):
    try:
        return full(voxfield.open(f"{path}:{ds}")), None
    except (ValueError, OSError) as e:
        return None, str(e)


def _flavours(d):
    """(file, dataset, values) of the layouts and indexes libhdf5 writes."""
    rng = np.random.default_rng(5)
    a = rng.standard_normal((12, 10, 14)).astype(np.float32)
    out = []
    p = d / "default.h5"  # superblock 0, v1 object headers, v1 B-tree, fletcher32 + shuffle + gzip
    with h5py.File(p, "w") as f:
        f.create_dataset("v", data=a, chunks=(4, 5, 7), fletcher32=True, shuffle=True, compression="gzip")
    out.append((p, "/v", a))
    p = d / "latest.h5"  # superblock 3, OHDR, dense links (fractal heap, B-tree v2), paged fixed array
    with h5py.File(p, "w", libver="latest") as f:
        g = f.create_group("g", track_order=True)
        for k in range(40):
            g.create_dataset(f"x{k}", data=np.full(2, k))
        g.create_dataset("v", data=a, chunks=(2, 2, 2), fletcher32=True)
    out.append((p, "/g/v", a))
    p = d / "growing.h5"  # an unlimited axis: the extensible array (index, super and data blocks)
    with h5py.File(p, "w", libver="latest") as f:
        ds = f.create_dataset("v", shape=(0, 10, 14), maxshape=(None, 10, 14), chunks=(1, 5, 7), dtype="f4")
        ds.resize((12, 10, 14))
        ds[...] = a
    out.append((p, "/v", a))
    return out


def test_fletcher32_is_verified(tmp_path):
    p = tmp_path / "f.h5"
    a = np.arange(8 * 8 * 8, dtype=np.float32).reshape(8, 8, 8)
    with h5py.File(p, "w") as f:
        ds = f.create_dataset("v", data=a, chunks=(4, 4, 4), fletcher32=True)
        at = ds.id.get_chunk_info(1).byte_offset
    np.testing.assert_array_equal(full(voxfield.open(f"{p}:/v")), a)
    raw = bytearray(p.read_bytes())
    raw[at + 5] ^= 0x01  # one bit of one value: 14.0 would read as 14.000061
    p.write_bytes(bytes(raw))
    with pytest.raises(OSError):
        with h5py.File(p, "r") as f:
            f["v"][...]
    with pytest.raises(ValueError, match=r"f\.h5:/v.*Fletcher-32"):
        full(voxfield.open(f"{p}:/v"))


def test_a_user_block_is_not_truncation(tmp_path):
    p = tmp_path / "ub.h5"
    a = np.linspace(0, 1, 6 * 7 * 8).reshape(6, 7, 8)
    for libver in ("earliest", "latest"):
        with h5py.File(p, "w", userblock_size=512, libver=libver) as f:
            f.create_dataset("v", data=a, chunks=(3, 7, 4))
            f.create_dataset("c", data=a)
        for ds in ("/v", "/c"):
            np.testing.assert_array_equal(full(voxfield.open(f"{p}:{ds}")), a)


def test_metadata_checksums_are_verified(tmp_path):
    """A flipped bit in each kind of version-2 metadata is refused, naming the structure."""
    (p, ds, a), = [f for f in _flavours(tmp_path) if f[0].name == "latest.h5"]
    raw = p.read_bytes()
    found = {}
    for sig in (b"OHDR", b"BTHD", b"BTLF", b"FRHP", b"FHDB", b"FAHD", b"FADB"):
        at = raw.find(sig)
        assert at >= 0, sig
        bad = bytearray(raw)
        bad[at + 7] ^= 0x10
        q = tmp_path / f"bad_{sig.decode()}.h5"
        q.write_bytes(bytes(bad))
        values, err = _voxfield_read(q, ds)
        found[sig] = err
    for sig, err in found.items():
        assert err is not None and "checksum" in err and str(tmp_path) in err, (sig, err)
    # A link's bytes inside a fractal heap direct block (its name, here) are covered too.
    at = raw.find(b"FHDB")
    bad = bytearray(raw)
    bad[raw.find(b"x1", at) + 1] ^= 0x02  # "x1..." becomes "x3...": another name, no other damage
    q = tmp_path / "bad_link.h5"
    q.write_bytes(bytes(bad))
    with pytest.raises(RuntimeError, match="checksum"):  # libhdf5, listing the group
        with h5py.File(q, "r") as f:
            list(f["g"])
    values, err = _voxfield_read(q, ds)
    assert err is not None and "direct block" in err and "checksum" in err, err
    # The superblock (version 3) too.
    bad = bytearray(raw)
    bad[20] ^= 0x01
    q = tmp_path / "bad_superblock.h5"
    q.write_bytes(bytes(bad))
    values, err = _voxfield_read(q, ds)
    assert err is not None and ("checksum" in err or "truncated" in err), err


@pytest.mark.parametrize("flavour", ["default.h5", "latest.h5", "growing.h5"])
def test_no_flipped_bit_reads_as_values_libhdf5_would_not_give(tmp_path, flavour):
    (p, ds, a), = [f for f in _flavours(tmp_path) if f[0].name == flavour]
    raw = p.read_bytes()
    rng = np.random.default_rng(11)
    n = int(os.environ.get("VOXFIELD_H5_MUTANTS", "150"))
    positions = rng.integers(0, len(raw), n)
    bits = rng.integers(0, 8, n)
    h5 = H5py()
    refused = wrong = 0
    try:
        for k, (at, bit) in enumerate(zip(positions, bits)):
            bad = bytearray(raw)
            bad[at] ^= 1 << bit
            q = tmp_path / f"m{k}.h5"
            q.write_bytes(bytes(bad))
            mine, err = _voxfield_read(q, ds)
            if mine is None:
                refused += 1
                assert str(q) in err and ds.strip("/").split("/")[-1] in err, err
                q.unlink()
                continue
            theirs = h5.read(q, ds)
            wants = [a.astype(np.float64)] + ([theirs] if theirs is not None else [])
            if not any(np.array_equal(mine, w, equal_nan=True) for w in wants):
                wrong += 1
                print(f"byte {at} bit {bit}: voxfield read values libhdf5 does not give")
            q.unlink()
    finally:
        h5.close()
    assert wrong == 0, f"{wrong} of {n} mutants read wrong values ({refused} refused)"
    assert refused > 0


def test_forged_bitshuffle_block_sizes_are_refused_not_allocated(tmp_path):
    """The per-chunk header of bitshuffle+lz4 gives a block size: trusting 2^31 allocated 16 GiB."""
    p = tmp_path / "bs.h5"
    a = np.arange(16 * 16 * 16, dtype=np.uint32).reshape(16, 16, 16)
    with h5py.File(p, "w") as f:
        ds = f.create_dataset("v", data=a, chunks=(8, 16, 16), **hdf5plugin.Bitshuffle(cname="lz4"))
        at = ds.id.get_chunk_info(0).byte_offset
    raw = bytearray(p.read_bytes())
    raw[at + 8:at + 12] = (0x7FFFFFF8).to_bytes(4, "big")
    p.write_bytes(bytes(raw))
    with pytest.raises(ValueError, match=r"bs\.h5.*bitshuffle"):
        full(voxfield.open(f"{p}:/v"))


@pytest.mark.skipif(not os.environ.get("VOXFIELD_CLI"), reason="VOXFIELD_CLI names the built voxfield")
def test_object_names_cannot_drive_the_terminal(tmp_path):
    """An HDF5 object named with escape sequences is listed and named in errors escaped."""
    p = tmp_path / "esc.h5"
    with h5py.File(p, "w") as f:
        f.create_dataset("\x1b[2J\x1b[31mred", data=np.zeros((2, 3, 4)))
    r = subprocess.run([os.environ["VOXFIELD_CLI"], "info", p], capture_output=True, text=True)
    assert "\x1b" not in r.stdout + r.stderr and "\\u{1b}[31mred" in r.stdout + r.stderr, (r.stdout, r.stderr)
    r = subprocess.run([os.environ["VOXFIELD_CLI"], "info", f"{p}:/\x1b[31mnone"], capture_output=True, text=True)
    assert r.returncode == 1 and "\x1b" not in r.stderr, r.stderr


def _lookup3(data: bytes) -> int:
    """Jenkins' lookup3 hashlittle(data, len, 0), as HDF5 checksums its metadata (a port of the
    reader's, checked below against a checksum h5py wrote)."""
    m = 0xFFFFFFFF
    rot = lambda x, k: ((x << k) | (x >> (32 - k))) & m

    def mix(a, b, c):
        a = (a - c) & m; a ^= rot(c, 4); c = (c + b) & m
        b = (b - a) & m; b ^= rot(a, 6); a = (a + c) & m
        c = (c - b) & m; c ^= rot(b, 8); b = (b + a) & m
        a = (a - c) & m; a ^= rot(c, 16); c = (c + b) & m
        b = (b - a) & m; b ^= rot(a, 19); a = (a + c) & m
        c = (c - b) & m; c ^= rot(b, 4); b = (b + a) & m
        return a, b, c

    def final(a, b, c):
        c ^= b; c = (c - rot(b, 14)) & m
        a ^= c; a = (a - rot(c, 11)) & m
        b ^= a; b = (b - rot(a, 25)) & m
        c ^= b; c = (c - rot(b, 16)) & m
        a ^= c; a = (a - rot(c, 4)) & m
        b ^= a; b = (b - rot(a, 14)) & m
        c ^= b; c = (c - rot(b, 24)) & m
        return c

    word = lambda w: int.from_bytes(w.ljust(4, b"\0"), "little")
    a = b = c = (0xDEADBEEF + len(data)) & m
    rest = data
    while len(rest) > 12:
        a, b, c = (a + word(rest[0:4])) & m, (b + word(rest[4:8])) & m, (c + word(rest[8:12])) & m
        a, b, c = mix(a, b, c)
        rest = rest[12:]
    if not rest:
        return c
    tail = rest.ljust(12, b"\0")
    return final((a + word(tail[0:4])) & m, (b + word(tail[4:8])) & m, (c + word(tail[8:12])) & m)


def test_forged_fractal_heap_sizes_with_valid_checksums_are_refused(tmp_path):
    """A dense group's fractal heap header claiming 10^12-byte blocks, or 65535 × 65535 block
    entries, with its checksum recomputed: refused naming the file, nothing allocated from the claim."""
    import struct
    import time

    (p, ds, a), = [f for f in _flavours(tmp_path) if f[0].name == "latest.h5"]
    raw = p.read_bytes()
    at = raw.find(b"FRHP")
    head = 142  # the header's bytes before its checksum (8-byte offsets and lengths, no filters)
    assert struct.unpack_from("<I", raw, at + head)[0] == _lookup3(raw[at:at + head])
    forgeries = {
        "huge blocks": [(112, "<Q", 10 ** 12), (120, "<Q", 10 ** 12)],
        "huge table": [(110, "<H", 0xFFFF), (140, "<H", 0xFFFF)],
    }
    for name, fields in forgeries.items():
        bad = bytearray(raw)
        for off, fmt, value in fields:
            struct.pack_into(fmt, bad, at + off, value)
        struct.pack_into("<I", bad, at + head, _lookup3(bytes(bad[at:at + head])))
        q = tmp_path / f"forged_{name.replace(' ', '_')}.h5"
        q.write_bytes(bytes(bad))
        t = time.perf_counter()
        values, err = _voxfield_read(q, ds)
        assert values is None and str(q) in err and "panicked" not in err, (name, err)
        assert time.perf_counter() - t < 5, name
