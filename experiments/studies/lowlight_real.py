"""Before/after pictures of the real low-light photos (lowlight/real_low: 3 LOL eval15 lows, the LIME set).

Each grid: input | histogram equalisation | LIME (the tuned floor) | llemamba-lowlight (``zoo restore`` path: tiled,
tile 512 / overlap 64, the whole photo's global statistics passed to every tile). Also a seam check on the largest
photo: the tiled output vs a whole-image pass (PSNR, and the error on tile borders vs elsewhere). PNGs stay out of git
(they show the data set's images): results/lowlight/real/*.png; numbers in results/lowlight/real.json.

    python experiments/studies/lowlight_real.py --weights runs/llemamba-lowlight/export
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

import zoo
from zoo.data.lowlight import read_rgb
from zoo.data.paths import resolve_path
from zoo.models.llemamba import global_stats
from zoo.solvers.lime import histogram_equalisation, lime
from zoo.tasks import get_task


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--weights", help="a run's export folder (default: the published checkpoint)")
    ap.add_argument("--out", default="results/lowlight")
    ap.add_argument("--lime", default="0.5,0.65", help="alpha,gamma of the tuned LIME floor")
    ap.add_argument("--tile", type=int, default=512)
    a = ap.parse_args()
    torch.set_num_threads(1)
    net = zoo.load("llemamba-lowlight", path=a.weights, verify=a.weights is None).eval()
    task = get_task("lowlight")
    al, ga = (float(v) for v in a.lime.split(","))
    src = resolve_path("lowlight/real_low")
    files = sorted(src.glob("*/*"))
    out = Path(a.out) / "real"
    out.mkdir(parents=True, exist_ok=True)
    report = {"photos": {}, "lime": {"alpha": al, "gamma": ga}, "tile": a.tile, "overlap": 64}
    for f in files:
        low = read_rgb(f)[None]
        t = time.perf_counter()
        ours = task.run(net, {"low": low}, tile=a.tile, overlap=64).clamp(0, 1)
        secs = time.perf_counter() - t
        pics = [low, histogram_equalisation(low), lime(low, al, ga), ours]
        grid = np.concatenate([task.to_image(p) for p in pics], axis=1)
        name = f"{f.parent.name}_{f.stem}"
        Image.fromarray(grid).save(out / f"{name}.png")
        m = ours[0].flatten(1).mean(1)
        report["photos"][name] = {"size": list(low.shape[-2:]), "seconds": round(secs, 2),
                                  "mean_in": float(low.mean()), "mean_out": float(ours.mean()),
                                  "rgb_mean_out": [round(float(v), 4) for v in m]}
        print(name, report["photos"][name], flush=True)
    # seam check on the largest photo: tiled (tile 256, overlap 64) vs whole image
    big = max(files, key=lambda f: np.prod(Image.open(f).size))
    low = read_rgb(big)[None]
    whole = task.run(net, {"low": low}, tile=4096, overlap=0).clamp(0, 1)
    tiled = task.run(net, {"low": low}, tile=256, overlap=64).clamp(0, 1)
    err = (tiled - whole).abs()
    h, w = low.shape[-2:]
    border = torch.zeros(h, w, dtype=torch.bool)  # the overlap bands of the tiles (step 192 = tile − overlap)
    for p in range(192, h, 192):
        border[p:p + 64, :] = True
    for p in range(192, w, 192):
        border[:, p:p + 64] = True
    report["seam_check"] = {"photo": big.name, "psnr_tiled_vs_whole": float(10 * torch.log10(1 / err.pow(2).mean())),
                            "max_abs": float(err.max()), "mean_abs_in_overlaps": float(err[..., border].mean()),
                            "mean_abs_elsewhere": float(err[..., ~border].mean()) if (~border).any() else None}
    Image.fromarray(np.concatenate([task.to_image(whole), task.to_image(tiled),
                                    task.to_image((err * 10).clamp(0, 1))], 1)).save(out / "seam_check.png")
    print(report["seam_check"])
    (Path(a.out) / "real.json").write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
