"""Neural compression (issues 10 and 24) side by side with SZ3 (pysz), ZFP (zfpy), SPERR
(numcodecs-wasm-sperr) and TTHRESH (built from source), in one run:

1. rate–distortion: nilearn's MNI152 2009a T1 and grey-matter probability map
   (197×233×189 uint8 each, real template volumes) and a synthetic float32 256³
   turbulence-like field (random phases, |û(k)| ∝ k^(-11/6), i.e. a k^(-5/3) energy
   spectrum; labelled synthetic), voxfield at CR 60 / 120 / 250: each anchor swept over
   its setting and its PSNR/SSIM interpolated (linearly in log CR) at voxfield's CR;
2. meta-learning (`--part meta`): a family of co-registered volumes synthesised from
   the MNI T1 (smooth random deformations of up to 2 voxels, a random linear bias
   field of ±15 %, a gamma contrast change 0.8-1.25, Gaussian noise σ = 2), Reptile
   meta-trained on 4 members, PSNR of a held-out member after 10/50/200/1000 Adam
   steps from the meta and from a random initialisation (3 seeds, same optimiser,
   learning rate and batch, f16 tables), and the same initialisation on the
   turbulence field (cross-domain).

voxfield figures: PSNR of the f32 decode, SSIM (voxfield compare: 7³ window),
compress and full-decode time, decode voxels/s, random access µs/point (10^6 random
points through the Python package, when it is importable), peak RSS, model bytes.

    sh bench/build_tthresh.sh
    .venv-neural/bin/python bench/bench_neural.py [--part rd|meta|all] [--epochs 10]

Needs in .venv-neural: nilearn, nibabel, pysz, numcodecs-wasm-sperr, scipy (and the
voxfield package for random access); zfpy in .venv-zfp (it breaks numcodecs in the
same venv): `python3 -m venv .venv-zfp && .venv-zfp/bin/pip install zfpy numpy`.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
RESULTS = os.path.join(HERE, "results")
DATA = os.path.join(HERE, "data")
ZFP_PY = os.path.join(ROOT, ".venv-zfp", "bin", "python")
TTHRESH = os.path.join(HERE, "tthresh", "tthresh")


def nilearn_file(name):
    import nilearn
    return os.path.join(os.path.dirname(nilearn.__file__), "datasets", "data", name)


def psnr(a, b):
    a = a.astype(np.float64)
    mse = np.mean((a - b.astype(np.float64)) ** 2)
    return 10 * np.log10((a.max() - a.min()) ** 2 / mse)


def compare(cli, a_path, b_path):
    r = subprocess.run([cli, "compare", a_path, b_path, "--json"], capture_output=True, text=True)
    if r.returncode:
        sys.exit(r.stderr)
    return json.loads(r.stdout)


def row(method, setting, native, nbytes, orig, dec, tc, td, cli, orig_path, tmp, ssim=True):
    out = {"method": method, "setting": setting, "bytes": nbytes, "ratio": native / nbytes,
           "psnr_db": psnr(orig, dec), "compress_s": tc, "decompress_s": td}
    if ssim:
        p = os.path.join(tmp, "dec.npy")
        np.save(p, dec.astype(np.float32))
        out["ssim"] = compare(cli, orig_path, p)["ssim"]
    return out


def sz3(vol, rel):
    import pysz
    cfg = pysz.szConfig()
    cfg.errorBoundMode = pysz.szErrorBoundMode.REL
    cfg.relErrorBound = rel
    f = vol.astype(np.float32)
    t = time.perf_counter()
    comp, _ = pysz.sz.compress(f, cfg)
    tc = time.perf_counter() - t
    t = time.perf_counter()
    dec, _ = pysz.sz.decompress(comp, np.float32, f.shape)
    return comp.nbytes, dec, tc, time.perf_counter() - t


def sperr(vol, bpp):
    from numcodecs_wasm_sperr import Sperr
    codec = Sperr(mode="bpp", bpp=bpp)
    f = np.ascontiguousarray(vol.astype(np.float32))
    t = time.perf_counter()
    comp = codec.encode(f)
    tc = time.perf_counter() - t
    t = time.perf_counter()
    dec = np.asarray(codec.decode(comp)).reshape(f.shape)
    return len(bytes(comp)), dec, tc, time.perf_counter() - t


ZFP_SCRIPT = """
import sys, json, time, numpy as np, zfpy
a = np.load(sys.argv[1]).astype(np.float32)
out = []
for i, tol in enumerate(json.loads(sys.argv[2])):
    t = time.perf_counter(); c = zfpy.compress_numpy(a, tolerance=tol); tc = time.perf_counter() - t
    t = time.perf_counter(); d = zfpy.decompress_numpy(c); td = time.perf_counter() - t
    np.save(sys.argv[3] + f"/zfp{i}.npy", d)
    out.append({"tol": tol, "bytes": len(c), "compress_s": tc, "decompress_s": td})
