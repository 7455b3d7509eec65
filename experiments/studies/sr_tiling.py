"""Tiled vs whole-image super-resolution: how far apart they are, per tile size and overlap.

The data step is a global FFT: a tile restored alone differs from the whole image near its borders (the reflect
padding stands in for its missing surroundings). Restoring each tile with ``context`` LR pixels of its surroundings
and cropping them away removes that; the overlap is then blended with linear ramps. Measured on the official Set5 ×4 LR images (whole images
fit in memory, so the comparison is possible); the table gives the max |tiled − whole| and the PSNR between them.

    python experiments/studies/sr_tiling.py --out results/sr/tiling [--name lorun-sr-x4]
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import torch

from zoo.api import load
from zoo.inference import restore_inputs_tiled
from zoo.tasks import get_task
from zoo.utils.files import atomic_write


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--name", default="lorun-sr-x4")
    ap.add_argument("--data-root")
    ap.add_argument("--out", default="results/sr/tiling")
    ap.add_argument("--threads", type=int, default=1)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    net = load(a.name)
    task = get_task("sr")
    items = [(n, b) for n, b in task.load_testset("Set5", a.data_root) if task.compatible(net, b)]
    rows = []
    for tile, overlap, context in ((32, 8, 0), (64, 24, 0), (32, 8, 8), (32, 8, 16), (64, 8, 16), (48, 4, 24)):
        worst, mse = 0.0, []
        for _, b in items:
            with torch.no_grad():
                whole = net(**b["inputs"]).float()
            tiled = restore_inputs_tiled(net, b["inputs"], tile=tile, overlap=overlap, like="lr",
                                         scale=int(b["inputs"]["scale"]), context=context)
            d = (tiled.clamp(0, 1) - whole.clamp(0, 1))
            worst = max(worst, float(d.abs().max()))
            mse.append(float((d**2).mean()))
        rows.append({"tile": tile, "overlap": overlap, "context": context, "max_abs": worst,
                     "psnr_between_db": 10 * math.log10(1 / max(sum(mse) / len(mse), 1e-20))})
    md = [f"# Tiled vs whole image, {a.name} on Set5 ×{net.physics.scale} (official LR; tile/overlap in LR pixels)", "",
          "| LR tile | overlap | context | max abs difference | PSNR tiled vs whole (dB) |", "|---|---|---|---|---|"]
    md += [f"| {r['tile']} | {r['overlap']} | {r['context']} | {r['max_abs']:.2e} | {r['psnr_between_db']:.1f} |"
           for r in rows]
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    with atomic_write(out / "summary.json", overwrite=True) as tmp:
        tmp.write_text(json.dumps(rows, indent=1))
    with atomic_write(out / "summary.md", overwrite=True) as tmp:
        tmp.write_text("\n".join(md) + "\n")
    print("\n".join(md))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
