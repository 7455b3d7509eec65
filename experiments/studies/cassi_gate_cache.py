"""The CASSI networks' mask-only work done once per mask (issue 20, item 4), measured interleaved in one process:
each row times the old and the new path alternately (A B A B ...), 1 thread, allocator tuned, and reports the
median of the per-pair ratios old / new (outputs are bit-identical; tests/test_cassi_models.py checks it).

* ``cache``: repeated calls with the same mask — the block gates recomputed every call (``GUIDANCE_CACHE``
  bytes 0) vs kept from the previous call;
* ``batch``: a batch of measurements with one mask — the mask materialised per sample (as every forward
  did before: guide and gates computed N times) vs the expanded mask ``measure`` gives, used at batch 1.

    python experiments/studies/cassi_gate_cache.py   # → results/deploy/gate_cache/summary.md
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

import zoo
import zoo.models.lorun_cassi  # noqa: F401  (the package attribute of that name is the constructor)
from zoo.utils.allocator import tune_allocator
from physics_speed import pair  # noqa: E402  (this folder: old/new alternately, median of the per-pair ratios)

LC = sys.modules["zoo.models.lorun_cassi"]
OUT = Path("results/deploy/gate_cache")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--models", nargs="+", default=["block9-cassi", "lorun-cassi-9stg"])
    ap.add_argument("--pairs", type=int, default=7)
    args = ap.parse_args()
    tune_allocator()
    torch.set_num_threads(1)
    budget = LC.GUIDANCE_CACHE["bytes"]
    rows = []
    for name in args.models:
        net = zoo.load(name).eval()
        for kind, n, size in (("cache", 1, 128), ("cache", 1, 256), ("batch", 4, 128)):
            x = torch.rand(n, net.channels, size, size, generator=torch.Generator().manual_seed(0))
            inp = net.measure(x)

            def uncached(inp=inp):
                LC.GUIDANCE_CACHE["bytes"] = 0
                net(**inp)

            def cached(inp=inp):
                LC.GUIDANCE_CACHE["bytes"] = budget
                net(**inp)

            if kind == "cache":
                old, new = uncached, cached
            else:
                full = dict(inp, mask=inp["mask"].contiguous())  # one mask copied per sample: computed N times

                def old(full=full):
                    LC.GUIDANCE_CACHE["bytes"] = 0
                    net(**full)

                new = uncached  # the expanded mask at batch 1, cache off: the broadcast alone
            with torch.no_grad():
                r = pair(old, new, reps=2, pairs=args.pairs)
            LC.GUIDANCE_CACHE["bytes"] = budget
            rows.append({"model": name, "row": kind, "input": f"{n}×{net.channels}×{size}²", **r})
            print(rows[-1], flush=True)
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "results.json").write_text(json.dumps(rows, indent=1) + "\n")
    lines = ["# CASSI mask gates once per mask, interleaved (old / new per pair; median, min–max)", "",
             f"1 thread, allocator tuned, torch {torch.__version__}, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, "
             f"{args.pairs} pairs of 2 calls. `cache`: gates recomputed every call vs kept from the previous call "
             "with the same mask; `batch`: the mask materialised per sample vs one expanded mask used at batch 1 "
             "(cache off).", "",
             "| model | row | input | old (ms) | new (ms) | speed-up | min–max |", "|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['model']} | {r['row']} | {r['input']} | {r['old_ms']:.0f} | {r['new_ms']:.0f} | "
                     f"{r['speedup']:.2f}× | {r['speedup_min']:.2f}–{r['speedup_max']:.2f} |")
    lines += ["", "Reproduce: `python experiments/studies/cassi_gate_cache.py`"]
    (OUT / "summary.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
