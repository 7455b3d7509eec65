"""Equivariant-Imaging target adaptation for CASSI: choose steps/lr on the *training* cube, then score CAVE-2.

Stage 1 (selection, ``cassi/cave256_train`` only): for each model and learning rate, one
:func:`~zoo.training.target_adaptive.ei_adapt` run of ``max(--steps)`` steps on the cube's own simulated
measurement, scored (PSNR / SSIM / SAM against the training cube) after each of ``--steps``, with ``x̂``
detached in the equivariance term; plus two ablations at each model's best lr: ``x̂`` not detached (the EI
paper's code) and measurement consistency alone (``alpha = 0``). Selection: the (lr, steps) with
the best PSNR gain averaged over the models (one setting for the task, as ``DEFAULTS["cassi"]``).
Stage 2 (test, CAVE-2): each model adapted per cube with that setting through ``CASSITask.adapt``'s
own function, before/after per cube. CAVE-2 never enters stage 1.

Writes ``results/cassi/ta/{summary.md,selection.json,cave2.json}``.

    OMP_NUM_THREADS=1 python experiments/studies/cassi_ta.py [--lrs 1e-5 3e-5] [--steps 10 20 40]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

import zoo
from zoo.data.cassi import list_cubes, read_cube
from zoo.data.paths import find_data
from zoo.tasks import get_task
from zoo.training.target_adaptive import DEFAULTS, ei_adapt

ROOT = Path(__file__).resolve().parents[2]
MODELS = ["lorun-cassi-9stg", "block9-cassi"]


def _score(task, net, inputs, x) -> dict[str, float]:
    with torch.no_grad():
        return task.score(net(**inputs).float(), x, inputs)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--models", nargs="+", default=MODELS)
    ap.add_argument("--lrs", type=float, nargs="+", default=[1e-5, 3e-5])
    ap.add_argument("--steps", type=int, nargs="+", default=[10, 20, 40])
    ap.add_argument("--alpha", type=float, default=DEFAULTS["cassi"]["alpha"])
    ap.add_argument("--rows", type=int, default=DEFAULTS["cassi"]["rows"])
    ap.add_argument("--data-root")
    ap.add_argument("--out", default=str(ROOT / "results/cassi/ta"))
    ap.add_argument("--threads", type=int, default=1)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    task = get_task("cassi")
    train = [(f.stem, torch.from_numpy(read_cube(f))[None]) for f in list_cubes(find_data("cassi/cave256_train", a.data_root))]
    nets = {n: zoo.load(n) for n in a.models}
    checkpoints = sorted(set(a.steps))

    # -- stage 1: selection on the training cube ----------------------------------------------------
    sel: list[dict] = []
    for name, net in nets.items():
        for stem, x in train:
            inputs = task.inputs(net, {"target": x})
            sel.append({"model": name, "cube": stem, "lr": 0.0, "alpha": a.alpha, "detach": True, "steps": 0,
                        **_score(task, net, inputs, x)})
            print(sel[-1], flush=True)
            for lr in a.lrs + ["not detached", "mc only"]:
                if isinstance(lr, str):  # the ablations, at the best lr of this model
                    runs = [r for r in sel if r["model"] == name and r["cube"] == stem and r["steps"] and r["alpha"] == a.alpha]
                    lr_ = max(runs, key=lambda r: r["psnr"])["lr"]
                    alpha, detach = (a.alpha, False) if lr == "not detached" else (0.0, True)
                else:
                    lr_, alpha, detach = lr, a.alpha, True
                t0 = time.perf_counter()

                def on_step(done: int, copy, lr_=lr_, alpha=alpha, detach=detach, t0=t0) -> None:
                    if done in checkpoints:
                        copy.eval()
                        sel.append({"model": name, "cube": stem, "lr": lr_, "alpha": alpha, "detach": detach, "steps": done,
                                    **_score(task, copy, inputs, x), "seconds": time.perf_counter() - t0})
                        print(sel[-1], flush=True)

                ei_adapt(net, inputs["y"], inputs["mask"], steps=checkpoints[-1], lr=lr_, alpha=alpha, rows=a.rows,
                         detach=detach, on_step=on_step)
                (out / "selection.json").write_text(json.dumps(sel, indent=1))

    def gain(lr: float, steps: int) -> float:
        g = [r["psnr"] - next(b["psnr"] for b in sel if b["model"] == r["model"] and b["cube"] == r["cube"] and b["steps"] == 0)
             for r in sel if r["lr"] == lr and r["steps"] == steps and r["alpha"] == a.alpha and r["detach"]]
        return sum(g) / len(g)

    lr_best, steps_best = max(((lr, n) for lr in a.lrs for n in checkpoints), key=lambda c: gain(*c))
    print(f"chosen on the training cube: lr {lr_best}, steps {steps_best} (mean PSNR gain {gain(lr_best, steps_best):+.2f} dB)")

    # -- stage 2: CAVE-2 with the chosen setting ----------------------------------------------------
    test = task.load_testset("CAVE-2", a.data_root)
    cave: list[dict] = []
    for name, net in nets.items():
        for stem, batch in test:
            x = batch["target"]
            inputs = task.inputs(net, batch)
            before = _score(task, net, inputs, x)
            t0 = time.perf_counter()
            ad = ei_adapt(net, inputs["y"], inputs["mask"], steps=steps_best, lr=lr_best, alpha=a.alpha, rows=a.rows,
                          detach=True)
            cave.append({"model": name, "cube": stem, "before": before, "after": _score(task, ad, inputs, x),
                         "seconds": time.perf_counter() - t0, "loss_first": ad.target_adaptation["loss_first"],
                         "loss_last": ad.target_adaptation["loss_last"]})
            print(cave[-1], flush=True)
    (out / "cave2.json").write_text(json.dumps({"setting": {"lr": lr_best, "steps": steps_best, "alpha": a.alpha,
                                                            "rows": a.rows, "detach": True, "seed": 0}, "results": cave}, indent=1))

    # -- tables --------------------------------------------------------------------------------------
    cmd = "OMP_NUM_THREADS=1 python experiments/studies/cassi_ta.py " + " ".join(
        [f"--lrs {' '.join(map(str, a.lrs))}", f"--steps {' '.join(map(str, a.steps))}", f"--alpha {a.alpha}", f"--rows {a.rows}"])
    lines = ["# CASSI: Equivariant-Imaging target adaptation (Chen, Tachella & Davies, ICCV 2021)", "",
             f"Command: `{cmd}` ({time.strftime('%Y-%m-%d')}, {a.threads} CPU thread(s))  ",
             f"Loss: ||(Phi f(y) - y) 2/C||^2 + alpha ||T x - f(Phi T x)||^2, x = f(y) (detached unless said), T: random circular "
             f"shift + flips, the same mask; Adam; one band of {a.rows} detector rows per step; seed 0. No reference is used "
             "by the adaptation; the references only score it.", "",
             "## Selection on the training cube (cassi/cave256_train; never CAVE-2)", "",
             "| model | cube | lr | alpha | x detached | steps | PSNR | SSIM | SAM (deg) | s |", "|---|---|---|---|---|---|---|---|---|---|"]
    for r in sel:
        lines.append(f"| {r['model']} | {r['cube']} | {r['lr']:g} | {r['alpha']:g} | {'yes' if r['detach'] else 'no'} | {r['steps']} | {r['psnr']:.2f} | "
                     f"{r['ssim']:.4f} | {r['sam']:.2f} | {r.get('seconds', 0):.0f} |")
    lines += ["", f"Chosen: lr {lr_best:g}, {steps_best} steps (best mean PSNR gain over the models, "
              f"{gain(lr_best, steps_best):+.2f} dB on the training cube).", "",
              "## CAVE-2, per cube: before → after adaptation", "",
              "| model | cube | PSNR | SSIM | SAM (deg) | adaptation (s) |", "|---|---|---|---|---|---|"]
    for r in cave:
        b, f = r["before"], r["after"]
        lines.append(f"| {r['model']} | {r['cube']} | {b['psnr']:.2f} → {f['psnr']:.2f} | {b['ssim']:.4f} → {f['ssim']:.4f} | "
                     f"{b['sam']:.2f} → {f['sam']:.2f} | {r['seconds']:.0f} |")
    for name in nets:
        rs = [r for r in cave if r["model"] == name]
        mean = {k: (sum(r["before"][k] for r in rs) / len(rs), sum(r["after"][k] for r in rs) / len(rs)) for k in ("psnr", "ssim", "sam")}
        lines.append(f"| {name} | **mean** | {mean['psnr'][0]:.2f} → {mean['psnr'][1]:.2f} | {mean['ssim'][0]:.4f} → "
                     f"{mean['ssim'][1]:.4f} | {mean['sam'][0]:.2f} → {mean['sam'][1]:.2f} | |")
    (out / "summary.md").write_text("\n".join(lines) + "\n")
    print((out / "summary.md").read_text())


if __name__ == "__main__":
    main()
