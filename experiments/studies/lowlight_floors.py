"""Classical low-light floors (issue 18): tune on training images, score on the synthetic test set.

Tuning set: 12 centre 192×192 crops of images/BSD200 (training images; never the test set), degraded by
``LowLightDegradation`` with seeds 500+i. Gamma ``I^γ``: γ on a grid; LIME (``zoo.solvers.lime``): α × γ on a grid;
histogram equalisation (HSV value) has no parameter. The best setting of each (mean PSNR on the tuning set) is then
scored on the task's test set (``CBSD68-synthetic``, the fixed seeds of ``zoo bench``), in this one run.

    python experiments/studies/lowlight_floors.py --out results/lowlight
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from zoo.data.lowlight import list_rgb_images, read_rgb
from zoo.metrics import psnr, ssim
from zoo.physics.lowlight import LowLightDegradation
from zoo.solvers.lime import gamma_correction, histogram_equalisation, lime
from zoo.tasks import get_task


def tuning_set(root: str | None, n: int = 12, crop: int = 192):
    deg = LowLightDegradation()
    out = []
    for i, f in enumerate(list_rgb_images("images/BSD200", root)[:n]):
        x = read_rgb(f)
        h, w = x.shape[-2:]
        t, l = (h - crop) // 2, (w - crop) // 2
        x = x[None, :, t:t + crop, l:l + crop]
        out.append((deg(x, generator=torch.Generator().manual_seed(500 + i)), x))
    return out


def mean_psnr(fn, items) -> float:
    return float(np.mean([float(psnr(fn(lo), hi)[0]) for lo, hi in items]))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="results/lowlight")
    ap.add_argument("--data-root")
    ap.add_argument("--limit", type=int)
    a = ap.parse_args()
    torch.set_num_threads(1)
    t0 = time.time()
    tune = tuning_set(a.data_root)
    grid_gamma = [0.25, 0.3, 0.35, 0.4, 0.45, 0.5, 0.6]
    g_scores = {g: mean_psnr(lambda lo, g=g: gamma_correction(lo, g), tune) for g in grid_gamma}
    best_g = max(g_scores, key=g_scores.get)
    l_scores = {}
    for al in (0.05, 0.15, 0.5):
        for ga in (0.5, 0.65, 0.8, 1.0):
            l_scores[f"{al},{ga}"] = mean_psnr(lambda lo, al=al, ga=ga: lime(lo, al, ga), tune)
    best_l = max(l_scores, key=l_scores.get)
    he_tune = mean_psnr(histogram_equalisation, tune)
    al, ga = (float(v) for v in best_l.split(","))
    methods = {
        f"gamma (I^{best_g})": lambda lo: gamma_correction(lo, best_g),
        "histogram equalisation (HSV value)": histogram_equalisation,
        f"LIME (alpha {al}, gamma {ga}, no BM3D)": lambda lo: lime(lo, al, ga),
        "input (no enhancement)": lambda lo: lo,
    }
    task = get_task("lowlight")
    items = task.load_testset("CBSD68-synthetic", a.data_root)[: a.limit]
    res = {}
    for name, fn in methods.items():
        p, s, pg = [], [], []
        for _, b in items:
            o = fn(b["inputs"]["low"])
            v = task.score(o, b["target"], b["inputs"])
            p.append(v["psnr"]), s.append(v["ssim"]), pg.append(v["psnr_gtmean"])
        res[name] = {"psnr": float(np.mean(p)), "ssim": float(np.mean(s)), "psnr_gtmean": float(np.mean(pg)),
                     "images": len(items)}
        print(name, res[name], flush=True)
    summary = {"tuning": {"set": "12 centre 192x192 crops of images/BSD200, seeds 500+i",
                          "gamma": g_scores, "lime_alpha_gamma": l_scores, "he": he_tune,
                          "chosen": {"gamma": best_g, "lime": best_l}},
               "test_set": "CBSD68-synthetic (zoo bench protocol)", "results": res,
               "best_floor": max((k for k in res if not k.startswith("input")), key=lambda k: res[k]["psnr"]),
               "seconds": round(time.time() - t0, 1), "threads": 1}
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "floors.json").write_text(json.dumps(summary, indent=1))
    md = ["# Classical low-light floors on CBSD68-synthetic", "",
          "Tuned on training images only (12 BSD200 crops); scored on the 68 CBSD68 test images with the fixed seeds "
          "of `zoo bench` (PSNR without GT-mean; `psnr_gtmean` with it).", "",
          "| method | PSNR | SSIM | PSNR (GT-mean) | tuning-set PSNR |", "|---|---|---|---|---|"]
    tun = {f"gamma (I^{best_g})": g_scores[best_g], "histogram equalisation (HSV value)": he_tune,
           f"LIME (alpha {al}, gamma {ga}, no BM3D)": l_scores[best_l]}
    for k, v in res.items():
        md.append(f"| {k} | {v['psnr']:.2f} | {v['ssim']:.4f} | {v['psnr_gtmean']:.2f} | "
                  f"{tun[k]:.2f} |" if k in tun else f"| {k} | {v['psnr']:.2f} | {v['ssim']:.4f} | {v['psnr_gtmean']:.2f} | – |")
    md += ["", f"Gamma grid {g_scores}; LIME grid (alpha,gamma) {l_scores}."]
    (out / "floors.md").write_text("\n".join(md) + "\n")


if __name__ == "__main__":
    main()
