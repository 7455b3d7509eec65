"""``zoo bench``: per-image and mean tables, costs, published rows, PNG grids — from one run.

Outputs in ``out_dir``: ``per_image.csv``, ``summary.json`` (protocol, environment, every number),
``summary.md`` (the tables for the README), ``grids/<model>/<dataset>/<image>.png``
(input | output | target | |error|×4), and where the task draws them (``Task.pictures``: CASSI)
``pictures/<dataset>/<setting>/<image>/*.png`` comparing every method on one image. Grids and pictures show
test images: they stay out of git.
"""

from __future__ import annotations

import csv
import json
import os
import platform
import re
import sys
import time
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
import torch.nn as nn
from PIL import Image

from zoo.api import get_entry, load
from zoo.bench import profile
from zoo.models.base import Restorer
from zoo.tasks import Task, get_task
from zoo.utils.files import atomic_write, check_writable
from zoo.utils.version import package_version

__all__ = ["run_bench"]



def _grid(proto: Task, inp: torch.Tensor, out: torch.Tensor, tgt: torch.Tensor) -> Image.Image:
    err = ((out - tgt).abs() * 4).clamp(0, 1)
    return Image.fromarray(np.concatenate([proto.to_image(t) for t in (inp, out, tgt, err)], axis=1))


