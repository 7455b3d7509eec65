"""Model cards (``README.md`` of a checkpoint folder) written from the manifest and the model's metadata.

Example:
    >>> from zoo.hub.card import model_card
    >>> print(model_card("lorun-cs-r25")[:3])  # doctest: +SKIP
    ---
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from zoo.hub.manifest import Manifest, load_manifest, update_entry
from zoo.hub.meta import model_meta
from zoo.hub.resolve import get_record, local_candidates
from zoo.utils.files import atomic_write

__all__ = ["model_card", "refresh_card"]


def _yaml_list(items: list[str]) -> str:
    return "".join(f"\n- {i}" for i in items) if items else " []"


def model_card(name: str, manifest: Manifest | None = None) -> str:
    """Model card (``README.md``) for ``name`` from the registry and the manifest.

    YAML front matter (``library_name: unfolding-zoo``, license, tags, datasets), then the
    description, the training block, a bench table and the one-line usage.
    """
    meta = model_meta(name)
    m = manifest if manifest is not None else load_manifest()
    rec = m.checkpoints.get(name)
    training = rec.training if rec else None
    bench = rec.bench if rec else None
    datasets = [training.data] if training and training.data else []
    tags = ["image-restoration", "deep-unfolding", meta["task"], meta["architecture"], "pytorch", "safetensors"]
    lines = ["---", "library_name: unfolding-zoo", f"license: {meta['licence'].lower()}",
             f"tags:{_yaml_list(tags)}", f"datasets:{_yaml_list(datasets)}", "---", "",
             f"# {name}", "", meta["description"] or f"{meta['architecture']} for {meta['task']}.", ""]
    if meta["paper"]:
        lines += [f"Paper: {meta['paper']}", ""]
    lines += ["## Usage", "", "```python", "import zoo", "", f'net = zoo.load("{name}")', "```", ""]
    blocker = meta.get("onnx_blocker") or ""
    how = (f"`zoo export {name} -o {name}.pt` (TorchScript; ONNX is refused: {blocker})" if blocker else
           f"`zoo export {name} -o {name}.onnx` (or `.pt`, TorchScript)")
    lines += [f"Deployment: {how} — LoRA merged into per-stage weights, the physics baked in, parity with PyTorch "
              "checked and reported at export (max |Δ|, PSNR, opset, in the file's `zoo.export` metadata).", ""]
    if rec is not None:
        lines += ["## Configuration", "", "```json"]
        lines += [json.dumps(rec.config, indent=2, sort_keys=True), "```", ""]
    if training is not None:
        lines += ["## Training", ""]
        blocks = training.to_dict()
        lineage = blocks.pop("lineage", None)
        for k, v in blocks.items():
            lines.append(f"- **{k}**: {v}")
        lines.append("")
        if lineage:
            lines += _lineage_table(lineage)
    curve = _learning_curve(name, m)
    if curve:
        keys = [k for k in ("val/psnr", "val/ssim", "train/loss") if any(k in c for c in curve)]
        lead = ["phase"] if any("phase" in c for c in curve) else []
        lead += ["step", "epoch", "wall_s"]
        lines += ["## Learning curve", "", "(validation on held-out training images, from `learning_curve.json`)", "",
                  "| " + " | ".join(lead + keys) + " |", "|" + "---|" * (len(lead) + len(keys))]
        for c in curve:
            lines.append("| " + " | ".join(str(c.get(k, "")) for k in lead) + " | "
                         + " | ".join(f"{c[k]:.4g}" if k in c else "–" for k in keys) + " |")
        lines.append("")
    if bench is not None and bench.results:
        metrics = sorted({k for r in bench.results.values() for k in r})
        lines += ["## Results", "", "| dataset | " + " | ".join(metrics) + " |",
                  "|---|" + "---|" * len(metrics)]
        for ds, r in bench.results.items():
            lines.append(f"| {ds} | " + " | ".join(f"{r[k]:.4g}" if k in r else "–" for k in metrics) + " |")
        lines.append("")
        if bench.command:
            lines += [f"Reproduce with `{bench.command}`.", ""]
        if bench.protocol:
            lines += ["Protocol: " + ", ".join(f"{k}={v}" for k, v in bench.protocol.items()), ""]
    lines += ["Weights are pinned by sha256 in unfolding-zoo's `checkpoints_manifest.json` and verified on load.", ""]
    return "\n".join(lines)


def _lineage_table(stages: list[dict]) -> list[str]:
    """The ordered training stages (``training.lineage``) as a table with each stage's command."""
    out = ["### Lineage", "", "Every stage, in order (`zoo fit` + the configs and flags; the record is "
           "`experiments/lineage/<name>.yaml` in the repository):", "",
           "| stage | steps | start | command | hardware |", "|---|---|---|---|---|"]
    for st in stages:
        cmd = "zoo fit " + " ".join(f"--config {r}" for r in st.get("recipe", [])) + "".join(
            f" {o}" for o in st.get("overrides", []))
        note = f" ({st['note']})" if st.get("note") else ""
        out.append(f"| {st.get('id', '')}{note} | {st.get('steps', '')} | {st.get('init') or 'scratch'} | "
                   f"`{cmd}` | {st.get('hardware', '')} |")
    return out + [""]


def _learning_curve(name: str, m) -> list[dict]:
    for f in local_candidates(name, m):
        p = Path(f) / "learning_curve.json"
        if p.is_file():
            try:
                return list(json.loads(p.read_text(encoding="utf-8")))
            except ValueError:
                return []
    return []


def refresh_card(name: str, folder: str | os.PathLike | None = None, repin: bool = True,
                 manifest: Manifest | None = None) -> Path:
    """(Re)write ``README.md`` of the checkpoint folder from :func:`model_card` and re-pin its hash.

    ``folder`` defaults to the first local folder holding ``model.safetensors``
    (``$ZOO_CHECKPOINTS/<name>``, then ``checkpoints/<name>``). If the checkpoint was already
    published, the Hub's README now differs from the manifest: ``published`` becomes false
    (the pinned revision is kept, the weights there are unchanged) until ``zoo publish`` runs again.

    ``repin=False`` writes the card only (a caller that records the folder itself afterwards).

    Returns:
        The README path.
    """
    m = manifest if manifest is not None else load_manifest()
    get_record(name, m)  # only cards of recorded checkpoints: the card shows their manifest data
    if folder is None:
        hits = [f for f in local_candidates(name, m) if (f / "model.safetensors").is_file()]
        if not hits:
            raise FileNotFoundError(f"no local checkpoint folder of {name} (looked in: "
                                    f"{', '.join(map(str, local_candidates(name, m)))})")
        folder = hits[0]
    folder = Path(folder)
    readme = folder / "README.md"
    text = model_card(name, m)
    if readme.is_file() and readme.read_text(encoding="utf-8") == text:
        return readme
    with atomic_write(readme, overwrite=True) as tmp:
        tmp.write_text(text, encoding="utf-8")
    if repin:
        update_entry(name, folder, path=m.path)  # re-pins README.md (and flags a stale Hub copy)
    return readme
