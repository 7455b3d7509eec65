"""The `zoo` command line end to end on a tiny checkpoint in an isolated manifest + fake data."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import save_file

import zoo
from zoo.data import resolve_model_files
from zoo.cli.main import main

CFG = {"stages": 2, "widths": [8, 16]}


def test_export_list_info_load(tiny_ckpt, capsys):
    assert (tiny_ckpt / "checkpoints" / "lorun-cs-r25" / "README.md").is_file()
    assert main(["list", "--pretrained"]) == 0
    assert "lorun-cs-r25" in capsys.readouterr().out
    assert zoo.list_models(pretrained=True) == ["lorun-cs-r25"]
    assert main(["info", "lorun-cs-r25"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["pretrained"]["training"]["steps"] == 10 and info["params"]["total"] > 0
    net = zoo.load("lorun-cs-r25")
    assert not net.training
    # a second export must not overwrite silently
    run = tiny_ckpt / "run" / "export"
    assert main(["export", str(run), "--name", "lorun-cs-r25"]) == 2
    assert "overwrite" in capsys.readouterr().err


def test_bench_writes_tables_and_records(tiny_ckpt, fake_cs_root, capsys):
    out = tiny_ckpt / "bench"
    assert main(["bench", "lorun-cs-r25", "--data-root", str(fake_cs_root), "--out", str(out), "--cost-size", "66", "--record"]) == 0
    s = json.loads((out / "summary.json").read_text())
    m = s["models"]["lorun-cs-r25"]
    assert set(m["datasets"]) == {"Set11", "BSD68"} and m["datasets"]["Set11"]["images"] == 2
    assert m["gflops"] > 0 and m["latency_s"] > 0 and m["train_patches_per_s"] > 0
    assert s["floor"]["Set11/r25"]["psnr"] > 0
    assert "NesTD-Net" in (out / "summary.md").read_text()
    rows = (out / "per_image.csv").read_text().splitlines()
    assert len(rows) == 1 + 4 and rows[0].startswith("model,dataset,image")
    assert len(list((out / "grids").rglob("*.png"))) == 4
    rec = zoo.hub.manifest.load_manifest().checkpoints["lorun-cs-r25"]
    assert rec.bench.results["Set11"]["psnr"] == pytest.approx(m["datasets"]["Set11"]["psnr"])
    assert "Set11" in (tiny_ckpt / "checkpoints" / "lorun-cs-r25" / "README.md").read_text()
    zoo.load("lorun-cs-r25")  # the refreshed card was re-hashed: still verifies
    assert main(["bench", "lorun-cs-r25", "--out", str(out), "--no-costs"]) == 2  # no silent overwrite


def test_bench_own_weights(tiny_ckpt, fake_cs_root, capsys, monkeypatch):
    # a fine-tune of the published model: benched unverified, never recorded over the published entry
    run = tiny_ckpt / "run" / "export"
    sd = {k: v.clone() for k, v in zoo.load("lorun-cs-r25").state_dict().items()}
    sd = {k: (v * 0.5 if "lora_B" in k or "denoiser" in k else v).contiguous() for k, v in sd.items()}
    tuned = tiny_ckpt / "tuned"
    shutil.copytree(run, tuned)
    save_file(sd, str(tuned / "model.safetensors"))
    base, own = tiny_ckpt / "b0", tiny_ckpt / "b1"
    args = ["--data-root", str(fake_cs_root), "--no-costs", "--no-grids", "--no-floor"]
    assert main(["bench", "lorun-cs-r25", "--out", str(base), *args]) == 0
    loaded = []
    real_load = zoo.load
    monkeypatch.setattr("zoo.bench.runner.load", lambda *a, **k: loaded.append(real_load(*a, **k)) or loaded[-1])
    with pytest.warns(UserWarning, match="without sha256"):
        assert main(["bench", "lorun-cs-r25", "--weights", f"lorun-cs-r25={tuned}", "--out", str(own), *args]) == 0
    a, b = (json.loads((d / "summary.json").read_text())["models"]["lorun-cs-r25"] for d in (base, own))
    assert b["weights"] == str(tuned) and "weights" not in a
    got = loaded[0].state_dict()  # the benched network holds the tuned weights
    assert all(torch.equal(got[k], v) for k, v in sd.items())
    capsys.readouterr()
    assert main(["bench", "lorun-cs-r25", "--weights", f"lorun-cs-r25={tuned}", "--out", str(tiny_ckpt / "b2"),
                 "--record", *args]) == 2
    assert "zoo export" in capsys.readouterr().err
    assert main(["bench", "lorun-cs-r25", "--weights", str(tuned), "--out", str(tiny_ckpt / "b3"), *args]) == 2
    assert "NAME=PATH" in capsys.readouterr().err


def test_demo_and_restore(tiny_ckpt, capsys):
    demo = tiny_ckpt / "demo"
    assert main(["demo", "-o", str(demo)]) == 0
    assert {p.name for p in demo.iterdir()} == {"lorun-cs-r25.png", "metrics.md"}
    assert "PSNR model" in (demo / "metrics.md").read_text()
    assert main(["demo", "-o", str(demo)]) == 2
    src = tiny_ckpt / "in.png"
    Image.fromarray((np.random.default_rng(0).random((100, 140)) * 255).astype(np.uint8)).save(src)
    dst = tiny_ckpt / "out.png"
    assert main(["restore", "lorun-cs-r25", str(src), "-o", str(dst), "--tile", "66"]) == 0
    assert Image.open(dst).size == (140, 100)
    assert main(["restore", "lorun-cs-r25", str(src), "-o", str(dst)]) == 2  # exists
    assert main(["restore", "lorun-cs-r25", str(tiny_ckpt / "missing.png"), "-o", str(tiny_ckpt / "o2.png")]) == 2


def test_tampered_checkpoint_refused(tiny_ckpt):
    f = tiny_ckpt / "checkpoints" / "lorun-cs-r25" / "model.safetensors"
    data = bytearray(f.read_bytes())
    data[-1] ^= 0xFF
    f.write_bytes(bytes(data))
    with pytest.raises(Exception, match="sha256"):
        zoo.load("lorun-cs-r25")


def test_finetune_fast_dev_run(tiny_ckpt, fake_cs_root, monkeypatch):
    monkeypatch.chdir(tiny_ckpt)
    folder = fake_cs_root / "images" / "Train400"
    assert main(["finetune", "lorun-cs-r25", "--data", str(folder), "--out", str(tiny_ckpt / "ft"), "--fast-dev-run",
                 "--batch-size", "2", "--patch", "66", "--accelerator", "cpu"]) == 0
    assert (tiny_ckpt / "ft" / "export" / "model.safetensors").is_file()


def test_unknown_model_lists_close_matches(capsys):
    assert main(["info", "lorun-cs-r26"]) == 2
    assert "lorun-cs-r25" in capsys.readouterr().err


def test_console_script_installed():
    import sys

    cand = Path(sys.executable).parent / "zoo"
    exe = str(cand) if cand.is_file() else shutil.which("zoo")
    if exe is None:
        pytest.skip("console script not on PATH (package not installed with pip)")
    out = subprocess.run([exe, "list", "lorun-cs-r2*"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and "lorun-cs-r25" in out.stdout