def run_bench(
    names: Sequence[str],
    out_dir: str | os.PathLike,
    datasets: Sequence[str] | None = None,
    data_root: str | None = None,
    paths: dict[str, str] | None = None,
    floor: bool = True,
    grids: bool = True,
    costs: bool = True,
    cost_size: int = 256,
    limit: int | None = None,
    overwrite: bool = False,
    progress: bool = True,
    adapt: int = 0,
) -> dict:
    """Benchmark pretrained zoo models (same task) and write the tables; returns the summary dict.

    ``paths`` maps a name to your own weights of that model (a training run's export folder or a
    ``model.safetensors``): they are loaded unverified (``zoo.load(..., verify=False)``, which warns)
    and the summary records the path beside the model's results.

    ``adapt`` > 0 adds, for every test set ``D``, a set ``D+TA<adapt>``: the same images fused after
    that many target-adaptive steps on each image's own inputs (``Task.adapt``: pansharpening, flash, CASSI).
    """
    out = Path(out_dir)
    if (out / "summary.json").exists() and not overwrite:
        raise FileExistsError(f"{out}/summary.json exists; pass --overwrite to replace the results")
    tasks = {get_entry(n).task for n in names}
    if len(tasks) != 1:
        raise ValueError(f"bench one task at a time, got {sorted(tasks)}")
    proto = get_task(tasks.pop())
    if adapt < 0:
        raise ValueError(f"adapt takes a number of steps >= 0, got {adapt}")
    ta_setting = proto.adapt_setting(adapt) if adapt else None  # raises the task's own message before any work
    check_writable(out)  # an unwritable --out fails now, not after the whole benchmark
    ds_names = list(datasets or proto.datasets)
    data = {d: proto.load_testset(d, data_root)[:limit] for d in ds_names}
    rows: list[dict] = []
    summary: dict = {
        "command": "zoo bench " + " ".join(sys.argv[2:]) if sys.argv[1:2] == ["bench"] else "zoo.bench.run_bench",
        "task": proto.name,
        "protocol": {**proto.description, **({"target_adaptive": "the +TA<steps> sets: " + "; ".join(
            f"{k} {v}" for k, v in ta_setting.items())} if ta_setting else {})},
        "environment": {
            "torch": torch.__version__, "zoo": package_version(), "python": platform.python_version(),
            "machine": platform.machine(), "processor": platform.processor() or platform.machine(),
            "threads": torch.get_num_threads(), "device": "cpu", "date": time.strftime("%Y-%m-%d"),  # the bench runs on the CPU
        },
        **({"target_adaptive": ta_setting} if ta_setting else {}),
        "models": {},
        "published": {},
    }
    floors_done: set[str] = set()
    floor_cache: dict = {}  # a floor depends on the inputs only: computed once per image, not once per model
    # ("dataset/setting", image) -> {"reference" | method: output}, for the task's comparison pictures
    keep: dict | None = {} if grids and type(proto).pictures is not Task.pictures else None
    timed: dict = {}  # name -> network, for the interleaved latency
    for name in names:
        own = (paths or {}).get(name)
        net = load(name, path=own, verify=own is None)
        setting = proto.setting(net)
        rec: dict = {"setting": setting, "datasets": {}, **({"weights": str(own)} if own else {})}
        for d, all_items in data.items():
            items = [(i, b) for i, b in all_items if proto.compatible(net, b)]
            if not items:
                continue  # e.g. a 4-band test file for an 8-band model
            for label, steps in [(d, 0)] + ([(f"{d}+TA{adapt}", adapt)] if adapt else []):
                key = f"{label}/{setting}"
                summary["published"].setdefault(key, proto.published_rows(d, setting))
                res, fls, new_rows = _score_set(proto, net, name, label, items, steps, floor,
                                                out / "grids" / name / label if grids else None, progress,
                                                floor_cache, f"{d}/{setting}", keep)
                rows += new_rows
                rec["datasets"][label] = res
                if floor and key not in floors_done and fls:
                    floors_done.add(key)
                    (first, fl), *more = fls.items()
                    summary.setdefault("floor", {})[key] = {"method": first + f" ({name})", **fl}
                    if more:  # the task's further classical rows (Task.floors)
                        summary.setdefault("floors_more", {})[key] = [{"method": n + f" ({name})", **v} for n, v in more]
        rec["params"] = profile.param_counts(net)
        if costs:
            rec["gflops"] = profile.flops(net, cost_size) / 2**30
            rec["latency_s"] = profile.latency(net, cost_size)
            rec["weights_mib"] = sum(t.numel() * t.element_size() for t in [*net.parameters(), *net.buffers()]) / 2**20
            try:
                runs = sorted(profile.peak_memory(name, (paths or {}).get(name), cost_size) for _ in range(3))
                rec["peak_mem_mib"] = runs[1] / 2**20  # median of 3 fresh processes (RSS is noisy)
            except Exception as e:  # a failed child measurement must not sink the whole table
                rec["peak_mem_mib"] = None
                rec["peak_mem_error"] = str(e)[:200]
            net.set_trainable("finetune")  # as the family's recipes fine-tune it
            rec["train_patches_per_s"] = profile.train_throughput(net)
            rec["cost_protocol"] = f"{cost_size}x{cost_size} input, {torch.get_num_threads()} CPU threads; training: 8x99x99 patches, trainable params as in the recipe"
        summary["models"][name] = rec
        if costs:
            timed[name] = net
    if costs and len(timed) > 1:  # compared models: latency from interleaved runs, with the ratio
        first = next(iter(timed))
        for name, r in profile.latency_interleaved(timed, cost_size).items():
            summary["models"][name].update(latency_s=r["latency_s"], latency_vs_first=r["vs_first"],
                                           latency_protocol=f"interleaved with {', '.join(timed)} in one process; "
                                                            f"ratio = time / {first}'s, median of 5 rounds")
    out.mkdir(parents=True, exist_ok=True)
    with atomic_write(out / "per_image.csv", overwrite=True) as tmp:
        with open(tmp, "w", newline="") as f:
            lead = ["model", "dataset", "image"]
            keys = lead + sorted({k for r in rows for k in r} - set(lead))
            w = csv.DictWriter(f, fieldnames=keys)
            w.writeheader()
            w.writerows(rows)
    for (d, img), outs in (keep or {}).items():
        for fname, pic in proto.pictures(img, outs).items():
            with atomic_write(out / "pictures" / d / img / fname, overwrite=True) as tmp:
                pic.save(tmp, format="PNG")
    with atomic_write(out / "summary.json", overwrite=True) as tmp:
        tmp.write_text(json.dumps(summary, indent=1))
    with atomic_write(out / "summary.md", overwrite=True) as tmp:
        tmp.write_text(render_markdown(summary))
    return summary


_CACHE_BYTES = 2**30  # floors kept for reuse by the next model (large test sets recompute beyond this)


