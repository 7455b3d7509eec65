"""Costs of the SR checkpoints vs image size, measured side by side: params, GFLOPs, latency, peak memory.

Latency runs interleave the models (A B A B …) at each size in one process, so a slow moment of the shared
machine hits both; the table gives medians and the Block/LoRun ratio. Peak memory: the bench's fresh-process probe.

    python experiments/studies/sr_costs.py --out results/sr/costs [--sizes 128 256 512] [--threads 1]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch

from zoo.api import load
from zoo.bench import profile
from zoo.utils.files import atomic_write


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--names", nargs="+", default=["lorun-sr-x4", "block9-sr-x4"])
    ap.add_argument("--sizes", nargs="+", type=int, default=[128, 256, 512])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", default="results/sr/costs")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    nets = {n: load(n) for n in a.names}
    rows = []
    for size in a.sizes:
        inputs = {n: net.example_inputs(size) for n, net in nets.items()}
        times: dict[str, list[float]] = {n: [] for n in nets}
        with torch.no_grad():
            for n, net in nets.items():
                net(**inputs[n])  # warm-up
            for _ in range(a.repeats):
                for n, net in nets.items():
                    t = time.perf_counter()
                    net(**inputs[n])
                    times[n].append(time.perf_counter() - t)
        for n, net in nets.items():
            gf = profile.flops(net, size) / 2**30
            lat = statistics.median(times[n])
            rows.append({"model": n, "size": size, "gflops": gf, "latency_s": lat, "gflop_per_s": gf * 2**30 / 1e9 / lat,
                         "peak_mem_mib": profile.peak_memory(n, None, size) / 2**20,
                         "params": profile.param_counts(net)["total"], "prior_params": profile.param_counts(net)["prior"]})
    base = a.names[0]
    md = [f"# SR costs vs output size ({a.threads} CPU thread(s), torch {torch.__version__}, "
          f"{time.strftime('%Y-%m-%d')}; latencies interleaved, median of {a.repeats})", "",
          "| model | output size | params | prior params | GFLOPs (2³⁰) | latency (s) | GFLOP/s (10⁹) | forward peak (MiB) | latency / " + base + " |",
          "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        ref = next(x for x in rows if x["model"] == base and x["size"] == r["size"])
        md.append(f"| {r['model']} | {r['size']}² | {r['params']:,} | {r['prior_params']:,} | {r['gflops']:.2f} | "
                  f"{r['latency_s']:.3f} | {r['gflop_per_s']:.1f} | {r['peak_mem_mib']:.1f} | {r['latency_s'] / ref['latency_s']:.2f} |")
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    with atomic_write(out / "summary.json", overwrite=True) as tmp:
        tmp.write_text(json.dumps({"threads": a.threads, "rows": rows}, indent=1))
    with atomic_write(out / "summary.md", overwrite=True) as tmp:
        tmp.write_text("\n".join(md) + "\n")
    print("\n".join(md))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