print(json.dumps(out))
"""


def zfp(path, tols, tmp):
    if not os.path.exists(ZFP_PY):
        print("ZFP skipped: no .venv-zfp", flush=True)
        return []
    r = subprocess.run([ZFP_PY, "-c", ZFP_SCRIPT, path, json.dumps(tols), tmp], capture_output=True, text=True)
    if r.returncode:
        print("ZFP failed:", r.stderr[-500:], flush=True)
        return []
    res = json.loads(r.stdout)
    for i, x in enumerate(res):
        x["dec"] = np.load(os.path.join(tmp, f"zfp{i}.npy"))
    return res


def tthresh(vol, targets, tmp):
    """TTHRESH at each PSNR target (-p): its raw input is the C-order array with the
    sizes given fastest first (TTHRESH reads Fortran order)."""
    if not os.path.exists(TTHRESH):
        print("TTHRESH skipped: run bench/build_tthresh.sh", flush=True)
        return []
    kind = {np.dtype(np.uint8): "uchar", np.dtype(np.float32): "float"}[vol.dtype]
    raw, comp, dec = (os.path.join(tmp, n) for n in ("tt.raw", "tt.comp", "tt.out"))
    vol.tofile(raw)
    out = []
    for p in targets:
        t = time.perf_counter()
        subprocess.run([TTHRESH, "-i", raw, "-t", kind, "-s", *map(str, vol.shape[::-1]), "-p", str(p), "-c", comp],
                       check=True, capture_output=True)
        tc = time.perf_counter() - t
        t = time.perf_counter()
        subprocess.run([TTHRESH, "-c", comp, "-o", dec], check=True, capture_output=True)
        td = time.perf_counter() - t
        out.append({"target": p, "bytes": os.path.getsize(comp), "compress_s": tc, "decompress_s": td,
                    "dec": np.fromfile(dec, vol.dtype).reshape(vol.shape)})
    return out


def peak_run(args):
    """Runs a command in a child Python that reports the child's peak RSS (KiB)."""
    probe = ("import resource, subprocess, sys, time\n"
             "t = time.perf_counter(); r = subprocess.run(sys.argv[1:], capture_output=True, text=True)\n"
             "print(r.returncode, time.perf_counter() - t, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n"
             "sys.stderr.write(r.stderr)\n")
    r = subprocess.run([sys.executable, "-c", probe, *map(str, args)], capture_output=True, text=True)
    code, secs, kib = r.stdout.split()
    if int(code):
        sys.exit(r.stderr)
    return float(secs), int(kib), r.stderr


def voxfield_run(cli, path, orig, native, tmp, args, label):
    out = os.path.join(tmp, "m.vxn")
    tc, kib, err = peak_run([cli, "compress", path, "-o", out, *args])
    chosen = [ln for ln in err.splitlines() if "--ratio" in ln or "compressed" in ln]
    dec_path = os.path.join(tmp, "d.npy")
    t = time.perf_counter()
    subprocess.run([cli, "decompress", out, "-o", dec_path, "--dtype", "f32"], check=True, capture_output=True)
    td = time.perf_counter() - t
    dec = np.load(dec_path)
    r = row("voxfield", label, native, os.path.getsize(out), orig, dec, tc, td, cli, path, tmp)
    r["decode_mvox_s"] = orig.size / td / 1e6
    r["peak_rss_mib"] = kib / 1024
    r["log"] = chosen
    try:
        import voxfield
    except ImportError:
        voxfield = None
    if voxfield is not None:
        m = voxfield.open(out)
        pts = np.random.default_rng(0).uniform(0, 1, (1_000_000, 3)) * (np.array(orig.shape) - 1)
        m.sample(pts[:1000])
        t = time.perf_counter()
        m.sample(pts)
        r["random_access_us"] = (time.perf_counter() - t)
    header = json.loads(subprocess.run([cli, "info", out, "--json"], capture_output=True, text=True,
                                       check=True).stdout)
    r["storage"] = header.get("storage")
    return r, out


