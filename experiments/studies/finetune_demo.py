"""Before/after numbers of the README's "Fine-tune on your data" example: ``lorun-cs-r25`` with and without the
adapters an adapter-only ``zoo finetune`` trained on a folder of indoor photos (FAID, ``flash/faid32_half``).

Scored (PSNR/SSIM of the CS task, whole images, CS ratio 25 %, grey luminance) on the 12 disjoint FAID test
ambient images (``flash/faid_test12/ambient``: the new domain) and on Set11 (the domain the published model was
trained for: what the adapters cost there). The adapters are loaded with ``zoo.load(name, adapters=...)``.

    OMP_NUM_THREADS=1 zoo finetune lorun-cs-r25 --data $ZOO_DATA/flash/faid32_half --out runs/finetune-demo \\
        --epochs 2 --samples 800 --lr 5e-4 --accelerator cpu
    OMP_NUM_THREADS=1 python experiments/studies/finetune_demo.py --adapters runs/finetune-demo/export/adapters.safetensors
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path

import torch

import zoo
from zoo.data.images import list_images, read_grey
from zoo.inference import simulate_and_restore
from zoo.tasks import get_task
from zoo.utils.files import sha256_file
from _summary import write_summary  # noqa: E402  (experiments/studies, the script's folder)

NAME = "lorun-cs-r25"


def score(task, net, items) -> dict[str, float]:
    per = [task.score(simulate_and_restore(net, b["target"])[0].clamp(0, 1), b["target"], {}) for _, b in items]
    return {k: statistics.mean(p[k] for p in per) for k in per[0]}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--adapters", required=True)
    ap.add_argument("--data-root", default=os.environ.get("ZOO_DATA"))
    ap.add_argument("--out", default="results/deploy/finetune")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--overwrite", action="store_true")
    a = ap.parse_args()
    if not a.data_root:
        raise SystemExit("set ZOO_DATA (or pass --data-root) to the data folder")
    out = Path(a.out)
    if (out / "summary.md").exists() and not a.overwrite:
        raise FileExistsError(f"{out / 'summary.md'} exists; pass --overwrite to replace it")
    torch.set_num_threads(a.threads)
    task = get_task("cs")
    root = Path(a.data_root)
    sets = {"FAID test12 ambient (new domain)": [(p.stem, {"target": read_grey(p)[None]})  # as the CS test sets
                                                 for p in list_images(root / "flash/faid_test12/ambient")],
            "Set11 (the published model's domain)": task.load_testset("Set11", str(root))}
    nets = {"published lorun-cs-r25": zoo.load(NAME), "+ fine-tuned adapters": zoo.load(NAME, adapters=a.adapters)}
    table = {s: {n: score(task, net, items) for n, net in nets.items()} for s, items in sets.items()}
    curve_f = Path(a.adapters).with_name("learning_curve.json")
    curve = json.loads(curve_f.read_text()) if curve_f.is_file() else []
    info = {"model": NAME, "adapters": str(a.adapters), "adapters_sha256": sha256_file(a.adapters),
            "adapters_bytes": Path(a.adapters).stat().st_size,
            "model_bytes": zoo.checkpoint(NAME).files["model.safetensors"].size, "threads": a.threads,
            "train_wall_s": curve[-1]["wall_s"] if curve else None, "train_steps": curve[-1]["step"] if curve else None,
            "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "table": table}
    md = [f"# Fine-tune on your data: {NAME}, adapters only, on indoor photos (FAID)", "",
          f"Adapters: {info['adapters_bytes'] / 1024:.0f} KiB (the whole checkpoint: {info['model_bytes'] / 1024:.0f} KiB), "
          f"{info['train_steps']} steps in {info['train_wall_s']} s wall at 1 CPU thread on a shared 2-core machine. "
          "Whole-image reconstructions from noiseless CS measurements at ratio 25 %, grey luminance; mean over "
          f"images. {info['date']}.", "",
          "| test set | model | PSNR (dB) | SSIM |", "|---|---|---|---|"]
    for s, rows in table.items():
        for n, m in rows.items():
            md.append(f"| {s} | {n} | {m['psnr']:.2f} | {m['ssim']:.4f} |")
    md += ["", "Reproduce (the README commands):", "",
           "    OMP_NUM_THREADS=1 zoo finetune lorun-cs-r25 --data $ZOO_DATA/flash/faid32_half --out runs/finetune-demo "
           "--epochs 2 --samples 800 --lr 5e-4 --accelerator cpu",
           "    OMP_NUM_THREADS=1 python experiments/studies/finetune_demo.py "
           "--adapters runs/finetune-demo/export/adapters.safetensors --overwrite", ""]
    write_summary(out, info, md)


if __name__ == "__main__":
    main()
