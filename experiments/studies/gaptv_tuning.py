"""Choose GAP-TV's setting for the CASSI floor on *training* cubes (never on the CAVE-2 test set).

A grid over outer iterations, TV weight and TV iterations, scored on simulated measurements (the
TSA 256² mask, noiseless, as the bench) of the training cube(s), `cassi/cave256_train/*.mat`. Selection: the best mean
PSNR; SSIM and SAM are reported beside it. Writes `results/cassi/gaptv_tuning/summary.{md,json}`.

    python experiments/studies/gaptv_tuning.py [--data-root D] [--out results/cassi/gaptv_tuning]
"""

from __future__ import annotations

import argparse
import itertools
import json
import time
from pathlib import Path

import torch

from zoo.data.cassi import list_cubes, read_cassi_mask, read_cube
from zoo.data.paths import find_data
from zoo.metrics import psnr, sam, ssim
from zoo.physics import SDCASSI
from zoo.solvers import gap_tv

ROOT = Path(__file__).resolve().parents[2]
GRID = {"iters": (60, 120), "tv_weight": (1.0, 2.0, 4.0, 8.0), "tv_iters": (5, 10)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data-root")
    ap.add_argument("--out", default=str(ROOT / "results/cassi/gaptv_tuning"))
    a = ap.parse_args()
    torch.set_num_threads(2)
    op = SDCASSI(read_cassi_mask(find_data("cassi/mask_256.mat", a.data_root)), bands=28, step=2)
    cubes = []
    for f in list_cubes(find_data("cassi/cave256_train", a.data_root)):
        c = torch.from_numpy(read_cube(f))[None]
        cubes.append((f.stem, c))
    rows = []
    for it, w, ti in itertools.product(*GRID.values()):
        t0, scores = time.perf_counter(), []
        for _, x in cubes:
            x_hat = gap_tv(op, op.A(x), iters=it, tv_weight=w, tv_iters=ti).clamp(0, 1)
            scores.append((float(psnr(x_hat, x)[0]), float(ssim(x_hat, x)[0]), float(sam(x_hat, x)[0])))
        m = [sum(s[i] for s in scores) / len(scores) for i in range(3)]
        rows.append({"iters": it, "tv_weight": w, "tv_iters": ti, "psnr": m[0], "ssim": m[1], "sam": m[2],
                     "seconds": (time.perf_counter() - t0) / len(cubes)})
        print(rows[-1], flush=True)
    best = max(rows, key=lambda r: r["psnr"])
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    summary = {"training_cubes": [n for n, _ in cubes], "grid": GRID, "selection": "best mean PSNR on the training cubes",
               "best": best, "rows": rows}
    (out / "summary.json").write_text(json.dumps(summary, indent=1))
    lines = ["# GAP-TV setting for the CASSI floor, chosen on training cubes", "",
             f"Training cubes: {', '.join(summary['training_cubes'])} (TSA 256² mask, noiseless). "
             f"Selection: {summary['selection']}. Command: `python experiments/studies/gaptv_tuning.py`.", "",
             "| iters | tv_weight | tv_iters | psnr | ssim | sam | s per cube |", "|---|---|---|---|---|---|---|"]
    for r in sorted(rows, key=lambda r: -r["psnr"]):
        mark = " **(chosen)**" if r is best else ""
        lines.append(f"| {r['iters']} | {r['tv_weight']:g} | {r['tv_iters']} | {r['psnr']:.2f}{mark} | {r['ssim']:.4f} | "
                     f"{r['sam']:.2f} | {r['seconds']:.1f} |")
    (out / "summary.md").write_text("\n".join(lines) + "\n")
    print("best:", best)


if __name__ == "__main__":
    main()
