"""How much of the synthetic exposure can a low-light network read from the image's global statistics, with and
without light sources in the scene? And where do real night photos fall against the synthetic range?

The synthetic low-light test is scored without GT-mean, so most of a network's PSNR is its guess of the exposure e
(logU(0.03, 0.3) per image). This fits log e by least squares on subsets of :func:`zoo.physics.lowlight.global_stats`
(the five moments; + the lower quantiles; + all six quantiles) over degraded BSD200/T91 training images (fit on
the first 200, residual on the rest), once with the plain degradation (the test law) and once with lamps in half
of the images (``LowLightDegradation(lamps=0.5)``, which clip as real street lights do). Then the statistics of the
real photos in ``lowlight/real_low`` against the synthetic min–max.

    python experiments/studies/lowlight_exposure_fit.py --out results/lowlight/exposure_fit
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from zoo.data.lowlight import list_rgb_images, read_rgb
from zoo.data.paths import resolve_path
from zoo.physics.lowlight import STATS_QUANTILES, LowLightDegradation, global_stats
from _summary import write_summary  # noqa: E402  (experiments/studies, the script's folder)

NAMES = ["mean", "std", "log R/avg", "log G/avg", "log B/avg", *(f"q{q:g}" for q in STATS_QUANTILES)]
SUBSETS = {"five moments": list(range(5)), "+ q0.05, q0.25, q0.5": list(range(8)), "+ q0.75": list(range(9)),
           "+ all six quantiles": list(range(11))}


def features(images: list[torch.Tensor], lamps: float, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    deg, feats, loge = LowLightDegradation(lamps=lamps), [], []
    for i, x in enumerate(images):
        s = seed * 10000 + i
        p = deg.sample_params(1, torch.Generator().manual_seed(s))  # pair() draws the same parameters first
        low, _ = deg.pair(x, generator=torch.Generator().manual_seed(s))
        feats.append(global_stats(low)[0])
        loge.append(torch.log(p["exposure"][0]))
    return torch.stack(feats), torch.stack(loge)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="results/lowlight/exposure_fit")
    ap.add_argument("--images", type=int, default=260)
    ap.add_argument("--fit", type=int, default=200)
    a = ap.parse_args()
    files = list_rgb_images("images/BSD200") + list_rgb_images("images/T91")
    images = [read_rgb(f)[None] for f in files[:a.images]]
    rows, ranges = [], {}
    for lamps in (0.0, 0.5):
        f, y = features(images, lamps, seed=1)
        ranges[lamps] = (f.min(0).values, f.max(0).values)
        for name, idx in SUBSETS.items():
            x = torch.cat([f[:, idx], torch.ones(len(f), 1)], 1).double()
            w = torch.linalg.lstsq(x[:a.fit], y[:a.fit, None].double()).solution
            r = (x[a.fit:] @ w)[:, 0] - y[a.fit:]
            rows.append({"lamps": lamps, "features": name, "residual_std": float(r.std()),
                         "factor": float(torch.exp(r.std()))})
    real = {}
    lo, hi = ranges[0.0]
    for p in sorted(resolve_path("lowlight/real_low").glob("*/*")):
        s = global_stats(read_rgb(p)[None])[0]
        real[f"{p.parent.name}/{p.name}"] = {"stats": [round(float(v), 3) for v in s],
                                             "outside": [NAMES[i] for i in range(len(s)) if not lo[i] <= s[i] <= hi[i]]}
    info = {"images": a.images, "fit": a.fit, "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
            "rows": rows, "synthetic_range": {str(k): [v[0].tolist(), v[1].tolist()] for k, v in ranges.items()},
            "real": real}
    md = ["# Exposure from global statistics: synthetic low-light images, with and without light sources", "",
          f"{a.images} BSD200/T91 training images degraded once (seed 1), least-squares fit of log e on the first "
          f"{a.fit}, residual on the other {a.images - a.fit} ({info['date']}). factor = exp(residual std): the typical "
          "brightness error of the best linear guess.", "",
          "| lamps in | features | residual std of log e | factor |", "|---|---|---|---|"]
    md += [f"| {r['lamps']:.0%} of images | {r['features']} | {r['residual_std']:.3f} | ×{r['factor']:.2f} |" for r in rows]
    md += ["", "Real photos (`lowlight/real_low`): statistics outside the min–max of the plain synthetic images:", "",
           "| photo | outside the synthetic range |", "|---|---|"]
    md += [f"| {k} | {', '.join(v['outside']) or '–'} |" for k, v in real.items()]
    md += ["", "Reproduce: `python experiments/studies/lowlight_exposure_fit.py`", ""]
    write_summary(Path(a.out), info, md)


if __name__ == "__main__":
    main()
