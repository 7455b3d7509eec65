"""A second CASSI floor: choose PnP-GAP's denoiser and schedule on the *training* cube (never CAVE-2).

Candidates, scored on the simulated measurement (TSA 256² mask, noiseless, as the bench) of
``cassi/cave256_train``:

* **PnP-GAP + ResUNet prior** (:func:`zoo.tasks.cassi.band_triplet_denoiser`, ``lorun-sr-x2``'s
  level-conditioned prior on band triplets as RGB, PnP-HSI's trick), warm-started from the GAP-TV
  floor as PnP-HSI does, ``K`` iterations with the level ``β`` decreasing geometrically;
* **spatial–spectral GAP-TV** (:func:`zoo.solvers.pnp_gap` with :func:`zoo.solvers.sstv_denoise`):
  TV over H, W and (weight ``μ``) the bands, TV weight constant, from the minimum-norm start.

Selection: best PSNR (SSIM/SAM beside it). Writes ``results/cassi/pnp/{summary.md,summary.json}``.

    OMP_NUM_THREADS=1 python experiments/studies/cassi_pnp.py [--data-root D]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from zoo.data.cassi import list_cubes, read_cassi_mask, read_cube
from zoo.data.paths import find_data
from zoo.metrics import psnr, sam, ssim
from zoo.physics import SDCASSI
from zoo.solvers import gap_tv, geometric_schedule, pnp_gap, sstv_denoise
from zoo.tasks.cassi import GAPTV_SETTINGS, band_triplet_denoiser

ROOT = Path(__file__).resolve().parents[2]
PRIOR = [  # (iterations, beta start, beta end)
    (20, 0.5, 0.1), (20, 0.2, 0.05), (10, 0.1, 0.02)]
# (iterations, TV weight, mu, TV iterations); per-voxel TV: the joint TV of GAP-TV sums 28 bands under one root, so
# the same smoothing needs a weight ~sqrt(28) ≈ 5 times GAP-TV's 1
SSTV = [(120, 5.0, 0.5, 10), (120, 5.0, 1.0, 10), (120, 10.0, 1.0, 10), (120, 2.5, 1.0, 10), (120, 2.5, 0.5, 10),
        (120, 1.25, 1.0, 10), (120, 1.25, 0.5, 10), (120, 0.625, 1.0, 10), (120, 0.625, 2.0, 10),
        (120, 0.3125, 1.0, 10), (120, 0.3125, 0.5, 10)]


def _score(x_hat: torch.Tensor, x: torch.Tensor) -> dict[str, float]:
    x_hat = x_hat.clamp(0, 1)
    return {"psnr": float(psnr(x_hat, x)[0]), "ssim": float(ssim(x_hat, x)[0]), "sam": float(sam(x_hat, x)[0])}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data-root")
    ap.add_argument("--out", default=str(ROOT / "results/cassi/pnp"))
    ap.add_argument("--threads", type=int, default=1)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    op = SDCASSI(read_cassi_mask(find_data("cassi/mask_256.mat", a.data_root)), bands=28, step=2)
    cubes = [(f.stem, torch.from_numpy(read_cube(f))[None]) for f in list_cubes(find_data("cassi/cave256_train", a.data_root))]
    den = band_triplet_denoiser("lorun-sr-x2")
    rows: list[dict] = []

    def add(row: dict) -> None:
        rows.append(row)
        print(row, flush=True)
        Path(a.out).mkdir(parents=True, exist_ok=True)
        (Path(a.out) / "summary.json").write_text(json.dumps(rows, indent=1))

    for stem, x in cubes:
        y = op.A(x)
        t0 = time.perf_counter()
        warm = gap_tv(op, y, **GAPTV_SETTINGS)
        t_warm = time.perf_counter() - t0
        add({"cube": stem, "method": "GAP-TV (the floor)", **GAPTV_SETTINGS, **_score(warm, x), "seconds": t_warm})
        for k, w, mu, ti in SSTV:
            t0 = time.perf_counter()
            out = pnp_gap(op, y, lambda z, s, w=w, mu=mu, ti=ti: sstv_denoise(z, w, mu, ti), [1.0] * k)
            add({"cube": stem, "method": "GAP + spatial-spectral TV", "iters": k, "tv_weight": w, "mu": mu,
                 "tv_iters": ti, **_score(out, x), "seconds": time.perf_counter() - t0})
        for k, b0, b1 in PRIOR:
            t0 = time.perf_counter()
            out = pnp_gap(op, y, den, geometric_schedule(b0, b1, k), x0=warm)
            add({"cube": stem, "method": "PnP-GAP + ResUNet prior (band triplets), GAP-TV start", "iters": k,
                 "beta": [b0, b1], **_score(out, x), "seconds": t_warm + time.perf_counter() - t0})
    best = max(rows[1:], key=lambda r: r["psnr"])
    lines = ["# CASSI: a second floor (PnP-GAP), chosen on the training cube", "",
             f"Command: `OMP_NUM_THREADS=1 python experiments/studies/cassi_pnp.py` ({time.strftime('%Y-%m-%d')}, "
             f"{a.threads} CPU thread(s)). Training cube(s): {', '.join(s for s, _ in cubes)} (cassi/cave256_train); "
             "never CAVE-2. Noiseless simulated measurement, TSA 256² mask.", "",
             "| cube | method | setting | PSNR | SSIM | SAM (deg) | s |", "|---|---|---|---|---|---|---|"]
    for r in rows:
        setting = ", ".join(f"{k} {v}" for k, v in r.items() if k not in ("cube", "method", "psnr", "ssim", "sam", "seconds"))
        lines.append(f"| {r['cube']} | {r['method']} | {setting} | {r['psnr']:.2f} | {r['ssim']:.4f} | {r['sam']:.2f} | {r['seconds']:.0f} |")
    lines += ["", f"Best: {best['method']} ({', '.join(f'{k} {v}' for k, v in best.items() if k not in ('cube', 'method', 'psnr', 'ssim', 'sam', 'seconds'))}): "
              f"{best['psnr']:.2f} dB / {best['ssim']:.4f} / {best['sam']:.2f} deg."]
    (Path(a.out) / "summary.md").write_text("\n".join(lines) + "\n")
    print((Path(a.out) / "summary.md").read_text())


if __name__ == "__main__":
    main()
