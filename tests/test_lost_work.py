"""Lost work: resuming a killed run (D7, D17), runs that must not overwrite another run's export (D10), and an
all-or-nothing ``zoo export`` (D13, D18) — tiny models, a few steps, isolated folders."""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path

import lightning as L
import pytest
import torch
import yaml
from safetensors.torch import load_file, save_file
from torch.utils.data import DataLoader

import zoo
from zoo.training import ExportWeights, RestorationModule

ROOT = Path(__file__).resolve().parents[1]
BASE = ROOT / "recipes" / "_base" / "trainer.yaml"
NAME = "lorun-cs-r25"
TINY = {"widths": [8, 16], "stages": 2}
CKPT_CFG = {**TINY, "phi_init": "checkpoint", "qinit": True}  # a config that needs no data files


class _Patches(torch.utils.data.Dataset):
    """Fixed patches (a seed per index): a resumed run sees exactly the batches an uninterrupted one sees."""

    def __init__(self, n: int) -> None:
        self.n = n

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return {"target": torch.rand(1, 33, 66, generator=torch.Generator().manual_seed(i))}


class FixedData(L.LightningDataModule):
    """Two training batches per epoch, unshuffled, one validation image (``zoo fit --data=test_lost_work.FixedData``)."""

    def train_dataloader(self) -> DataLoader:
        return DataLoader(_Patches(4), batch_size=2)

    def val_dataloader(self) -> DataLoader:
        return DataLoader(_Patches(1), batch_size=1)


class Killed(Exception):
    """Stands for SIGKILL: nothing after it runs, the files are what the run had written."""


class KillAt(L.Callback):
    """Raise :class:`Killed` before optimiser step ``step + 1`` (each step sleeps a little so wall time shows)."""

    def __init__(self, step: int) -> None:
        self.step = step

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        time.sleep(0.15)
        if trainer.global_step == self.step:
            raise Killed(f"killed at step {self.step}")


def sha(p: Path) -> str:
    return hashlib.sha256(p.read_bytes()).hexdigest()


def curve(folder: Path) -> list[dict]:
    return json.loads((folder / "learning_curve.json").read_text())


def trainer(root: Path, callbacks: list, **kw) -> L.Trainer:
    opts = dict(max_steps=6, logger=False, enable_progress_bar=False, enable_model_summary=False,
                num_sanity_val_steps=0, accelerator="cpu", default_root_dir=str(root), limit_val_batches=1)
    return L.Trainer(callbacks=callbacks, **{**opts, **kw})


def fit(root: Path, callbacks: list, ckpt_path: str | None = None, **kw) -> RestorationModule:
    torch.manual_seed(0)
    m = RestorationModule(NAME, TINY)
    trainer(root, callbacks, **kw).fit(m, FixedData(), ckpt_path=ckpt_path)
    return m


# ---------------------------------------------------------------------------------------------
# D7 + D17: the shipped trainer base checkpoints; `zoo fit ... --ckpt_path last` resumes a killed run


@pytest.fixture
def tiny_leaf(tmp_path, monkeypatch) -> Path:
    """A leaf recipe composed after recipes/_base/trainer.yaml: a tiny CS model on :class:`FixedData`."""
    monkeypatch.chdir(tmp_path)
    leaf = tmp_path / "tiny.yaml"
    leaf.write_text(yaml.safe_dump({
        "trainer": {"max_steps": 6, "limit_val_batches": 1, "num_sanity_val_steps": 0, "enable_progress_bar": False,
                    "enable_model_summary": False, "accelerator": "cpu", "default_root_dir": "runs/tiny"},
        "model": {"class_path": "zoo.training.RestorationModule", "init_args": {"model": NAME, "model_config": TINY}},
        "data": {"class_path": "test_lost_work.FixedData"}}))
    return leaf


def zoo_fit(leaf: Path, *flags: str) -> int:
    from zoo.cli.main import main

    torch.manual_seed(0)
    return main(["fit", "--config", str(BASE), "--config", str(leaf), *flags])


