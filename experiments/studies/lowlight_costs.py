"""Cost of llemamba-lowlight vs image size (issue 18): params, FLOPs, latency, peak memory at 128²…1024², and the
fitted exponent b of cost ∝ pixels^b (least squares on log-log, 128² to 1024²).

FLOPs: torch's FlopCounterMode counts convolutions and linear layers only; the selective scan's element-wise work is
added analytically (per direction and pixel: ≈ 9·d_inner·N for exp(ΔA), ΔBu, the recurrence, the carry and C·h; its
backward is not in a forward count). Latency: median of 3 forward passes after a warm-up, ``--threads`` CPU threads.
Peak memory: rise of the resident-set high-water mark during one forward pass, in a fresh process per size.

    python experiments/studies/lowlight_costs.py --out results/lowlight --threads 1
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode

import zoo

SIZES = (128, 256, 512, 1024)


def _kib(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(field)


def child(size: int, threads: int) -> None:
    torch.set_num_threads(threads)
    net = zoo.create("llemamba-lowlight").eval()
    low = torch.rand(1, 3, size, size) * 0.25
    with torch.no_grad():
        net(low=torch.rand(1, 3, 32, 32) * 0.25)
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        base = _kib("VmRSS")
        net(low=low)
    print(json.dumps({"peak_mib": (_kib("VmHWM") - base) / 1024}))


def fit_exponent(px, v) -> float:
    return float(np.polyfit(np.log(px), np.log(v), 1)[0])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="results/lowlight")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--child", nargs=2, type=int)
    a = ap.parse_args()
    if a.child:
        return child(*a.child)
    torch.set_num_threads(a.threads)
    net = zoo.create("llemamba-lowlight").eval()
    cfg = zoo.get_entry("llemamba-lowlight").default_config
    blk = net.prior_r[0].block
    rows = []
    for s in SIZES:
        low = torch.rand(1, 3, s, s) * 0.25
        with torch.no_grad(), FlopCounterMode(display=False) as fc:
            net(low=low)
        scan = 2 * net.stages * 9 * blk.d_inner * blk.d_state * s * s
        with torch.no_grad():
            net(low=low)
            ts = []
            for _ in range(3):
                t = time.perf_counter()
                net(low=low)
                ts.append(time.perf_counter() - t)
        mems = []
        for _ in range(3 if s <= 512 else 1):
            out = subprocess.run([sys.executable, __file__, "--child", str(s), str(a.threads)], capture_output=True,
                                 text=True, check=True)
            mems.append(json.loads(out.stdout.strip().splitlines()[-1])["peak_mib"])
        row = {"size": s, "pixels": s * s, "gflops_counted": fc.get_total_flops() / 1e9, "gflops_scan": scan / 1e9,
               "gflops": (fc.get_total_flops() + scan) / 1e9, "latency_s": statistics.median(ts),
               "peak_mib": statistics.median(mems)}
        rows.append(row)
        print(json.dumps(row), flush=True)
    px = [r["pixels"] for r in rows]
    exps = {k: fit_exponent(px, [r[k] for r in rows]) for k in ("gflops", "latency_s", "peak_mib")}
    params = sum(p.numel() for p in net.parameters())
    summary = {"model": "llemamba-lowlight", "config": cfg, "params": params, "threads": a.threads, "rows": rows,
               "exponent_128_to_1024": exps, "loadavg": Path("/proc/loadavg").read_text().split()[:3],
               "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "costs.json").write_text(json.dumps(summary, indent=1))
    md = [f"# llemamba-lowlight cost vs image size ({a.threads} thread, {summary['date']}, load {' '.join(summary['loadavg'])})",
          "", f"{params:,} parameters. GFLOPs = 10⁹ (conv/linear counted by torch + the scan's element-wise work, analytic).",
          "", "| size | GFLOPs | of which scan | latency (s) | forward peak (MiB) |", "|---|---|---|---|---|"]
    md += [f"| {r['size']}² | {r['gflops']:.2f} | {r['gflops_scan']:.2f} | {r['latency_s']:.3f} | {r['peak_mib']:.0f} |"
           for r in rows]
    md += ["", "Fitted exponent b of cost ∝ pixels^b, 128² → 1024²: " +
           ", ".join(f"{k} {v:.3f}" for k, v in exps.items()), ""]
    (out / "costs.md").write_text("\n".join(md) + "\n")


if __name__ == "__main__":
    main()
