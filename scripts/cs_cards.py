"""Merge the learning curves of every phase into each CS checkpoint and refresh its card.

    python scripts/cs_cards.py        # after scripts/train_cs.sh's export stage

Phase 1 (the shared 25 % base) → phase 2 → continuation, with cumulative steps and wall time;
the manifest's training block gets the totals.
"""

from __future__ import annotations

import json
from pathlib import Path

from zoo.hub.manifest import load_manifest, update_entry
from zoo.hub.publish import refresh_card

ROOT = Path(__file__).resolve().parents[1]
RUNS = {
    "lorun-cs-r25": ["lorun-cs-r25", "lorun-cs-r25-cont"],
    "block9-cs-r25": ["block9-cs-r25", "block9-cs-r25-cont"],
    "lorun-cs-r10": ["lorun-cs-r10", "lorun-cs-r10-cont", "lorun-cs-r10-cont2"],
    "lorun-cs-r50": ["lorun-cs-r50", "lorun-cs-r50-cont"],
}


def _tag(curve: list[dict], phase: str, d_step: int, d_wall: float) -> list[dict]:
    out, seen = [], set()
    for x in curve:
        if x["step"] in seen:  # on_fit_end repeats the last validation
            continue
        seen.add(x["step"])
        out.append({"phase": phase, **x, "step": x["step"] + d_step, "wall_s": round(x["wall_s"] + d_wall, 1)})
    return out


def main() -> None:
    base = json.loads((ROOT / "runs/lorun-cs-base-r25/export/learning_curve.json").read_text())
    for name, runs in RUNS.items():
        if not (ROOT / "checkpoints" / name).is_dir():
            continue
        curve = _tag(base, "1 base 25%", 0, 0)
        for i, run in enumerate(runs):
            f = ROOT / "runs" / run / "export" / "learning_curve.json"
            if f.is_file():
                curve += _tag(json.loads(f.read_text()), "2" if i == 0 else "2 cont" + (str(i) if i > 1 else ""), curve[-1]["step"], curve[-1]["wall_s"])
        (ROOT / "checkpoints" / name / "learning_curve.json").write_text(json.dumps(curve, indent=1) + "\n")
        tr = load_manifest().checkpoints[name].training.to_dict()
        tr.update(steps=int(curve[-1]["step"]), wall_time_s=float(curve[-1]["wall_s"]),
                  epochs=len({(c["phase"], c["epoch"]) for c in curve}))
        update_entry(name, ROOT / "checkpoints" / name, training=tr)
        refresh_card(name)
        print(f"{name}: {curve[-1]['step']} steps, {curve[-1]['wall_s']} s")


if __name__ == "__main__":
    main()
