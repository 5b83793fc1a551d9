"""nilearn's MNI152 2009a T1 template (197×233×189 uint8) as a memory-mappable .npy in bench/data,
made once: the volume the render and plane benchmarks share."""

from pathlib import Path

import numpy as np

DATA = Path(__file__).resolve().parent / "data"


def mni():
    import nibabel as nib
    import nilearn

    p = Path(nilearn.__file__).parent / "datasets" / "data" / "mni_icbm152_t1_tal_nlin_sym_09a_converted.nii.gz"
    out = DATA / "mni_t1.npy"
    if not out.exists():
        DATA.mkdir(parents=True, exist_ok=True)
        np.save(out, np.ascontiguousarray(np.asarray(nib.load(p).dataobj)))
    return out
