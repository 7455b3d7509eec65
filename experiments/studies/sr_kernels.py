"""The 12-kernel protocol per kernel: mean Y-PSNR of each model (and the bicubic floor) for every kernel and noise level.

Reads the per-image rows `zoo bench` wrote (results/sr/kernels12/per_image.csv; item names end with the kernel name)
and writes results/sr/kernels12_by_kernel/summary.{md,json}.

    python experiments/studies/sr_kernels.py [--bench results/sr/kernels12] [--out results/sr/kernels12_by_kernel]
"""

from __future__ import annotations

import argparse
import csv
import json
from collections import defaultdict
from pathlib import Path

from zoo.physics.sr import usrnet_kernels
from zoo.utils.files import atomic_write


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--bench", default="results/sr/kernels12")
    ap.add_argument("--out", default="results/sr/kernels12_by_kernel")
    a = ap.parse_args()
    rows = list(csv.DictReader(open(Path(a.bench) / "per_image.csv")))
    kernels = [n for n, _ in usrnet_kernels(4)]
    acc: dict[tuple[str, str, str], list[float]] = defaultdict(list)
    for r in rows:
        k = next(k for k in kernels if r["image"].endswith("_" + k))
        acc[(r["dataset"], r["model"], k)].append(float(r["psnr"]))
        if r.get("floor_psnr"):
            acc[(r["dataset"], "bicubic (floor)", k)].append(float(r["floor_psnr"]))
    sets = sorted({d for d, _, _ in acc})
    models = sorted({m for _, m, _ in acc}, key=lambda m: (m.startswith("bicubic"), m))
    md = ["# The 12-kernel protocol per kernel (Y-PSNR, dB; from " + a.bench + "/per_image.csv)", ""]
    out = {}
    for d in sets:
        n = len(acc[(d, models[0], kernels[0])])
        md += [f"## {d} ({n} images per kernel)", "", "| method | " + " | ".join(kernels) + " |",
               "|---|" + "---|" * len(kernels)]
        for m in models:
            vals = [sum(acc[(d, m, k)]) / max(1, len(acc[(d, m, k)])) for k in kernels]
            out.setdefault(d, {})[m] = dict(zip(kernels, vals))
            md.append(f"| {m} | " + " | ".join(f"{v:.2f}" for v in vals) + " |")
        md.append("")
    o = Path(a.out)
    o.mkdir(parents=True, exist_ok=True)
    with atomic_write(o / "summary.json", overwrite=True) as tmp:
        tmp.write_text(json.dumps(out, indent=1))
    with atomic_write(o / "summary.md", overwrite=True) as tmp:
        tmp.write_text("\n".join(md) + "\n")
    print("\n".join(md))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
