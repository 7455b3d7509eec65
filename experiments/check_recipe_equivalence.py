"""Check that every training stage of the lineage files composes to the configuration of the flat recipe it replaces.

For each stage of ``experiments/lineage/*.yaml`` (and ``_not_adopted.yaml``), the composed configuration
``zoo fit --print_config --config <recipe>... <overrides>`` is compared with ``zoo fit --print_config --config
<old>`` of the flat file ``recipes/<stage id>.yaml`` read from git (``git show REV:recipes/<id>.yaml``; REV is HEAD
while the flat files are there, else the parent of the commit that removed them; a stage's ``file_commit`` names
the version it actually ran from, when the file was edited afterwards, and HEAD's version is then compared too).

Run-directory values are resolved the way the callbacks resolve them before comparing (``ExportWeights``
``dirpath: null`` = ``<default_root_dir>/export``; ``RunCSVLogger`` ``save_dir: null`` = ``default_root_dir``, the
``CSVLogger`` subclass that only adds that default); what remains is reported key by key.

    python experiments/check_recipe_equivalence.py [STAGE_ID ...]      # exit status 1 when a stage differs
"""

from __future__ import annotations

import contextlib
import io
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
LINEAGE = ROOT / "experiments" / "lineage"
RUN_LOGGER = "zoo.training.callbacks.RunCSVLogger"
CSV_LOGGER = "lightning.pytorch.loggers.CSVLogger"


def stages() -> dict[str, dict]:
    """Every stage of the lineage files by id (a stage shared by several lineages must be the same everywhere)."""
    out: dict[str, dict] = {}
    for f in sorted(LINEAGE.glob("*.yaml")):
        for st in yaml.safe_load(f.read_text()):
            if st["id"] in out and out[st["id"]] != st:
                raise SystemExit(f"stage {st['id']} differs between lineage files ({f.name})")
            out[st["id"]] = st
    return out


def git(*args: str) -> str:
    return subprocess.run(["git", *args], cwd=ROOT, check=True, capture_output=True, text=True).stdout


def old_text(stage_id: str, rev: str | None = None) -> tuple[str, str]:
    """(revision, text) of the flat recipe ``recipes/<stage_id>.yaml``."""
    path = f"recipes/{stage_id}.yaml"
    if rev is None:
        rev = "HEAD"
        if subprocess.run(["git", "cat-file", "-e", f"HEAD:{path}"], cwd=ROOT, capture_output=True).returncode:
            rev = git("rev-list", "-1", "HEAD", "--", path).strip() + "^"  # the parent of the removing commit
    return rev, git("show", f"{rev}:{path}")


def print_config(args: list[str]) -> dict:
    from zoo.cli.main import main

    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        try:
            main(["fit", *args, "--print_config"])
        except SystemExit as e:
            if e.code not in (0, None):
                raise RuntimeError(f"zoo fit {' '.join(args)} --print_config exited with {e.code}") from None
    return yaml.safe_load(buf.getvalue())


def resolve_run_dir(cfg: dict) -> dict:
    """Write out the run-directory values the callbacks derive from ``trainer.default_root_dir``."""
    tr = cfg["trainer"]
    root = tr.get("default_root_dir") or "."
    lg = tr.get("logger")
    if isinstance(lg, dict) and lg.get("class_path") == RUN_LOGGER:
        lg["class_path"] = CSV_LOGGER
        if lg["init_args"].get("save_dir") is None:
            lg["init_args"]["save_dir"] = root
    for cb in tr.get("callbacks") or []:
        if cb.get("class_path", "").endswith("ExportWeights"):
            if cb["init_args"].get("dirpath") is None:
                cb["init_args"]["dirpath"] = f"{root}/export"
    return cfg


def flatten(x, prefix: str = "") -> dict[str, object]:
    if isinstance(x, dict):
        out: dict[str, object] = {}
        for k, v in x.items():
            out.update(flatten(v, f"{prefix}.{k}" if prefix else str(k)))
        return out or {prefix: {}}
    if isinstance(x, list) and any(isinstance(v, (dict, list)) for v in x):
        out = {}
        for i, v in enumerate(x):
            out.update(flatten(v, f"{prefix}[{i}]"))
        return out or {prefix: []}
    return {prefix: x}


def diff(old: dict, new: dict) -> list[str]:
    a, b = flatten(old), flatten(new)
    return [f"{k}: {a.get(k, '<absent>')!r} -> {b.get(k, '<absent>')!r}"
            for k in sorted(set(a) | set(b)) if a.get(k, "<absent>") != b.get(k, "<absent>")]


def compare(stage: dict, text: str) -> list[str]:
    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / f"{stage['id']}.yaml"
        p.write_text(text)
        old = _drop_safety(print_config(["--config", str(p)]))
    new_args = [a for r in stage["recipe"] for a in ("--config", str(ROOT / r))] + list(stage["overrides"])
    new = _drop_safety(resolve_run_dir(print_config(new_args)))
    return diff(old, new)


def _drop_safety(cfg: dict) -> dict:
    """Leave out what only decides what a run may overwrite or how it resumes, not what it trains: the
    resumable checkpoint (``RunCheckpoint``, ``enable_checkpointing``) and ``ExportWeights.overwrite``,
    added after the old stages ran."""
    tr = cfg["trainer"]
    tr["callbacks"] = [cb for cb in tr.get("callbacks") or [] if not cb.get("class_path", "").endswith("RunCheckpoint")]
    for cb in tr["callbacks"]:
        if cb.get("class_path", "").endswith("ExportWeights"):
            cb.get("init_args", {}).pop("overwrite", None)
    tr.pop("enable_checkpointing", None)
    return cfg


def main(argv: list[str]) -> int:
    sys.argv[1:] = []  # LightningCLI gets its arguments from print_config's list, not from ours
    every = stages()
    ids = argv or list(every)
    bad = 0
    for sid in ids:
        st = every[sid]
        rev, text = old_text(sid, st.get("file_commit"))
        d = compare(st, text)
        label = f"{sid:34s} recipes/{sid}.yaml@{rev[:9]}"
        print(f"{label}: {'identical after resolving the run directory' if not d else 'DIFFERS'}")
        for line in d:
            print(f"    {line}")
        bad += bool(d)
        if st.get("file_commit"):
            head_rev, head_text = old_text(sid)
            if head_text != text:
                print(f"    (recipes/{sid}.yaml@{head_rev[:9]}, edited after the run, differs from the stage by:)")
                for line in compare(st, head_text):
                    print(f"      {line}")
    print(f"{len(ids)} stages, {len(ids) - bad} identical up to the run directory, {bad} differing")
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
