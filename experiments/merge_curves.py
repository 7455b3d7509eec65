"""Merge the learning curves of every training stage into each checkpoint and refresh its card.

    python experiments/merge_curves.py            # after an export (experiments/train_cs.sh's export stage)
    python experiments/merge_curves.py ssopga-flash pga-flash
    # stages trained after the runs above were gone: the published curve + new runs, staged for zoo export-run
    python experiments/merge_curves.py --stage block9-cassi runs/cassi_diverse/block9/export "4 diverse" \
        runs/cassi_diverse2/block9/export "4 diverse 2" --out runs/stage/block9-cassi

A checkpoint trained in stages (CS: the shared 25 % phase-1 base → phase 2 → continuations;
flash and CASSI phase 2: first run → continuation) gets one curve with cumulative steps and wall time, and the
manifest's training block gets the totals.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from zoo.hub.manifest import load_manifest, update_entry
from zoo.hub.card import refresh_card

ROOT = Path(__file__).resolve().parents[1]
CS_BASE = ("1 base 25%", "lorun-cs-base-r25")
# checkpoint -> ((label, leading run shared with other checkpoints) or None, its own runs in order);
# with a lead, the checkpoint's own runs are phase "2"
CHAINS = {
    "lorun-cs-r25": (CS_BASE, ["lorun-cs-r25", "lorun-cs-r25-cont", "lorun-cs-r25-cont2", "lorun-cs-r25-gpu",
                                 "lorun-cs-r25-g18", "lorun-cs-r25-joint"]),
    "block9-cs-r25": (CS_BASE, ["block9-cs-r25", "block9-cs-r25-cont", "block9-cs-r25-cont2", "block9-cs-r25-gpu",
                                  "block9-cs-r25-cont3", "block9-cs-r25-cont4"]),
    "lorun-cs-r10": (CS_BASE, ["lorun-cs-r10", "lorun-cs-r10-cont", "lorun-cs-r10-cont2"]),
    "lorun-cs-r50": (CS_BASE, ["lorun-cs-r50", "lorun-cs-r50-cont"]),
    "ssopga-flash": (None, ["ssopga-flash", "ssopga-flash-cont", "ssopga-flash-cont2", "ssopga-flash-cont3",
                           "ssopga-flash-cont4", "ssopga-flash-cont5", "ssopga-flash-cont6",
                           "ssopga-flash-cont7", "ssopga-flash-gpu", "ssopga-flash-gpu2"]),
    "pga-flash": (None, ["pga-flash", "pga-flash-cont", "pga-flash-cont2", "pga-flash-cont3", "pga-flash-cont4",
                        "pga-flash-cont5", "pga-flash-cont6", "pga-flash-cont7", "pga-flash-gpu", "pga-flash-gpu2"]),
    "ssopga-pansharpen-wv": (None, ["ssopga-pansharpen-wv", "ssopga-pansharpen-wv-cont", "ssopga-pansharpen-wv-cont2"]),
    "pga-pansharpen-wv": (None, ["pga-pansharpen-wv", "pga-pansharpen-wv-cont", "pga-pansharpen-wv-cont2"]),
    "ssopga-pansharpen-4band": (None, ["ssopga-pansharpen-4band", "ssopga-pansharpen-4band-cont",
                                       "ssopga-pansharpen-4band-gpu", "ssopga-pansharpen-4band-gpu2"]),
    # CASSI phase 2 (its phase-1 base has a card of its own: lorun-cassi-base)
    "lorun-cassi-9stg": (("1", None), ["lorun-cassi-9stg", "lorun-cassi-9stg-cont", "lorun-cassi-9stg-gpu"]),
    "block9-cassi": (("1", None), ["block9-cassi", "block9-cassi-cont", "block9-cassi-gpu"]),
}
# run-name suffix -> learning-curve phase label ("-contN" runs keep their suffix)
SUFFIX_LABELS = {
    "gpu": "GPU",  # the stage of experiments/gpu_session.sh (its wall_s are GPU seconds)
    "gpu2": "GPU 2",  # its second round (INIT_DIR = the first round's exports)
    "g18": "γ=18",  # adapters grown from γ = 10 to 18 (LoRunModule grow_rank)
    "joint": "joint",  # base unfrozen at a lower rate beside the adapters (LoRunModule base_lr_scale)
}


def _tag(curve: list[dict], phase: str, d_step: int, d_wall: float) -> list[dict]:
    out, seen = [], set()
    for x in curve:
        if x["step"] in seen:  # on_fit_end repeats the last validation
            continue
        seen.add(x["step"])
        out.append({"phase": phase, **x, "step": x["step"] + d_step, "wall_s": round(x["wall_s"] + d_wall, 1)})
    return out


def _curve(run: str) -> list[dict] | None:
    f = ROOT / "runs" / run / "export" / "learning_curve.json"
    return json.loads(f.read_text()) if f.is_file() else None


def main(names: list[str]) -> None:
    for name in names or list(CHAINS):
        lead, runs = CHAINS[name]
        if not (ROOT / "checkpoints" / name).is_dir():
            continue
        curve: list[dict] = []
        if lead is not None and lead[1] is not None:
            curve = _tag(_curve(lead[1]) or [], lead[0], 0, 0)
        phase = "2" if lead is not None else "1"
        for run in runs:
            c = _curve(run)
            if c:
                suffix = run[len(name) + 1:] if run.startswith(name + "-") else ""
                label = f"{phase} {SUFFIX_LABELS.get(suffix, suffix)}".rstrip()
                curve += _tag(c, label, curve[-1]["step"] if curve else 0, curve[-1]["wall_s"] if curve else 0.0)
        if not curve:
            continue
        (ROOT / "checkpoints" / name / "learning_curve.json").write_text(json.dumps(curve, indent=1) + "\n")
        tr = load_manifest().checkpoints[name].training.to_dict()
        tr.update(steps=int(curve[-1]["step"]), wall_time_s=float(curve[-1]["wall_s"]),
                  epochs=len({(c["phase"], c["epoch"]) for c in curve}))
        update_entry(name, ROOT / "checkpoints" / name, training=tr)
        refresh_card(name)
        print(f"{name}: {curve[-1]['step']} steps, {curve[-1]['wall_s']} s")


def stage(name: str, pairs: list[tuple[str, str]], out: Path) -> None:
    """``out`` = the last run export's weights and config + the published learning curve with each run's curve
    appended under its label (cumulative steps and wall time), ready for ``zoo export-run out --name name``."""
    import shutil

    curve = json.loads((ROOT / "checkpoints" / name / "learning_curve.json").read_text())
    for run, label in pairs:
        c = json.loads((Path(run) / "learning_curve.json").read_text())
        curve += _tag(c, label, curve[-1]["step"] if curve else 0, curve[-1]["wall_s"] if curve else 0.0)
    out.mkdir(parents=True, exist_ok=True)
    for f in ("model.safetensors", "config.json"):
        shutil.copyfile(Path(pairs[-1][0]) / f, out / f)
    (out / "learning_curve.json").write_text(json.dumps(curve, indent=1) + "\n")
    print(f"{out}: {name} + {len(pairs)} run(s), {curve[-1]['step']} steps, {curve[-1]['wall_s']} s")


if __name__ == "__main__":
    if sys.argv[1:2] == ["--stage"]:
        args = sys.argv[2:]
        dest = Path(args[args.index("--out") + 1])
        rest = args[1:args.index("--out")]
        stage(args[0], list(zip(rest[::2], rest[1::2])), dest)
    else:
        main(sys.argv[1:])
