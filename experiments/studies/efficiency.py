"""Inference efficiency of one model per family: whole image vs auto-tiled, against the machine's own conv rate.

For each model and output size (128² … 2048²; SR: the HR size, the input is its 1/4): latency of the task's own
restore (``task.run``: whole = one tile covering the image; tiled = the tile :func:`zoo.inference.auto_tile` picks
for this model here, with ``whole_max=0`` so it tiles at every size), GFLOP/s, the fraction of the machine's
64→64 3×3 convolution rate (1×64×256² input, measured before every model in a fresh process with the allocator
tuned, :func:`reference_conv_rate`, so the reference is the arithmetic, not this process's heap), and the peak RSS of
the process during the pass (``/proc/self/clear_refs`` resets the high-water mark before it; the model, torch and
earlier allocations the allocator keeps are included, so it is an upper bound of what the pass needs).

GFLOP/s = useful work / wall seconds: the FLOPs of the *whole-image* forward (zoo.bench.profile's FlopCounterMode
count at 256², scaled by pixels — the networks are convolutional, their FLOPs are linear in pixels; counted ops only:
convolutions, linear layers, matmuls; LLEMamba's element-wise scan is not in the count), so a tiled run's overlap
recomputation shows as a lower rate. A row whose predicted time (per-pixel latency of the previous size × pixels)
exceeds ``--whole-limit`` s (whole) or ``--tiled-limit`` s (tiled) is skipped and marked so. CASSI has no tiling
(the dispersion shifts every band along W; the task restores whole measurements) and its mask is 256²: rows up to
256² only.

    OMP_NUM_THREADS=1 nohup python experiments/studies/efficiency.py --threads 1 > runs/efficiency/log.txt 2>&1 &
    # as the zoo CLI runs (glibc thresholds raised, zoo.utils.allocator):
    OMP_NUM_THREADS=1 python experiments/studies/efficiency.py --threads 1 --allocator --out results/deploy/efficiency_allocator
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

import zoo
from zoo.bench.profile import flops, status_kib
from zoo.inference import auto_tile
from zoo.tasks import get_task
from zoo.utils.allocator import tune_allocator
from _summary import write_summary  # noqa: E402  (experiments/studies, the script's folder)

MODELS = ("lorun-cs-r25", "ssopga-flash", "lorun-sr-x4", "llemamba-lowlight", "lorun-cassi-9stg")
SIZES = (128, 256, 512, 1024, 2048)


def conv_rate(repeats: int = 5) -> float:
    """GFLOP/s of a 64→64 3×3 convolution on a 1×64×256² input (2·64·64·9 FLOPs per pixel), in this process."""
    x, w = torch.rand(1, 64, 256, 256), torch.rand(64, 64, 3, 3)
    with torch.no_grad():
        F.conv2d(x, w, padding=1)
        ts = []
        for _ in range(repeats):
            t = time.perf_counter()
            F.conv2d(x, w, padding=1)
            ts.append(time.perf_counter() - t)
    return 2 * 64 * 64 * 9 * 256 * 256 / statistics.median(ts) / 1e9


def reference_conv_rate(threads: int) -> float:
    """:func:`conv_rate` in a fresh process with glibc's thresholds raised (zoo.utils.allocator).

    The reference must not depend on this process's allocator state: untuned, glibc maps and faults in every
    16 MiB output afresh until its dynamic mmap threshold has grown, so the same convolution reads ~95 GFLOP/s in
    a fresh process and ~195 once a model has run — which put the first model's rows above 1.0.
    """
    code = ("import torch, sys; sys.path.insert(0, %r); from zoo.utils.allocator import tune_allocator; "
            "tune_allocator(); torch.set_num_threads(%d); import efficiency; print(efficiency.conv_rate())"
            % (str(Path(__file__).parent), threads))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return float(out.stdout.split()[-1])


def task_inputs(name: str, net, size: int) -> tuple[dict, int]:
    """(inputs of ``task.run`` for a random ``size²`` output, scale of output over input)."""
    if get_entry_task(name) == "cs":
        return {"x": torch.rand(1, 1, size, size)}, 1
    inp = net.example_inputs(size)
    scale = int(inp["scale"]) if isinstance(inp.get("scale"), int) else 1
    return inp, scale


def get_entry_task(name: str) -> str:
    return zoo.get_entry(name).task


def timed(fn) -> tuple[float, float]:
    """(seconds, peak RSS of the process during the call in MiB) of one call."""
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
    t = time.perf_counter()
    with torch.no_grad():
        fn()
    dt = time.perf_counter() - t
    return dt, status_kib("VmHWM") / 1024


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="results/deploy/efficiency")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--models", nargs="*", default=list(MODELS))
    ap.add_argument("--sizes", nargs="*", type=int, default=list(SIZES))
    ap.add_argument("--whole-limit", type=float, default=60.0)
    ap.add_argument("--tiled-limit", type=float, default=120.0)
    ap.add_argument("--overwrite", action="store_true")
    ap.add_argument("--allocator", action="store_true",
                    help="raise glibc's mmap/trim thresholds first, as the zoo CLI does (zoo.utils.allocator)")
    a = ap.parse_args()
    out = Path(a.out)
    if (out / "summary.md").exists() and not a.overwrite:
        raise FileExistsError(f"{out / 'summary.md'} exists; pass --overwrite to replace it")
    torch.set_num_threads(a.threads)
    tuned = tune_allocator() if a.allocator else False
    rows, rates = [], []
    for name in a.models:
        net = zoo.load(name)
        task = get_task(get_entry_task(name))
        tiles = any(o.name == "tile" for o in task.options)
        ov = next((int(o.default) for o in task.options if o.name == "overlap"), 0)
        rate = reference_conv_rate(a.threads)
        rates.append(rate)
        fl256 = flops(net, 256)  # FLOPs of the whole 256² forward (output pixels)
        per_px = {"whole": None, "tiled": None}
        print(json.dumps({"model": name, "conv_gflops": rate, "gflop_256": fl256 / 1e9}), flush=True)
        for s in a.sizes:
            if get_entry_task(name) == "cassi" and s > 256:
                continue
            inputs, sc = task_inputs(name, net, s)
            h, w = (int(v) for v in max((v for v in inputs.values() if torch.is_tensor(v) and v.ndim == 4),
                                        key=lambda v: v.shape[-1] * v.shape[-2]).shape[-2:])
            m = int(net.tile_multiple)
            whole_tile = max(math.ceil(max(h, w) / m) * m, m * (ov // m + 1))
            fl = fl256 * (s * s) / (256 * 256)
            for mode in ("whole", "tiled"):
                if mode == "tiled" and not tiles:
                    continue
                limit = a.whole_limit if mode == "whole" else a.tiled_limit
                pred = per_px[mode] * s * s if per_px[mode] else 0.0
                row = {"model": name, "size": s, "mode": mode, "conv_gflops": rate}
                if pred > limit:
                    row.update(skipped=f"predicted {pred:.0f} s > {limit:.0f} s")
                    rows.append(row)
                    print(json.dumps(row), flush=True)
                    continue
                if mode == "whole":
                    tile = whole_tile
                else:
                    tile = auto_tile(net, inputs, lambda crop, t: task.run(net, crop, tile=t, overlap=ov), ov,
                                     whole_max=0, scale=sc)
                kw = {"tile": tile, "overlap": ov} if tiles else {}
                if s <= 256:  # warm-up (allocator, first-call costs) where it is cheap
                    with torch.no_grad():
                        task.run(net, inputs, **kw)
                dt, peak = timed(lambda: task.run(net, inputs, **kw))
                per_px[mode] = dt / (s * s)
                row.update(tile=tile if mode == "tiled" else None, latency_s=dt, gflops=fl / 1e9,
                           gflop_s=fl / dt / 1e9, of_conv=fl / dt / 1e9 / rate, peak_mib=peak)
                rows.append(row)
                print(json.dumps(row), flush=True)
        del net
    info = {"allocator_tuned": tuned, "threads": a.threads, "torch": torch.__version__, "loadavg": Path("/proc/loadavg").read_text().split()[:3],
            "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "conv_gflops": rates, "rows": rows}
    md = ["# Inference efficiency: whole vs auto-tiled, against this machine's conv rate", "",
          f"{a.threads} CPU thread, torch {torch.__version__}, glibc allocator "
          f"{'thresholds raised as the zoo CLI does (zoo.utils.allocator)' if tuned else 'untouched'}, {info['date']}, load at the end "
          f"{' '.join(info['loadavg'])} (a 2-core machine shared with other jobs: absolute times are noisy, the "
          "conv rate is re-measured before each model, in a fresh process with the allocator tuned, and each row is "
          "divided by that model's). "
          f"Conv rate (64→64 3×3, 1×64×256²): {', '.join(f'{r:.1f}' for r in rates)} GFLOP/s.", "",
          "GFLOP/s = FLOPs of the whole-image forward (counted at 256², scaled by pixels) / wall seconds of "
          "`task.run`; tiled = the tile `zoo.inference.auto_tile` picks (timed here, `whole_max=0`); SR sizes are "
          "the HR output (tiles in LR pixels); peak RSS = the process's resident-set high-water mark during the pass "
          "(reset before it; includes the model, torch and memory the allocator kept from earlier rows).", "",
          "| model | size | mode | tile | latency (s) | GFLOP/s | of conv rate | peak RSS (MiB) |",
          "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        if "skipped" in r:
            md.append(f"| {r['model']} | {r['size']}² | {r['mode']} | | skipped: {r['skipped']} | | | |")
        else:
            md.append(f"| {r['model']} | {r['size']}² | {r['mode']} | {r['tile'] or ''} | {r['latency_s']:.2f} | "
                      f"{r['gflop_s']:.1f} | {r['of_conv']:.2f} | {r['peak_mib']:.0f} |")
    flags = f" --allocator --out {a.out}" if a.allocator else ""
    if a.models != list(MODELS):
        flags += " --models " + " ".join(a.models)
    if a.sizes != list(SIZES):
        flags += " --sizes " + " ".join(map(str, a.sizes))
    md += ["", f"Reproduce: `OMP_NUM_THREADS=1 python experiments/studies/efficiency.py --threads 1{flags} --overwrite`", ""]
    write_summary(out, info, md)


if __name__ == "__main__":
    main()
