"""User files that are not what they claim: each reader names the file and the fix, never a library traceback."""

from __future__ import annotations

import json

import numpy as np
import pytest
import scipy.io as sio
import torch
from PIL import Image
from safetensors.torch import save_file

import zoo
from zoo.cli.main import main
from zoo.data.io import load_mat, open_image


def _png(path, shape=(48, 64, 3), seed=0):
    Image.fromarray((np.random.default_rng(seed).random(shape) * 255).astype(np.uint8)).save(path, format="PNG")
    return path


def test_open_image_refuses_non_images_and_truncated_files(tmp_path):
    with open_image(_png(tmp_path / "ok.png")) as im:
        assert im.size == (64, 48)
    (tmp_path / "text.png").write_text("not a picture")
    with pytest.raises(ValueError, match=r"text\.png is not an image PIL can read"):
        with open_image(tmp_path / "text.png"):
            pass
    data = (tmp_path / "ok.png").read_bytes()
    (tmp_path / "cut.png").write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="complete"):
        with open_image(tmp_path / "cut.png"):
            pass
    with pytest.raises(FileNotFoundError, match="does not exist"):
        with open_image(tmp_path / "absent.png"):
            pass


def test_load_mat_refuses_other_files(tmp_path):
    sio.savemat(tmp_path / "m.mat", {"mask": np.eye(3)})
    assert set(load_mat(tmp_path / "m.mat")) == {"mask"}
    with pytest.raises(ValueError, match=r"pic\.mat is not a readable MATLAB \.mat file"):
        load_mat(_png(tmp_path / "pic.mat"))
    with pytest.raises(FileNotFoundError):
        load_mat(tmp_path / "absent.mat")


def test_load_mat_reads_v73_transposed(tmp_path):
    h5py = pytest.importorskip("h5py", reason="MATLAB v7.3 files need the optional h5py (extra 'mat73')")
    a = np.arange(12, dtype=np.float32).reshape(3, 4)
    f73 = tmp_path / "v73.mat"
    with h5py.File(f73, "w", userblock_size=512) as f:
        f.create_dataset("img", data=a.T)  # MATLAB v7.3 writes column-major arrays
    # a v7.3 file is HDF5 behind MATLAB's 512-byte header (version 0x0200 at byte 124): SciPy refuses it
    head = b"MATLAB 7.3 MAT-file, Platform: GLNXA64, Created on: Thu Nov 26 2026 HDF5 schema 1.00 ."
    with open(f73, "r+b") as fh:
        fh.write(head.ljust(116, b" ") + b"\0" * 8 + b"\x00\x02IM")
    assert np.array_equal(load_mat(f73)["img"], a)
    with h5py.File(tmp_path / "plain.mat", "w") as f:  # HDF5 without the MATLAB header
        f.create_dataset("img", data=a.T)
    assert np.array_equal(load_mat(tmp_path / "plain.mat")["img"], a)


def test_restore_commands_name_bad_inputs(tmp_path, capsys):
    """`zoo restore` on a non-image, a .mat that is a PNG, and flash inputs given through --flash / --sigma."""
    bad = tmp_path / "bad.png"
    bad.write_text("plain text")
    assert main(["restore", "lorun-cs-r25", str(bad), "-o", str(tmp_path / "o.png")]) == 2
    assert "bad.png is not an image" in capsys.readouterr().err
    assert main(["restore", "lorun-cassi-9stg", str(_png(tmp_path / "m.mat")), "-o", str(tmp_path / "c.mat")]) == 2
    assert "not a readable MATLAB .mat file" in capsys.readouterr().err
    assert not (tmp_path / "o.png").exists() and not (tmp_path / "c.mat").exists()

    # a tiny flash model of one's own, through --weights (not the published sha256)
    torch.manual_seed(0)
    cfg = {"stages": 2, "widths": [8, 16]}
    net = zoo.create("ssopga-flash", **cfg)
    w = tmp_path / "mine"
    w.mkdir()
    save_file({k: v.contiguous() for k, v in net.state_dict().items()}, str(w / "model.safetensors"))
    (w / "config.json").write_text(json.dumps({"model": "ssopga-flash", "config": cfg}))
    noisy, flash = _png(tmp_path / "scene_ambient.png"), _png(tmp_path / "guide.png", seed=1)
    args = ["restore", "ssopga-flash", str(noisy), "--weights", str(w)]
    assert main(["restore", "lorun-cs-r25", str(noisy), "--flash", str(flash), "-o", str(tmp_path / "x.png")]) == 2
    assert "--flash is for flash models" in capsys.readouterr().err  # not silently ignored
    assert main([*args, "--mask", str(flash), "-o", str(tmp_path / "d.png")]) == 2
    assert "--mask is for cassi models" in capsys.readouterr().err
    assert main([*args, "-o", str(tmp_path / "d.png")]) == 2  # no scene_flash.png beside it
    assert "--flash PATH" in capsys.readouterr().err
    assert main([*args, "--flash", str(flash), "--sigma", "300", "-o", str(tmp_path / "d.png")]) == 2
    assert "/255 units" in capsys.readouterr().err
    assert main([*args, "--flash", str(_png(tmp_path / "small.png", (24, 32, 3))), "-o", str(tmp_path / "d.png")]) == 2
    assert "must match" in capsys.readouterr().err
    assert main([*args, "--flash", str(flash), "--sigma", "50", "-o", str(tmp_path / "d.png")]) == 0
    assert "sigma 50.0/255" in capsys.readouterr().out
    assert np.asarray(Image.open(tmp_path / "d.png")).shape == (48, 64, 3)
