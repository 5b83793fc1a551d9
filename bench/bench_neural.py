"""Neural compression, side by side in one run: voxfield's hash-grid model against
SZ3 (pysz) on nilearn's MNI152 2009a T1 template (197×233×189 uint8, a real MRI
average), both judged by the same full-grid PSNR (range = max − min, as the
hash-grid paper and Neurcomp) and compression ratio against the native u8 bytes.

    .venv/bin/python bench/bench_neural.py [--ratios 60,110] [--epochs 5] [--rel 0.2,0.1,0.05]
        [--voxfield target/release/voxfield]

Needs `pip install nilearn pysz` in the venv (bench only; the tests do not).
voxfield runs as the CLI (`compress --ratio R --epochs E`, then `compare --json`,
which decodes the model chunk by chunk); SZ3 runs in process on the float32 copy.
Results: bench/results/neural.json and a table on stdout.
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
RESULTS = os.path.join(HERE, "results")


def mni_t1():
    import nilearn
    return os.path.join(os.path.dirname(nilearn.__file__), "datasets", "data",
                        "mni_icbm152_t1_tal_nlin_sym_09a_converted.nii.gz")


def psnr(a, b):
    a = a.astype(np.float64)
    mse = np.mean((a - b.astype(np.float64)) ** 2)
    return 10 * np.log10((a.max() - a.min()) ** 2 / mse)


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
    td = time.perf_counter() - t
    return {"method": "SZ3", "setting": f"REL {rel}", "ratio_u8": vol.nbytes / comp.nbytes,
            "psnr_db": psnr(vol, dec), "compress_s": tc, "decompress_s": td}


def voxfield(cli, path, vol, ratio, epochs, tmp):
    out = os.path.join(tmp, f"m{ratio}.vxn")
    t = time.perf_counter()
    r = subprocess.run([cli, "compress", path, "-o", out, "--ratio", str(ratio), "--epochs", str(epochs)],
                       capture_output=True, text=True)
    tc = time.perf_counter() - t
    if r.returncode:
        sys.exit(r.stderr)
    dec_path = os.path.join(tmp, f"d{ratio}.npy")
    t = time.perf_counter()
    r = subprocess.run([cli, "decompress", out, "-o", dec_path, "--dtype", "f32"], capture_output=True, text=True)
    td = time.perf_counter() - t
    if r.returncode:
        sys.exit(r.stderr)
    cmp = json.loads(subprocess.run([cli, "compare", path, out, "--json"], capture_output=True, text=True,
                                    check=True).stdout)
    return {"method": "voxfield", "setting": f"--ratio {ratio} --epochs {epochs}",
            "ratio_u8": vol.nbytes / os.path.getsize(out),
            "psnr_db": psnr(vol, np.load(dec_path)), "psnr_db_u8_rounded": cmp["psnr_db"],
            "ssim_u8_rounded": cmp["ssim"], "compress_s": tc, "decompress_s": td}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ratios", default="60,110")
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--rel", default="0.2,0.1,0.05")
    ap.add_argument("--voxfield", default=os.path.join(HERE, "..", "target", "release", "voxfield"))
    a = ap.parse_args()
    import nibabel as nib
    path = mni_t1()
    vol = np.asarray(nib.load(path).dataobj)
    print(f"MNI152 T1 {vol.shape} {vol.dtype}, {os.cpu_count()} cores", flush=True)
    rows = [sz3(vol, float(r)) for r in a.rel.split(",")]
    with tempfile.TemporaryDirectory() as tmp:
        for r in a.ratios.split(","):
            rows.append(voxfield(a.voxfield, path, vol, float(r), a.epochs, tmp))
            print(rows[-1], flush=True)
    print(f"{'method':10} {'setting':28} {'CR(u8)':>8} {'PSNR dB':>8} {'compress s':>11} {'decompress s':>13}")
    for r in rows:
        print(f"{r['method']:10} {r['setting']:28} {r['ratio_u8']:8.1f} {r['psnr_db']:8.2f} "
              f"{r['compress_s']:11.2f} {r['decompress_s']:13.2f}")
    os.makedirs(RESULTS, exist_ok=True)
    with open(os.path.join(RESULTS, "neural.json"), "w") as f:
        json.dump(rows, f, indent=1)


if __name__ == "__main__":
    main()
