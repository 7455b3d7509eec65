"""Copy every ``experiments/lineage/<checkpoint>.yaml`` into ``checkpoints_manifest.json`` as ``training.lineage``.

The other ``training`` keys stay; ``training.recipe`` becomes the last stage's leaf recipe (its last ``--config``
outside ``recipes/_base/``). The manifest is rewritten the way ``zoo.hub`` writes it (sorted keys, indent 2), so a
second run changes nothing. Refresh the checkpoint cards afterwards (``zoo.hub`` ``refresh_card``).

    python experiments/lineage_to_manifest.py [--check]     # --check: exit 1 if the manifest is not up to date
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
LINEAGE = ROOT / "experiments" / "lineage"
MANIFEST = ROOT / "checkpoints_manifest.json"


def lineages() -> dict[str, list[dict]]:
    """checkpoint name -> its stage list (``_*.yaml`` files, such as ``_not_adopted.yaml``, name no checkpoint)."""
    return {p.stem: yaml.safe_load(p.read_text()) for p in sorted(LINEAGE.glob("*.yaml")) if not p.name.startswith("_")}


def leaf_recipe(stage: dict) -> str:
    return [r for r in stage["recipe"] if not r.startswith("recipes/_base/")][-1]


def updated(manifest: dict) -> dict:
    lin = lineages()
    records = manifest["checkpoints"]
    if set(lin) != set(records):
        raise SystemExit(f"lineage files {sorted(lin)} and manifest records {sorted(records)} differ: "
                         f"{sorted(set(lin) ^ set(records))}")
    for name, stages in lin.items():
        training = records[name].setdefault("training", {})
        training["lineage"] = stages
        training["recipe"] = leaf_recipe(stages[-1])
    return manifest


def main(argv: list[str]) -> int:
    text = MANIFEST.read_text(encoding="utf-8")
    new = json.dumps(updated(json.loads(text)), indent=2, sort_keys=True) + "\n"
    if "--check" in argv:
        print("up to date" if new == text else "checkpoints_manifest.json: training.lineage is not up to date")
        return int(new != text)
    if new != text:
        tmp = MANIFEST.with_suffix(".json.tmp")
        tmp.write_text(new, encoding="utf-8")
        tmp.replace(MANIFEST)
    print(f"{MANIFEST.name}: training.lineage of {len(lineages())} checkpoints {'written' if new != text else 'already up to date'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
