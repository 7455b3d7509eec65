"""Does the channels-last (NHWC) memory format speed up CPU inference? One model per family, interleaved.

For each (model, size): the published network in the default (NCHW) layout and a deep copy converted with
``net.to(memory_format=torch.channels_last)`` (weights only: a convolution with NHWC weights returns NHWC,
and the layout propagates), the same inputs, forward pass, no grad, eval mode. Every cell is timed once per
round, in a shuffled order each round, all in one process (machine-load drift hits every cell alike);
the table gives medians and the median of the per-round ratios, and the largest difference between the
two outputs (the layout changes the summation order of oneDNN's kernels, nothing else).

    OMP_NUM_THREADS=1 python experiments/studies/channels_last.py --out results/deploy/channels_last --threads 1
"""

from __future__ import annotations

import copy
import statistics

import torch

import zoo
from _summary import interleaved, start_timing, timing_args, timing_info, write_timing  # noqa: E402  (this folder)

MODELS = ("lorun-cs-r25", "block9-cs-r25", "ssopga-flash", "ssopga-pansharpen-wv", "lorun-sr-x4", "llemamba-lowlight",
          "lorun-cassi-9stg", "block9-cassi")


def main() -> None:
    a = timing_args("results/deploy/channels_last", 7, sizes={"default": "128,256,512"},
                    models={"default": ",".join(MODELS)}).parse_args()
    out = start_timing(a)
    sizes = [int(s) for s in a.sizes.split(",")]
    models = a.models.split(",")
    nets = {}
    for m in models:
        nets[(m, "nchw")] = zoo.load(m, channels_last=False).eval()
        nets[(m, "nhwc")] = copy.deepcopy(nets[(m, "nchw")]).to(memory_format=torch.channels_last)
    torch.manual_seed(0)
    inputs = {}
    for m in models:
        for s in sizes:
            try:
                inputs[(m, s)] = nets[(m, "nchw")].example_inputs(s)
            except ValueError as e:  # a CASSI mask is 256²: larger sizes do not exist for those networks
                print(f"{m} {s}²: skipped ({e})")
    cells = [(m, s, f) for (m, s) in inputs for f in ("nchw", "nhwc")]
    diff = {}
    with torch.no_grad():
        for m, s in inputs:  # warm-up, and the outputs of the two layouts
            y0, y1 = (nets[(m, f)](**inputs[(m, s)]) for f in ("nchw", "nhwc"))
            diff[(m, s)] = float((y0 - y1).abs().max())
        times = interleaved(cells, lambda c: nets[(c[0], c[2])](**inputs[(c[0], c[1])]), a.rounds)
    rows = []
    for m, s in inputs:
        a0, a1 = times[(m, s, "nchw")], times[(m, s, "nhwc")]
        ratios = [x / y for x, y in zip(a0, a1)]
        rows.append({"model": m, "size": s, "nchw_s": statistics.median(a0), "nhwc_s": statistics.median(a1),
                     "speedup": statistics.median(ratios), "speedup_min": min(ratios), "speedup_max": max(ratios),
                     "max_abs_diff": diff[(m, s)]})
    info = timing_info(a, rows)
    write_timing(out, info, "Channels-last (NHWC) vs default (NCHW) layout, CPU inference",
                 "Forward pass of the published weights (no grad, eval)",
                 "speedup = NCHW time / NHWC time, median over rounds of the per-round ratio (min–max beside it). "
                 "CASSI networks: 256² at most (their mask).",
                 ["model", "size", "NCHW (s)", "NHWC (s)", "speedup", "per-round range", "max abs diff"],
                 [f"| {r['model']} | {r['size']}² | {r['nchw_s']:.3f} | {r['nhwc_s']:.3f} | {r['speedup']:.2f} | "
                  f"{r['speedup_min']:.2f}–{r['speedup_max']:.2f} | {r['max_abs_diff']:.1e} |" for r in rows],
                 "channels_last.py")


if __name__ == "__main__":
    main()