def at_ratio(rows, ratio, key):
    """`key` of an anchor's sweep interpolated linearly in log CR at `ratio` (None outside)."""
    pts = sorted((r["ratio"], r[key]) for r in rows if key in r)
    xs = [np.log(p[0]) for p in pts]
    if not pts or not (xs[0] <= np.log(ratio) <= xs[-1]):
        return None
    return float(np.interp(np.log(ratio), xs, [p[1] for p in pts]))


def anchors(vol, path, native, cli, tmp, bpps, rels, tols, psnrs):
    rows = []
    for x in tthresh(vol, psnrs, tmp):
        rows.append(row("TTHRESH", f"PSNR target {x['target']}", native, x["bytes"], vol, x["dec"], x["compress_s"],
                        x["decompress_s"], cli, path, tmp))
        print(rows[-1], flush=True)
    for rel in rels:
        nb, dec, tc, td = sz3(vol, rel)
        rows.append(row("SZ3", f"REL {rel}", native, nb, vol, dec, tc, td, cli, path, tmp))
        print(rows[-1], flush=True)
    for bpp in bpps:
        nb, dec, tc, td = sperr(vol, bpp)
        rows.append(row("SPERR", f"bpp {bpp}", native, nb, vol, dec, tc, td, cli, path, tmp))
        print(rows[-1], flush=True)
    f32 = os.path.join(tmp, "f32.npy")
    np.save(f32, vol.astype(np.float32))
    for x in zfp(f32, tols, tmp):
        rows.append(row("ZFP", f"tolerance {x['tol']}", native, x["bytes"], vol, x["dec"], x["compress_s"],
                        x["decompress_s"], cli, path, tmp))
        print(rows[-1], flush=True)
    return rows


def matched(rows, vf):
    out = {}
    for m in ["SZ3", "ZFP", "SPERR", "TTHRESH"]:
        sweep = [r for r in rows if r["method"] == m]
        out[m] = {"psnr_db": at_ratio(sweep, vf["ratio"], "psnr_db"), "ssim": at_ratio(sweep, vf["ratio"], "ssim"),
                  "ratios_swept": sorted(round(r["ratio"], 1) for r in sweep)}
    return out


def turbulence(n=256, seed=0):
    rng = np.random.default_rng(seed)
    k = np.fft.fftfreq(n) * n
    kz = np.fft.rfftfreq(n) * n
    kk = np.sqrt(k[:, None, None] ** 2 + k[None, :, None] ** 2 + kz[None, None, :] ** 2)
    amp = np.where(kk > 0, np.maximum(kk, 1.0) ** (-11 / 6), 0.0)
    spec = amp * np.exp(2j * np.pi * rng.random(kk.shape))
    f = np.fft.irfftn(spec, s=(n, n, n))
    return ((f - f.mean()) / f.std()).astype(np.float32)


RATIOS = (60, 120, 250)


def volumes():
    """(name, array, path) of each volume of the rate–distortion part."""
    import nibabel as nib
    out = []
    for name, f in [("mni_t1", "mni_icbm152_t1_tal_nlin_sym_09a_converted.nii.gz"),
                    ("mni_gm", "mni_icbm152_gm_tal_nlin_sym_09a_converted.nii.gz")]:
        path = nilearn_file(f)
        out.append((name, np.asarray(nib.load(path).dataobj), path))
    os.makedirs(DATA, exist_ok=True)
    tpath = os.path.join(DATA, "turb256.npy")
    if not os.path.exists(tpath):
        np.save(tpath, turbulence())
    out.append(("turbulence256", np.load(tpath), tpath))
    return out


def rate_distortion(cli, tmp, epochs, turbulence_epochs):
    result = {}
    for name, vol, path in volumes():
        native = vol.nbytes
        bits = 8 * vol.dtype.itemsize
        print(f"{name} {vol.shape} {vol.dtype}", flush=True)
        crs = (30, 45, 60, 90, 120, 180, 250, 350, 500)
        rows = anchors(vol, path, native, cli, tmp, bpps=[round(bits / c, 4) for c in crs],
                       rels=[0.6, 0.4, 0.3, 0.2, 0.15, 0.1, 0.05, 0.02],
                       tols=[float(t) * (1 if vol.dtype == np.uint8 else 1 / 128) for t in (1024, 512, 256, 128, 64, 32)],
                       psnrs=[12, 15, 18, 21, 24, 27, 30, 34, 38])
        result[name] = {"anchors": rows}
        e = turbulence_epochs if name.startswith("turbulence") else epochs
        for ratio in RATIOS:
            vf, _ = voxfield_run(cli, path, vol, native, tmp, ["--ratio", ratio, "--epochs", e],
                                 f"--ratio {ratio} --epochs {e}")
            vf["matched"] = matched(rows, vf)
            result[name][f"voxfield_{ratio}"] = vf
            print(json.dumps(vf, default=str), flush=True)
    return result