def test_recipe_resume_after_kill_matches_uninterrupted_run(tiny_leaf, tmp_path):
    """Killed after step 4 of 6, resumed with --ckpt_path last: the same weights and validation curve as 6 straight
    steps, the curve keeps the steps before the kill and the wall time goes on (D7, D17)."""
    with pytest.raises(Killed):
        zoo_fit(tiny_leaf, "--trainer.callbacks+=test_lost_work.KillAt", "--trainer.callbacks.step=4")
    run = tmp_path / "runs/tiny"
    assert (run / "checkpoints/last.ckpt").is_file(), "the base recipe saves no checkpoint to resume from"
    before = curve(run / "export")
    assert [c["step"] for c in before] == [2, 4]
    assert zoo_fit(tiny_leaf, "--ckpt_path", "last") == 0  # resumes into the same run folder (no refusal: it is a resume)
    assert zoo_fit(tiny_leaf, "--trainer.default_root_dir=runs/straight") == 0
    resumed, straight = curve(run / "export"), curve(tmp_path / "runs/straight/export")
    assert [c["step"] for c in resumed] == [c["step"] for c in straight] == [2, 4, 6, 6]
    assert resumed[:2] == before  # the history before the kill is kept
    for a, b in zip(resumed, straight):
        assert a["val/psnr"] == pytest.approx(b["val/psnr"], abs=1e-4)
    walls = [c["wall_s"] for c in resumed]
    assert walls == sorted(walls) and walls[2] >= before[-1]["wall_s"] > 0  # wall time continues, not from 0
    wa, wb = load_file(str(run / "export/model.safetensors")), load_file(str(tmp_path / "runs/straight/export/model.safetensors"))
    assert all(torch.allclose(wa[k], wb[k], atol=1e-6) for k in wb)


def test_no_shipped_recipe_turns_the_base_checkpointing_off():
    """Every recipe composes after _base/trainer.yaml; a leaf that dropped its callbacks or checkpointing would
    leave that recipe without a resume (D7). A leaf may restate the list (a different export monitor) only whole:
    with the export and the resumable checkpoint both in it."""
    base = yaml.safe_load(BASE.read_text())["trainer"]
    assert base["enable_checkpointing"] is True

    def keeps_both(callbacks):
        names = [cb["class_path"].rsplit(".", 1)[-1] for cb in callbacks]
        return "RunCheckpoint" in names and "ExportWeights" in names

    assert keeps_both(base["callbacks"])
    for f in sorted((ROOT / "recipes").rglob("*.yaml")):
        tr = (yaml.safe_load(f.read_text()) or {}).get("trainer") or {}
        if f != BASE:
            assert "enable_checkpointing" not in tr, f
            assert "callbacks" not in tr or keeps_both(tr["callbacks"]), f


def test_resume_keeps_learning_curve_and_wall_time(tmp_path):
    """With Lightning's own ModelCheckpoint: the curve and wall seconds live in the checkpoint (D17)."""
    from lightning.pytorch.callbacks import ModelCheckpoint

    def cbs(*extra):
        return [ExportWeights(), ModelCheckpoint(dirpath=str(tmp_path / "checkpoints"), save_last=True), *extra]

    with pytest.raises(Killed):
        fit(tmp_path, cbs(KillAt(4)))
    before = curve(tmp_path / "export")
    fit(tmp_path, cbs(KillAt(-1)), ckpt_path="last")
    after = curve(tmp_path / "export")
    assert [c["step"] for c in after] == [2, 4, 6, 6] and after[:2] == before
    assert after[2]["wall_s"] >= before[-1]["wall_s"] >= 0.3  # 4 sleeps of 0.15 s before the kill


# ---------------------------------------------------------------------------------------------
# D10: a run never replaces another run's export unless asked


def test_fast_dev_run_keeps_a_trained_export(tmp_path):
    from zoo.training.callbacks import RunCheckpoint

    fit(tmp_path, [ExportWeights(), RunCheckpoint()])
    weights, last = tmp_path / "export/model.safetensors", tmp_path / "checkpoints/last.ckpt"
    kept, kept_curve, kept_last = sha(weights), curve(tmp_path / "export"), sha(last)
    fit(tmp_path, [ExportWeights(), RunCheckpoint()], fast_dev_run=1)
    assert sha(weights) == kept and curve(tmp_path / "export") == kept_curve
    assert sha(last) == kept_last  # nor the run's resume point
    smoke = tmp_path / "export-fast-dev-run"
    assert (smoke / "model.safetensors").is_file()  # the smoke test's export goes beside it
    # validating a run does not rewrite its export either
    t = trainer(tmp_path, [ExportWeights()])
    t.validate(RestorationModule(NAME, TINY), FixedData())
    assert sha(weights) == kept and curve(tmp_path / "export") == kept_curve


