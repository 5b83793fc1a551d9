"""Neural compression (issue 10) side by side with SZ3 (pysz), ZFP (zfpy) and SPERR
(numcodecs-wasm-sperr), in one run:

1. nilearn's MNI152 2009a T1 template (197×233×189 uint8, a real MRI volume) at
   CR ≈ 60 and ≈ 120: each anchor swept over its error bound and its PSNR/SSIM
   interpolated (linearly in log CR) at voxfield's reached CR;
2. PSNR after 1/2/5/10 epochs at the CR-120 network, from a random start and from a
   Reptile initialisation meta-trained on nilearn's GM and WM probability maps (other
   volumes of the same template space, never the T1 itself);
3. a synthetic float32 256³ turbulence-like field (random phases, |û(k)| ∝ k^(-11/6),
   i.e. a k^(-5/3) energy spectrum; labelled synthetic) at CR ≈ 500.

voxfield figures: PSNR of the f32 decode, SSIM (voxfield compare: 7³ window),
compress and full-decode time, decode voxels/s, random access µs/point (1e6 random
points through the Python package), peak RSS of `voxfield compress`, model bytes.

    .venv/bin/python bench/bench_neural.py [--epochs 10] [--curve 1,2,5,10] [--skip-turbulence | --only-turbulence]

Needs in .venv: nilearn, nibabel, pysz, numcodecs-wasm-sperr, the voxfield package;
zfpy in .venv-zfp (it breaks numcodecs in the same venv):
`python3 -m venv .venv-zfp && .venv-zfp/bin/pip install zfpy numpy`.
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
    import voxfield
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


def anchors(vol, path, native, cli, tmp, bpps, rels, tols):
    rows = []
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
    for m in ["SZ3", "ZFP", "SPERR"]:
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


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--curve", default="1,2,5,10")
    ap.add_argument("--meta-steps", type=int, default=300)
    ap.add_argument("--turbulence-epochs", type=int, default=5)
    ap.add_argument("--skip-turbulence", action="store_true")
    ap.add_argument("--only-turbulence", action="store_true")
    ap.add_argument("--voxfield", default=os.path.join(ROOT, "target", "release", "voxfield"))
    a = ap.parse_args()
    cli = a.voxfield
    import nibabel as nib
    path = nilearn_file("mni_icbm152_t1_tal_nlin_sym_09a_converted.nii.gz")
    vol = np.asarray(nib.load(path).dataobj)
    native = vol.nbytes
    print(f"MNI152 T1 {vol.shape} {vol.dtype}, {os.cpu_count()} cores", flush=True)
    result = {"mni": {}, "curve": {}, "turbulence": {}}
    with tempfile.TemporaryDirectory() as tmp:
        if not a.only_turbulence:
            rows = anchors(vol, path, native, cli, tmp, bpps=[0.4, 0.2, 0.13, 0.1, 0.066, 0.05, 0.04],
                           rels=[0.4, 0.3, 0.2, 0.15, 0.1, 0.05], tols=[1024, 512, 256, 128, 64, 32])
            result["mni"]["anchors"] = rows
            cr120 = None
            for ratio in [60, 120]:
                vf, model = voxfield_run(cli, path, vol, native, tmp, ["--ratio", ratio, "--epochs", a.epochs],
                                         f"--ratio {ratio} --epochs {a.epochs}")
                vf["matched"] = matched(rows, vf)
                result["mni"][f"voxfield_{ratio}"] = vf
                print(json.dumps(vf, default=str), flush=True)
                if ratio == 120:
                    cr120 = vf
            # Epoch curve at the CR-120 network, random vs Reptile.
            log2 = json.loads(subprocess.run([cli, "info", model, "--json"], capture_output=True, text=True,
                                             check=True).stdout)["encoding"]["log2_table"]
            init = os.path.join(tmp, "init.vxn")
            t = time.perf_counter()
            subprocess.run([cli, "compress", "meta-train", nilearn_file("mni_icbm152_gm_tal_nlin_sym_09a_converted.nii.gz"),
                            nilearn_file("mni_icbm152_wm_tal_nlin_sym_09a_converted.nii.gz"), "-o", init,
                            "--meta-steps", str(a.meta_steps), "--log2-table", str(log2)], check=True, capture_output=True)
            result["curve"]["meta_train_s"] = time.perf_counter() - t
            for e in [int(x) for x in a.curve.split(",")]:
                # Both at the CR-120 network and size bound (--ratio with --init only bounds the file).
                for name, extra in [("random", []), ("reptile", ["--init", init])]:
                    out = os.path.join(tmp, f"c{name}{e}.vxn")
                    t = time.perf_counter()
                    subprocess.run([cli, "compress", path, "-o", out, "--epochs", str(e), "--ratio", "120", *extra],
                                   check=True, capture_output=True)
                    secs = time.perf_counter() - t
                    c = compare(cli, path, out)
                    result["curve"][f"{name}_{e}"] = {"psnr_db_u8": c["psnr_db"], "seconds": secs,
                                                      "ratio": native / os.path.getsize(out)}
                    print(name, e, result["curve"][f"{name}_{e}"], flush=True)
        if not a.skip_turbulence:
            os.makedirs(DATA, exist_ok=True)
            tpath = os.path.join(DATA, "turb256.npy")
            if not os.path.exists(tpath):
                np.save(tpath, turbulence())
            tv = np.load(tpath)
            tn = tv.nbytes
            trows = anchors(tv, tpath, tn, cli, tmp, bpps=[0.2, 0.1, 0.064, 0.05, 0.04, 0.03],
                            rels=[0.5, 0.3, 0.2, 0.1, 0.05], tols=[8.0, 4.0, 2.0, 1.0, 0.5, 0.25])
            vf, _ = voxfield_run(cli, tpath, tv, tn, tmp, ["--ratio", 500, "--epochs", a.turbulence_epochs],
                                 f"--ratio 500 --epochs {a.turbulence_epochs}")
            vf["matched"] = matched(trows, vf)
            result["turbulence"] = {"anchors": trows, "voxfield_500": vf}
            print(json.dumps(vf, default=str), flush=True)
    os.makedirs(RESULTS, exist_ok=True)
    out = os.path.join(RESULTS, "neural_turbulence.json" if a.only_turbulence else "neural.json")
    with open(out, "w") as f:
        json.dump(result, f, indent=1, default=str)
    print("written", out)


if __name__ == "__main__":
    main()
