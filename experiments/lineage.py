"""Read the lineage files: the ``zoo fit`` arguments of a training stage, a checkpoint's stages, a stage's run folder.

    python experiments/lineage.py args STAGE_ID        # the zoo fit arguments of a stage, one per line
    python experiments/lineage.py stages CHECKPOINT    # the stage ids of a checkpoint, in training order
    python experiments/lineage.py run-dir STAGE_ID     # the stage's trainer.default_root_dir
    python experiments/lineage.py recipe STAGE_ID      # the stage's leaf recipe (its last --config outside _base/)
    python experiments/lineage.py train CHECKPOINT [--dry-run]   # replay every stage from scratch, in order

``train`` runs ``zoo fit`` per stage in the working directory (runs/ below it); a stage whose run export exists is
skipped (stages such as lorun_cs_phase1 are shared). A stage that loaded a published version of the checkpoint
(``init: name@sha``) starts from the previous stage's run export instead, so the replay depends on no published weights
(fp32 run exports where the published file is float16).

Used by experiments/train_cs.sh and experiments/gpu_session.sh (``mapfile -t ARGS < <(python ... args ID)``).
"""

from __future__ import annotations

import sys
from pathlib import Path

import yaml

LINEAGE = Path(__file__).resolve().parent / "lineage"


def stages() -> dict[str, dict]:
    out: dict[str, dict] = {}
    for f in sorted(LINEAGE.glob("*.yaml")):
        for st in yaml.safe_load(f.read_text()):
            out.setdefault(st["id"], st)
    return out


def stage_args(stage_id: str) -> list[str]:
    st = stages()[stage_id]
    return [a for r in st["recipe"] for a in ("--config", r)] + list(st["overrides"])


def run_dir(stage_id: str) -> str:
    st = stages()[stage_id]
    root = None
    for r in st["recipe"]:
        root = ((yaml.safe_load((LINEAGE.parents[1] / r).read_text()) or {}).get("trainer") or {}).get("default_root_dir", root)
    for a in st["overrides"]:
        if a.startswith("--trainer.default_root_dir="):
            root = a.split("=", 1)[1]
    return root or "."


def replay(checkpoint: str, dry_run: bool = False) -> int:
    import shlex
    import subprocess

    lineage = yaml.safe_load((LINEAGE / f"{checkpoint}.yaml").read_text())
    for i, st in enumerate(lineage):
        args = [str(LINEAGE.parents[1] / a) if a.startswith("recipes/") else a for a in stage_args(st["id"])]
        args += st.get("session_overrides", [])  # what the orchestrating script added (GPU steps from its calibration)
        prev = lineage[i - 1] if i else None
        if prev is not None and st["init"] is not None and st["init"] == prev.get("published") and "@" in st["init"]:
            args.append(f"--model.init_args.init_weights={run_dir(prev['id'])}/export/model.safetensors")
        cmd = [sys.executable, "-m", "zoo.cli.main", "fit", *args]
        done = Path(run_dir(st["id"])) / "export" / "model.safetensors"
        print(("# done: " if done.exists() else "") + shlex.join(["zoo", *cmd[3:]]), flush=True)
        if not dry_run and not done.exists():
            subprocess.run(cmd, check=True)
    return 0


def main(argv: list[str]) -> int:
    if len(argv) >= 2 and argv[0] == "train":
        return replay(argv[1], dry_run="--dry-run" in argv[2:])
    if len(argv) != 2 or argv[0] not in ("args", "stages", "run-dir", "recipe"):
        print(__doc__, file=sys.stderr)
        return 2
    cmd, key = argv
    if cmd == "stages":
        print("\n".join(st["id"] for st in yaml.safe_load((LINEAGE / f"{key}.yaml").read_text())))
    elif key not in stages():
        print(f"no stage {key!r} in {LINEAGE}", file=sys.stderr)
        return 2
    else:
        st = stages()[key]
        print({"args": lambda: "\n".join(stage_args(key)), "run-dir": lambda: run_dir(key),
               "recipe": lambda: [r for r in st["recipe"] if "/_base/" not in r][-1]}[cmd]())
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