def test_fast_dev_run_export_in_a_fresh_folder_is_replaced_by_the_real_run(tmp_path):
    """Smoke tests of chained recipes read a fast_dev_run export where a real one would be; the real run replaces
    it without asking."""
    fit(tmp_path, [ExportWeights()], fast_dev_run=1)
    assert (tmp_path / "export/model.safetensors").is_file() and (tmp_path / "export/FAST_DEV_RUN").is_file()
    fit(tmp_path, [ExportWeights()], max_steps=2)
    assert not (tmp_path / "export/FAST_DEV_RUN").exists() and curve(tmp_path / "export")[-1]["step"] == 2


def test_fresh_run_refuses_an_existing_export(tmp_path):
    fit(tmp_path, [ExportWeights()], max_steps=2)
    weights = tmp_path / "export/model.safetensors"
    kept = sha(weights)
    with pytest.raises(FileExistsError) as e:
        fit(tmp_path, [ExportWeights()], max_steps=2)
    msg = str(e.value)
    assert str(tmp_path / "export") in msg and "overwrite: true" in msg and "default_root_dir" in msg
    assert "--ckpt_path last" in msg
    assert sha(weights) == kept
    fit(tmp_path, [ExportWeights(overwrite=True)], max_steps=4)  # asked: replaced
    assert sha(weights) != kept and curve(tmp_path / "export")[-1]["step"] == 4


def test_resume_without_a_checkpoint_keeps_the_killed_runs_export(tmp_path):
    """``--ckpt_path last`` with no checkpoint: Lightning starts from scratch; the killed run's export stays (D7)."""
    from zoo.training.callbacks import RunCheckpoint

    with pytest.raises(Killed):
        fit(tmp_path, [ExportWeights(), KillAt(4)])  # a run without checkpoints (as the recipes were)
    kept = sha(tmp_path / "export/model.safetensors")
    with pytest.raises(FileExistsError, match="no checkpoint"):
        fit(tmp_path, [ExportWeights(), RunCheckpoint()], ckpt_path="last")
    assert sha(tmp_path / "export/model.safetensors") == kept


def test_run_checkpoint_every_n_steps_resumes_exactly(tmp_path):
    """RunCheckpoint (the base recipe's checkpoint) in <default_root_dir>/checkpoints every N optimiser steps, without
    a validation (an epoch boundary: mid-epoch, Lightning restarts a plain DataLoader's epoch)."""
    from zoo.training.callbacks import RunCheckpoint

    def cbs(*extra):
        return [ExportWeights(), RunCheckpoint(every_n_train_steps=4), *extra]

    with pytest.raises(Killed):
        fit(tmp_path / "a", cbs(KillAt(5)), limit_val_batches=0)
    assert torch.load(tmp_path / "a/checkpoints/last.ckpt", weights_only=False)["global_step"] == 4
    resumed = fit(tmp_path / "a", cbs(), ckpt_path="last", limit_val_batches=0)
    straight = fit(tmp_path / "b", cbs(), limit_val_batches=0)
    sa, sb = resumed.net.state_dict(), straight.net.state_dict()
    assert all(torch.allclose(sa[k], sb[k], atol=1e-6) for k in sb)


# ---------------------------------------------------------------------------------------------
# D13 + D18: `zoo export` is all or nothing


@pytest.fixture
def hub(tmp_path, monkeypatch) -> Path:
    """An isolated manifest with ``checkpoints/lorun-cs-r25`` exported from run ``run_a``; returns tmp_path."""
    monkeypatch.setenv("ZOO_MANIFEST", str(tmp_path / "checkpoints_manifest.json"))
    monkeypatch.delenv("ZOO_CHECKPOINTS", raising=False)
    from zoo.hub.export import export_run

    export_run(make_run(tmp_path / "run_a", seed=0, steps=10), NAME, build)
    return tmp_path


def build(**cfg) -> torch.nn.Module:
    return zoo.create(NAME, **cfg)


