"""Writes crates/voxfield-render/src/colormap/tables.rs: matplotlib's 256-entry
tables of the perceptually uniform colormaps, as f32 RGB (matplotlib's own
numbers; voxfield's renderer looks colours up the way matplotlib does).

    .venv/bin/python scripts/make_colormaps.py
"""

import pathlib

import matplotlib
import numpy as np

NAMES = ["viridis", "magma", "inferno", "plasma", "cividis"]
out = pathlib.Path(__file__).resolve().parents[1] / "crates/voxfield-render/src/colormap/tables.rs"
lines = [
    f"//! matplotlib {matplotlib.__version__}'s colormap tables (written by scripts/make_colormaps.py; do not edit).",
    "",
]
for name in NAMES:
    rgb = np.asarray(matplotlib.colormaps[name].colors, dtype=np.float64)
    assert rgb.shape == (256, 3), (name, rgb.shape)
    lines.append(f"pub(super) const {name.upper()}: [[f32; 3]; 256] = [")
    for r, g, b in rgb.astype(np.float32):
        lines.append(f"    [{r!r}, {g!r}, {b!r}],".replace("np.float32(", "").replace(")", ""))
    lines.append("];")
    lines.append("")
out.parent.mkdir(parents=True, exist_ok=True)
out.write_text("\n".join(lines))
print("wrote", out)