def family_member(t1, seed):
    """A co-registered volume of the T1's family (see the module's text)."""
    from scipy.ndimage import gaussian_filter, map_coordinates
    rng = np.random.default_rng(seed)
    grid = np.mgrid[tuple(slice(0, n) for n in t1.shape)].astype(np.float32)
    disp = np.stack([gaussian_filter(rng.normal(size=t1.shape).astype(np.float32), 12) for _ in range(3)])
    disp *= 2.0 / np.abs(disp).max()
    v = map_coordinates(t1.astype(np.float32) / 255, grid + disp, order=1, mode="nearest")
    v = np.clip(v, 0, 1) ** rng.uniform(0.8, 1.25)
    u = [g / (n - 1) - 0.5 for g, n in zip(grid, t1.shape)]
    v *= 1 + 0.3 * sum(rng.uniform(-.5, .5) * x for x in u)
    v = 255 * v + rng.normal(0, 2.0, size=v.shape)
    return v.astype(np.float32)


def meta_curves(cli, tmp, seeds=(1, 2, 3), steps=(10, 50, 200, 1000), meta_steps=100, inner=16):
    import nibabel as nib
    t1 = np.asarray(nib.load(nilearn_file("mni_icbm152_t1_tal_nlin_sym_09a_converted.nii.gz")).dataobj)
    paths = []
    for k in range(5):
        p = os.path.join(tmp, f"fam{k}.npy")
        np.save(p, family_member(t1, 100 + k))
        paths.append(p)
    held_out, train = paths[0], paths[1:]
    tpath = os.path.join(DATA, "turb256.npy")
    if not os.path.exists(tpath):
        os.makedirs(DATA, exist_ok=True)
        np.save(tpath, turbulence())
    net = ["--log2-table", "12", "--levels", "16", "--width", "32"]
    out = {"meta_steps": meta_steps, "inner_steps": inner, "network": " ".join(net), "runs": []}

    def curve(target, init, seed, kind):
        for n in steps:
            m = os.path.join(tmp, "curve.vxn")
            extra = ["--init", init] if init else net
            t = time.perf_counter()
            subprocess.run([cli, "compress", target, "-o", m, "--steps", str(n), "--epochs", "100000", "--bits", "16",
                            "--seed", str(seed), *extra], check=True, capture_output=True)
            rec = {"target": os.path.basename(target), "seed": seed, "init": kind, "steps": n,
                   "psnr_db": compare(cli, target, m)["psnr_db"], "seconds": time.perf_counter() - t}
            out["runs"].append(rec)
            print(rec, flush=True)

    for seed in seeds:
        init = os.path.join(tmp, f"init{seed}.vxn")
        t = time.perf_counter()
        subprocess.run([cli, "compress", "meta-train", *train, "-o", init, "--meta-steps", str(meta_steps),
                        "--inner-steps", str(inner), "--seed", str(seed), *net], check=True, capture_output=True)
        out[f"meta_train_s_seed{seed}"] = time.perf_counter() - t
        curve(held_out, init, seed, "meta")
        curve(held_out, None, seed, "random")
        if seed == seeds[0]:
            curve(tpath, init, seed, "meta (cross-domain)")
            curve(tpath, None, seed, "random")
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--part", choices=["rd", "meta", "all"], default="all")
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--turbulence-epochs", type=int, default=5)
    ap.add_argument("--voxfield", default=os.path.join(ROOT, "target", "release", "voxfield"))
    a = ap.parse_args()
    cli = a.voxfield
    print(f"{os.cpu_count()} cores", flush=True)
    result = {}
    with tempfile.TemporaryDirectory() as tmp:
        if a.part in ("rd", "all"):
            result["rate_distortion"] = rate_distortion(cli, tmp, a.epochs, a.turbulence_epochs)
        if a.part in ("meta", "all"):
            result["meta"] = meta_curves(cli, tmp)
    os.makedirs(RESULTS, exist_ok=True)
    out = os.path.join(RESULTS, f"neural_{a.part}.json")
    with open(out, "w") as f:
        json.dump(result, f, indent=1, default=str)
    print("written", out)


if __name__ == "__main__":
    main()