def make_run(folder: Path, seed: int, steps: int, config: dict = CKPT_CFG, weights: dict | None = None) -> Path:
    """A run's export folder as ExportWeights writes it."""
    folder.mkdir(parents=True)
    torch.manual_seed(seed)
    sd = weights if weights is not None else {k: v.contiguous() for k, v in build(**CKPT_CFG).state_dict().items()}
    save_file(sd, str(folder / "model.safetensors"))
    (folder / "config.json").write_text(json.dumps({"model": NAME, "config": config}))
    (folder / "learning_curve.json").write_text(json.dumps([{"step": steps, "epoch": 0, "wall_s": 1.0,
                                                             "val/psnr": 20.0 + steps}]))
    return folder


def snapshot(root: Path) -> dict[str, str]:
    """Every file under the checkpoints folder and the manifest, by sha256."""
    files = [p for p in (root / "checkpoints").rglob("*") if p.is_file()] + [root / "checkpoints_manifest.json"]
    return {str(p.relative_to(root)): sha(p) for p in files}


def assert_unchanged(root: Path, before: dict[str, str]) -> None:
    assert snapshot(root) == before
    assert sorted(p.name for p in (root / "checkpoints").iterdir()) == [NAME], "a staging folder was left"
    zoo.load(NAME)  # the old weights are still there and still verify against the manifest


def test_export_with_a_broken_manifest_changes_nothing(hub):
    from zoo.hub import ManifestError
    from zoo.hub.export import export_run

    (hub / "checkpoints_manifest.json").write_text("{broken")
    before = snapshot(hub)
    with pytest.raises(ManifestError):
        export_run(make_run(hub / "run_b", seed=1, steps=20), NAME, build, overwrite=True)
    assert snapshot(hub) == before
    assert sorted(p.name for p in (hub / "checkpoints").iterdir()) == [NAME]


@pytest.mark.parametrize("where", ["refresh_card", "save", "swap"])
def test_export_failure_after_the_weights_are_written_keeps_the_old_checkpoint(hub, monkeypatch, where):
    import os

    import zoo.hub.export as export
    from zoo.hub.manifest import Manifest

    def boom(*a, **k):
        raise OSError("injected failure")

    if where == "refresh_card":
        monkeypatch.setattr(export, "refresh_card", boom)
    elif where == "save":
        monkeypatch.setattr(Manifest, "save", boom)
    else:  # the rename of the staged folder onto checkpoints/NAME
        real = os.replace

        def replace(src, dst):
            if Path(dst) == hub / "checkpoints" / NAME and Path(src).name == NAME:  # not the move back
                boom()
            return real(src, dst)

        monkeypatch.setattr(export.os, "replace", replace)
    before = snapshot(hub)
    with pytest.raises(OSError, match="injected"):
        export.export_run(make_run(hub / "run_b", seed=1, steps=20), NAME, build, overwrite=True)
    assert_unchanged(hub, before)


def test_export_overwrite_swaps_the_whole_folder(hub):
    from zoo.hub.export import export_run

    rec = export_run(make_run(hub / "run_b", seed=1, steps=20), NAME, build, overwrite=True)
    dst = hub / "checkpoints" / NAME
    assert sha(dst / "model.safetensors") == rec.files["model.safetensors"].sha256
    new, src = load_file(str(dst / "model.safetensors")), load_file(str(hub / "run_b/model.safetensors"))
    assert all(torch.equal(new[k], src[k]) for k in src)
    assert rec.training.steps == 20 and curve(dst)[-1]["step"] == 20
    assert "| 20 |" in (dst / "README.md").read_text()  # the card shows the new learning curve
    assert sorted(p.name for p in (hub / "checkpoints").iterdir()) == [NAME]
    zoo.load(NAME)


def test_export_of_weights_that_do_not_fit_leaves_nothing(hub):
    from zoo.hub.export import export_run

    other = {k: v.contiguous() for k, v in zoo.create(NAME, **{**CKPT_CFG, "stages": 3}).state_dict().items()}
    run = make_run(hub / "run_b", seed=1, steps=20, weights=other)
    dest = hub / "new" / "dest"
    with pytest.raises(RuntimeError) as e:
        export_run(run, NAME, build, dest=dest)
    msg = str(e.value)
    assert NAME in msg and str(run) in msg and "unexpected keys" in msg and len(msg) < 800, msg
    assert not (hub / "new").exists()


def test_export_of_a_config_with_an_unknown_key_leaves_nothing(hub):
    from zoo.hub.export import export_run

    run = make_run(hub / "run_b", seed=1, steps=20, config={**CKPT_CFG, "bogus": 1})
    dest = hub / "new" / "dest"
    with pytest.raises(ValueError, match="config.json"):
        export_run(run, NAME, build, dest=dest)
    assert not (hub / "new").exists()