def _same_inputs(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(
        torch.equal(v, b[k]) if torch.is_tensor(v) else (not torch.is_tensor(b[k]) and v == b[k]) for k, v in a.items())


def _score_set(proto: Task, net: Restorer, name: str, label: str, items: list, steps: int, floor: bool,
               grid_dir: Path | None, progress: bool, floor_cache: dict | None = None, set_key: str = "",
               keep: dict | None = None) -> tuple[dict, dict[str, dict], list[dict]]:
    """Score ``net`` on one test set → (means, {floor name: its means}, per-image rows).

    ``steps`` > 0: each image is fused by a copy adapted to its own inputs (``Task.adapt``).
    ``floor_cache`` reuses the floors of identical inputs (same ``set_key`` and image); ``keep``
    collects every output per (test set, image) for :meth:`Task.pictures`.
    """
    from tqdm.auto import tqdm

    rows: list[dict] = []
    per: dict[str, list[float]] = {}
    per_floor: dict[str, dict[str, list[float]]] = {}
    parts: dict[str, list] = {k: [] for k in proto.aggregates}
    parts_floor: dict[str, dict[str, list]] = {}
    min_iterate: list[float] = []
    for img_name, batch in tqdm(items, desc=f"{name} {label}", disable=not progress, leave=False):
        x = batch.get("target")
        with torch.no_grad():
            inputs = proto.inputs(net, batch)
            run = proto.adapt(net, inputs, steps) if steps else net
            y_hat = run(**inputs).float()
            bases: dict[str, torch.Tensor] = {}
            if floor:
                hit = (floor_cache or {}).get((set_key, img_name))
                if hit is not None and _same_inputs(hit[0], inputs):
                    bases = hit[1]
                else:
                    bases = {n: b.float() for n, b in proto.floors(net, inputs).items()}
                    size = sum(t.numel() * t.element_size() for t in [*bases.values(), *inputs.values()] if torch.is_tensor(t))
                    if floor_cache is not None and floor_cache.get("bytes", 0) + size <= _CACHE_BYTES:
                        floor_cache[(set_key, img_name)] = (inputs, bases)
                        floor_cache["bytes"] = floor_cache.get("bytes", 0) + size
        base = next(iter(bases.values()), None)  # the main floor (grids, and the floor_* columns)
        row = {"model": name, "dataset": label, "image": img_name}
        if x is not None:
            vals = proto.score(y_hat, x, inputs)
            vals_floors = {n: proto.score(b, x, inputs) for n, b in bases.items()}
            for k, (part, _) in proto.aggregates.items():
                parts[k].append(part(y_hat, x))
                for n, b in bases.items():
                    parts_floor.setdefault(n, {}).setdefault(k, []).append(part(b, x))
            if keep is not None:
                outs = keep.setdefault((set_key, img_name), {"reference": x})
                outs.update({n: b for n, b in bases.items() if n not in outs})
                outs[name if not steps else f"{name}+TA{steps}"] = y_hat
        else:  # no ground truth (e.g. full-resolution pansharpening): reference-free metrics
            vals = proto.no_reference(net, y_hat, inputs)
            vals_floors = {n: proto.no_reference(net, b, inputs) for n, b in bases.items()}
        diag = run.diagnostics()
        if "min_iterate" in diag:  # non-negativity of the iterates
            min_iterate.append(float(diag["min_iterate"]))
            row["min_iterate"] = round(min_iterate[-1], 6)
        for k, v in vals.items():
            row[k] = round(v, 4)
            per.setdefault(k, []).append(v)
        for i, (n, vf) in enumerate(vals_floors.items()):
            prefix = "floor_" if i == 0 else "floor_" + re.sub(r"[^a-z0-9]+", "-", n.lower()).strip("-") + "_"
            for k, v in vf.items():
                row[f"{prefix}{k}"] = round(v, 4)
                per_floor.setdefault(n, {}).setdefault(k, []).append(v)
        rows.append(row)
        if grid_dir is not None:
            g = grid_dir / f"{img_name}.png"
            g.parent.mkdir(parents=True, exist_ok=True)
            ref = x if x is not None else (base if base is not None else y_hat)
            _grid(proto, base if base is not None else ref, y_hat, ref).save(g)
    res = {k: float(np.mean(v)) for k, v in per.items()}
    res.update({k: float(proto.aggregates[k][1](v)) for k, v in parts.items() if v})
    if min_iterate:
        res["min_iterate"] = min(min_iterate)
    res["images"] = len(items)
    fls = {}
    for n, per_n in per_floor.items():
        fls[n] = {k: float(np.mean(v)) for k, v in per_n.items()}
        fls[n].update({k: float(proto.aggregates[k][1](v)) for k, v in parts_floor.get(n, {}).items() if v})
    return res, fls, rows


def _f(v, nd=2) -> str:
    return "–" if v is None else (f"{v:.{nd}f}" if isinstance(v, float) else str(v))


def render_markdown(s: dict) -> str:
    """The summary as Markdown tables (quality with floor + published rows; costs)."""
    lines = [f"# Benchmark: {s['task']}", "", f"Command: `{s['command']}`  ", f"Environment: {s['environment']}", ""]
    lines += ["Protocol: " + "; ".join(f"{k}: {v}" for k, v in s["protocol"].items()), ""]
    dsets = sorted({d for m in s["models"].values() for d in m["datasets"]})
    nd = {"ssim": 4, "q2n": 4, "scc": 4, "d_lambda": 4, "d_s": 4, "hqnr": 4, "min_iterate": 4}
    for d in dsets:
        keys = sorted({k for m in s["models"].values() for k in m["datasets"].get(d, {}) if k != "images"},
                      key=lambda k: (k == "min_iterate", k != "psnr", k != "ssim", k))
        lines += [f"## {d}", "", "| method | setting | " + " | ".join(keys) + " | source |", "|---|---|" + "---|" * (len(keys) + 1)]

        def row(method: str, st: str, r: dict, src: str) -> str:
            return f"| {method} | {st} | " + " | ".join(_f(r.get(k), nd.get(k, 2)) for k in keys) + f" | {src} |"

        settings = sorted({m["setting"] for m in s["models"].values()},
                          key=lambda x: (float(x[1:]) if x[1:].replace(".", "").isdigit() else 0, x))
        for st in settings:
            fl = s.get("floor", {}).get(f"{d}/{st}")
            if fl:
                lines.append(row(fl["method"], st, fl, "this run"))
            for more in s.get("floors_more", {}).get(f"{d}/{st}", []):
                lines.append(row(more["method"], st, more, "this run"))
            for name, m in s["models"].items():
                if m["setting"] == st and d in m["datasets"]:
                    lines.append(row(f"**{name}**", st, m["datasets"][d], "this run"))
            for r in s["published"].get(f"{d}/{st}", []):
                lines.append(row(r["method"], st, r, "published" + (f" ({r['note']})" if r.get("note") else "")))
        lines.append("")
    if any("gflops" in m for m in s["models"].values()):
        lines += ["## Costs", "", "| model | params | params (M=2²⁰) | prior params | prior base / adapters | GFLOPs (2³⁰) | latency (s) | latency / first | weights (MiB) | forward peak (MiB) | train patches/s |",
                  "|---|---|---|---|---|---|---|---|---|---|---|"]
        for name, m in s["models"].items():
            p = m["params"]
            lines.append(
                f"| {name} | {p['total']:,} | {p['total_M']:.3f} | {p['prior']:,} ({p['prior_M']:.3f} M) | "
                f"{p['prior_base']:,} / {p['prior_adapters']:,} | {_f(m.get('gflops'))} | {_f(m.get('latency_s'), 3)} | "
                f"{_f(m.get('latency_vs_first'), 2)} | {_f(m.get('weights_mib'), 2)} | {_f(m.get('peak_mem_mib'), 1)} | {_f(m.get('train_patches_per_s'), 1)} |")
        first = next(iter(s["models"].values()))
        inter = first.get("latency_protocol")
        lines += ["", f"Cost protocol: {first.get('cost_protocol', '')}."
                  + (f" Latency: {inter}." if inter else "") + " Forward peak: rise of the resident set "
                  "during one forward pass in a fresh process, median of 3 (CPU); weights: parameters + buffers in float32.", ""]
    return "\n".join(lines) + "\n"
