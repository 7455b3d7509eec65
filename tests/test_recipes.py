"""Every recipe in recipes/ runs through the real entry point (`zoo fit`) on tiny fake data, composed with its bases;
the lineage files (experiments/lineage/) name only recipes that exist and are copied into the manifest."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
RECIPES = ROOT / "recipes"
LINEAGE = ROOT / "experiments" / "lineage"
T, G = "_base/trainer.yaml", "_base/gpu.yaml"
PGA_WV = ["--model.init_args.model=pga-pansharpen-wv", "--model.init_args.model_config={step_init: 0.5}"]

# name: (--config files under recipes/, extra flags, the case whose run export this one reads under runs/ or None).
# Consumers name their producer explicitly; the run_case fixture trains the producer first, in its own folder.
CASES: dict[str, tuple[list[str], list[str], str | None]] = {
    "cs_phase1": ([T, "lorun/cs/phase1.yaml"], [], None),
    "cs_phase2_r25": ([T, "lorun/cs/phase2_r25.yaml"], [], "cs_phase1"),
    "cs_phase2_r10": ([T, "lorun/cs/phase2_r10.yaml"], [], "cs_phase1"),
    "cs_phase2_r50": ([T, "lorun/cs/phase2_r50.yaml"], [], "cs_phase1"),
    "cs_block9_r25": ([T, "lorun/cs/block9_r25.yaml"], [], "cs_phase1"),
    "cs_continue": ([T, "lorun/cs/phase2_r25.yaml", "lorun/cs/continue.yaml"],
                    ["--model.init_args.init_weights=runs/lorun-cs-r25/export/model.safetensors",
                     "--trainer.default_root_dir=runs/lorun-cs-r25-cont"], "cs_phase2_r25"),
    "cs_joint_gpu": ([T, "lorun/cs/phase2_r25.yaml", "lorun/cs/continue.yaml", "lorun/cs/joint.yaml", G],
                     ["--data.init_args.patch=99"], None),  # from the published lorun-cs-r25
    "cassi_phase1": ([T, "lorun/cassi/phase1.yaml"], [], None),
    "cassi_phase1_tied": ([T, "lorun/cassi/phase1_tied.yaml"], [], "cassi_phase1"),
    "cassi_phase2": ([T, "lorun/cassi/phase2.yaml"], [], "cassi_phase1_tied"),
    "cassi_block9": ([T, "lorun/cassi/block9.yaml"], [], "cassi_phase1_tied"),
    "cassi_real": ([T, "lorun/cassi/real.yaml"], [], "cassi_phase2"),
    "cassi_continue_gpu": ([T, "lorun/cassi/block9.yaml", "lorun/cassi/continue.yaml", G],
                           ["--model.init_args.model_config={mask_init: checkpoint, mask_size: [256, 256]}",
                            "--model.init_args.init_weights=block9-cassi", "--data.init_args.patch=128",
                            "--trainer.default_root_dir=runs/block9-cassi-gpu"], None),
    "cassi_spectral": ([T, "lorun/cassi/block9.yaml", "lorun/cassi/continue.yaml", "lorun/cassi/spectral.yaml"],
                       ["--model.init_args.model_config={mask_init: checkpoint, mask_size: [256, 256]}",
                        "--model.init_args.init_weights=block9-cassi",
                        "--trainer.default_root_dir=runs/block9-cassi-spectral"], None),
    "cassi_diverse": ([T, "lorun/cassi/phase2.yaml", "lorun/cassi/continue.yaml", "lorun/cassi/spectral.yaml",
                       "lorun/cassi/diverse.yaml"],
                      ["--model.init_args.model_config={mask_init: checkpoint, mask_size: [256, 256]}",
                       "--model.init_args.init_weights=lorun-cassi-9stg",
                       "--trainer.default_root_dir=runs/lorun-cassi-diverse"], None),
    "cassi_bump": ([T, "lorun/cassi/block9.yaml", "lorun/cassi/continue.yaml", "lorun/cassi/spectral.yaml",
                    "lorun/cassi/diverse.yaml", "lorun/cassi/bump.yaml"],
                   ["--model.init_args.model_config={mask_init: checkpoint, mask_size: [256, 256]}",
                    "--model.init_args.init_weights=block9-cassi",
                    "--trainer.default_root_dir=runs/block9-cassi-bump"], None),
    # LoRun-9 (LoRA layers deep-copied into the average) with the weight average of the later stages
    "cassi_ema": ([T, "lorun/cassi/phase2.yaml", "lorun/cassi/continue.yaml", "lorun/cassi/spectral.yaml",
                   "lorun/cassi/diverse.yaml", "lorun/cassi/bump.yaml", "lorun/cassi/ema.yaml"],
                  ["--model.init_args.model_config={mask_init: checkpoint, mask_size: [256, 256]}",
                   "--model.init_args.init_weights=lorun-cassi-9stg", "--model.init_args.freeze_base=false",
                   "--model.init_args.base_lr_scale=0.1", "--trainer.default_root_dir=runs/lorun-cassi-ema"], None),
    "sr_phase1": ([T, "lorun/sr/phase1.yaml"], [], None),
    "sr_phase2": ([T, "lorun/sr/phase2.yaml"], [], "sr_phase1"),
    "sr_block9": ([T, "lorun/sr/block9.yaml"], [], "sr_phase1"),
    "flash_train": ([T, "ssopga/flash/train.yaml"], [], None),
    "flash_train_twin": ([T, "ssopga/flash/train.yaml"],
                         ["--model.init_args.model=pga-flash", "--trainer.default_root_dir=runs/pga-flash"], None),
    "flash_continue": ([T, "ssopga/flash/train.yaml", "ssopga/flash/continue.yaml"], [], None),
    "flash_continue_gpu_twin": ([T, "ssopga/flash/train.yaml", "ssopga/flash/continue.yaml", G],
                                ["--model.init_args.model=pga-flash", "--model.init_args.init_weights=pga-flash",
                                 "--data.init_args.patch=128", "--trainer.default_root_dir=runs/pga-flash-gpu"], None),
    "pansharpen_wv": ([T, "ssopga/pansharpen/wv.yaml"], [], None),
    "pansharpen_wv_twin": ([T, "ssopga/pansharpen/wv.yaml"], [*PGA_WV, "--trainer.default_root_dir=runs/pga-pansharpen-wv"],
                           None),
    "pansharpen_wv_continue_gpu": ([T, "ssopga/pansharpen/wv.yaml", "ssopga/pansharpen/continue.yaml", G],
                                   ["--model.init_args.init_weights=ssopga-pansharpen-wv",
                                    "--trainer.default_root_dir=runs/ssopga-pansharpen-wv-gpu"], None),
    "lowlight_train": ([T, "llemamba/lowlight/train.yaml"], [], None),
    # the published last stage (experiments/lineage/llemamba-lowlight.yaml, llemamba_lowlight_wstats)
    "lowlight_wstats": ([T, "llemamba/lowlight/train.yaml"],
                        ["--model.init_args.init_weights=runs/llemamba-lowlight/export/model.safetensors",
                         "--model.init_args.loss=psnr", "--data.init_args.whole_stats=true",
                         "--data.init_args.val_crop=null", "--trainer.default_root_dir=runs/llemamba-wstats2"],
                        "lowlight_train"),
    # the exposure fine-tune of experiments/lineage/_not_adopted.yaml (llemamba_lowlight_exposure): 5-input weights
    # load into the 11-input relighting
    "lowlight_exposure": ([T, "llemamba/lowlight/train.yaml"],
                          ["--model.init_args.init_weights=runs/llemamba-lowlight/export/model.safetensors",
                           "--model.init_args.model_config={exposure_quantiles: true}", "--data.init_args.whole_stats=true",
                           "--data.init_args.val_crop=null", "--trainer.default_root_dir=runs/llemamba-quant"],
                          "lowlight_train"),
    # ... and its light-source continuation (llemamba_lowlight_exposure_lamps), from that run's 11-input export
    "lowlight_exposure_lamps": ([T, "llemamba/lowlight/train.yaml"],
                                ["--model.init_args.init_weights=runs/llemamba-quant/export/model.safetensors",
                                 "--model.init_args.model_config={exposure_quantiles: true}",
                                 "--data.init_args.whole_stats=true", "--data.init_args.val_crop=null",
                                 "--data.init_args.lamps=0.5", "--trainer.default_root_dir=runs/llemamba-lamps"],
                                "lowlight_exposure"),
    "pansharpen_4band": ([T, "ssopga/pansharpen/4band.yaml"], [], None),
    "pansharpen_4band_continue": ([T, "ssopga/pansharpen/4band.yaml", "ssopga/pansharpen/continue.yaml"],
                                  ["--model.init_args.init_weights=ssopga-pansharpen-4band",
                                   "--trainer.default_root_dir=runs/ssopga-pansharpen-4band-cont"], None),
}


def composed(configs: list[str], overrides: list[str], key: str):
    """The value of a dotted ``key`` after composing ``configs`` (later files win) and ``overrides``."""
    value = None
    for c in configs:
        node = yaml.safe_load((RECIPES / c).read_text()) or {}
        for part in key.split("."):
            node = node.get(part) if isinstance(node, dict) else None
        value = node if node is not None else value
    for a in overrides:
        if a.startswith(f"--{key}="):
            value = a.split("=", 1)[1]
    return value


def run_dir(name: str) -> str:
    return composed(*CASES[name][:2], "trainer.default_root_dir")


@pytest.fixture(scope="module")
def run_case(tmp_path_factory, fake_all_root):
    """``run_case(name)`` trains a case once (its producer first), each in its own working folder; returns the folder."""
    from fakedata import small_patch_args

    from zoo.cli.main import main

    done: dict[str, Path] = {}

    def run(name: str) -> Path:
        if name in done:
            return done[name]
        configs, overrides, producer = CASES[name]
        cwd = tmp_path_factory.mktemp(name)
        if producer is not None:  # the producer's export, where the recipe reads it (runs/<producer run>/export)
            src = run(producer) / run_dir(producer) / "export"
            shutil.copytree(src, cwd / run_dir(producer) / "export")
        mp = pytest.MonkeyPatch()
        try:
            mp.chdir(cwd)  # recipes write runs/<name>/ relative to the working directory
            mp.setenv("ZOO_DATA", str(fake_all_root))
            main(["fit", *[a for c in configs for a in ("--config", str(RECIPES / c))], *overrides,
                  "--trainer.fast_dev_run=1", "--trainer.enable_progress_bar=false",
                  f"--data.init_args.data_root={fake_all_root}", "--data.init_args.batch_size=2",
                  "--data.init_args.num_workers=0", "--trainer.accelerator=cpu",
                  *small_patch_args([RECIPES / c for c in configs], overrides)])
        finally:
            mp.undo()
        done[name] = cwd
        return cwd

    return run


def test_recipes_are_a_catalogue():
    files = sorted(p.relative_to(RECIPES).as_posix() for p in RECIPES.rglob("*.yaml"))
    assert 0 < len(files) <= 30, files  # a catalogue of the stages users compose, not a journal of every run
    assert not [f for f in files if "_cont" in f or "_gpu" in f], "continuation stages belong in experiments/lineage/"
    used = {c for configs, _, _ in CASES.values() for c in configs}
    assert set(files) <= used, f"recipes without a smoke test: {sorted(set(files) - used)}"


@pytest.mark.parametrize("name", list(CASES))
def test_recipe_fast_dev_run(name, run_case):
    cwd = run_case(name)
    export = cwd / run_dir(name) / "export"
    assert (export / "model.safetensors").is_file(), f"{name}: ExportWeights wrote no weights to {export}"
    model = composed(*CASES[name][:2], "model.init_args.model")
    assert json.loads((export / "config.json").read_text())["model"] == model
    producer = CASES[name][2]
    expected = {run_dir(name)} | ({run_dir(producer)} if producer else set())
    assert {p.parent.relative_to(cwd).as_posix() for p in cwd.glob("runs/*/export")} == expected


def test_logger_follows_default_root_dir(fake_all_root, tmp_path, monkeypatch):
    """Without fast_dev_run (which swaps loggers out), the CSV logs land in <default_root_dir>/logs, nowhere else."""
    from zoo.cli.main import main

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("ZOO_DATA", str(fake_all_root))
    main(["fit", "--config", str(RECIPES / T), "--config", str(RECIPES / "ssopga/flash/train.yaml"),
          "--trainer.max_steps=1", "--trainer.limit_train_batches=1", "--trainer.limit_val_batches=1",
          "--trainer.num_sanity_val_steps=0", "--trainer.log_every_n_steps=1",
          "--trainer.enable_progress_bar=false", "--trainer.default_root_dir=runs/x", "--trainer.accelerator=cpu",
          f"--data.init_args.data_root={fake_all_root}", "--data.init_args.batch_size=2"])
    assert (tmp_path / "runs/x/logs/version_0/metrics.csv").is_file()
    assert (tmp_path / "runs/x/logs/version_0/config.yaml").is_file()  # LightningCLI's saved config, same folder
    assert (tmp_path / "runs/x/logs/version_0/hparams.yaml").is_file()
    assert (tmp_path / "runs/x/export/model.safetensors").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["runs"]


def _lineages() -> dict[str, list[dict]]:
    return {p.stem: yaml.safe_load(p.read_text()) for p in sorted(LINEAGE.glob("*.yaml"))}


def test_manifest_lineage_equals_lineage_files():
    records = json.loads((ROOT / "checkpoints_manifest.json").read_text())["checkpoints"]
    lineages = {k: v for k, v in _lineages().items() if not k.startswith("_")}
    assert set(lineages) == set(records)
    for name, stages in lineages.items():
        training = records[name]["training"]
        assert training["lineage"] == stages, f"{name}: run python experiments/lineage_to_manifest.py"
        assert training["recipe"] == [r for r in stages[-1]["recipe"] if "/_base/" not in r][-1]


def test_lineage_stages_are_consistent():
    seen: dict[str, dict] = {}
    for name, stages in _lineages().items():
        ids = [st["id"] for st in stages]
        assert len(ids) == len(set(ids)), f"{name}: repeated stage ids"
        for i, st in enumerate(stages):
            assert {"id", "recipe", "overrides", "steps", "init", "hardware"} <= set(st), f"{name}/{st['id']}"
            for r in st["recipe"]:
                assert (ROOT / r).is_file(), f"{name}/{st['id']}: {r} does not exist"
            init = st["init"]
            assert init is None or init in ids[:i] or "@" in init, f"{name}/{st['id']}: init {init!r}"
            assert seen.setdefault(st["id"], st) == st, f"stage {st['id']} differs between lineage files"