def test_ckpt_path_last_without_a_checkpoint_refuses_to_start_fresh(tiny_leaf, capsys):
    """`zoo fit ... --ckpt_path last` in an empty run folder: Lightning would only warn and train from scratch."""
    assert zoo_fit(tiny_leaf, "--ckpt_path", "last") == 2
    assert "nothing to resume" in capsys.readouterr().err
    assert not (tiny_leaf.parent / "runs/tiny/export/model.safetensors").exists()
    from zoo.training.callbacks import ExportWeights

    assert ExportWeights.require_resume is False  # reset after the run


class _Snap(L.Callback):
    """The network's weights after every validation, by step."""

    def __init__(self) -> None:
        self.at: dict[int, dict[str, torch.Tensor]] = {}

    def on_validation_end(self, trainer, pl_module) -> None:
        self.at[trainer.global_step] = {k: v.detach().clone() for k, v in pl_module.net.state_dict().items()}


@pytest.mark.parametrize("mode", ["max", "min"])
def test_monitored_export_is_the_best_on_validation(tmp_path, mode):
    snap = _Snap()  # runs before ExportWeights: Lightning orders callbacks as given
    fit(tmp_path, [snap, ExportWeights(monitor="val/psnr", mode=mode)], max_steps=8)
    rows = [r for r in curve(tmp_path / "export") if "val/psnr" in r]
    best, flags = None, []
    for r in rows:  # a row exports exactly when it beats every earlier one
        better = best is None or (r["val/psnr"] > best if mode == "max" else r["val/psnr"] < best)
        flags.append(better)
        best = r["val/psnr"] if better else best
    assert [r["exported"] for r in rows] == flags and flags.count(True) >= 1
    step = max(r["step"] for r, f in zip(rows, flags) if f)
    exported = load_file(str(tmp_path / "export/model.safetensors"))
    assert all(torch.equal(exported[k], snap.at[step][k].float()) for k in exported)
    with pytest.raises(ValueError, match="'max'"):
        ExportWeights(monitor="val/psnr", mode="best")


def test_export_of_a_monitored_run_records_the_selected_step(hub):
    """A run exported by ExportWeights(monitor=...) holds the weights of its best validation: the manifest's steps are
    that row's, and it says which step of how many was chosen."""
    from zoo.hub.export import export_run
    from zoo.hub.manifest import load_manifest

    run = make_run(hub / "run_m", seed=2, steps=30)
    rows = [{"step": 10, "epoch": 0, "wall_s": 1.0, "val/psnr": 21.0, "exported": True},
            {"step": 20, "epoch": 1, "wall_s": 2.0, "val/psnr": 23.0, "exported": True},
            {"step": 30, "epoch": 2, "wall_s": 3.0, "val/psnr": 22.0, "exported": False}]
    (run / "learning_curve.json").write_text(json.dumps(rows))
    export_run(run, NAME, build, overwrite=True)
    tr = load_manifest().checkpoints[NAME].training.to_dict()
    assert tr["steps"] == 20 and tr["epochs"] == 2 and "step 20 of 30" in tr["selected"]


def test_ema_weights_are_what_validation_scores_and_export_writes(tmp_path):
    """With the EMA callback, every export holds the averaged weights (the ones validation scored), not the raw
    weights of that step; the fit ends with the average in the module."""
    from zoo.training import EMA

    seen = []

    class Check(L.Callback):  # runs after ExportWeights and EMA (callbacks run in list order)
        def on_validation_end(self, trainer, pl_module) -> None:
            avg = trainer.callbacks[1]._average_model.module.net.state_dict()
            got = load_file(str(tmp_path / "export" / "model.safetensors"))
            raw = pl_module.net.state_dict()
            seen.append(all(torch.equal(got[k], avg[k].float()) for k in got)
                        and not all(torch.equal(got[k], raw[k].float()) for k in got))

    with pytest.raises(ValueError, match="decay"):
        EMA(decay=1.0)
    m = fit(tmp_path, [ExportWeights(), EMA(decay=0.5), Check()], max_steps=6, val_check_interval=2)
    assert seen and all(seen), seen
    got = load_file(str(tmp_path / "export" / "model.safetensors"))
    assert all(torch.equal(got[k], v.float()) for k, v in m.net.state_dict().items())
