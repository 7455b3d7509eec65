"""Regression tests of the reliability audit (inputs, tiling, outputs, concurrency): each failed before its fix."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest
import scipy.io as sio
import torch
from PIL import Image

import zoo
from zoo.data.flash import read_rgb
from zoo.data.images import read_grey
from zoo.data.pansharpen import read_pansharpen
from zoo.inference import restore_inputs_tiled, restore_tiled
from zoo.tasks import get_task, restore_file
from zoo.utils.files import FileExistsRefusal, atomic_write

TINY = {"stages": 2, "widths": (8, 16)}


def _grey16(path: Path, value: int = 32768, shape=(48, 64)) -> Path:
    Image.fromarray(np.full(shape, value, dtype=np.uint16)).save(path)
    assert Image.open(path).mode.startswith("I")
    return path


# -- D5: input scaling is decided from the data -----------------------------------------------------
def test_16bit_png_is_scaled_by_its_bit_depth(tmp_path):
    p = _grey16(tmp_path / "g16_ambient.png")
    rgb = read_rgb(p)  # flash reader: was clipped at 255 → white
    assert rgb.shape == (3, 48, 64) and float(rgb.mean()) == pytest.approx(32768 / 65535, abs=1e-6)
    grey = read_grey(p)  # CS reader: was stretched by the image's own max
    assert float(grey.mean()) == pytest.approx(32768 / 65535, abs=1e-6)


def _full_pair(path: Path, ms: np.ndarray, pan: np.ndarray, **extra) -> Path:
    sio.savemat(path, {"I_MS": ms, "I_PAN": pan, **extra})
    return path


def test_pansharpen_scale_from_the_data(tmp_path):
    rng = np.random.default_rng(0)
    ms, pan = rng.uniform(0.2, 0.6, (16, 16, 8)), rng.uniform(0.2, 0.6, (64, 64))
    s = read_pansharpen(_full_pair(tmp_path / "f01.mat", ms.astype(np.float32), pan.astype(np.float32)))[0]
    assert float(s["ms"].mean()) == pytest.approx(float(ms.mean()), rel=1e-5)  # was divided by 2047: black
    dn = _full_pair(tmp_path / "dn16.mat", (ms * 65535).astype(np.uint16), (pan * 65535).astype(np.uint16))
    with pytest.raises(ValueError, match="exceed 11 bits.*add L"):
        read_pansharpen(dn)  # was read as 11-bit: output up to 116
    ok = _full_pair(tmp_path / "dnL.mat", (ms * 65535).astype(np.uint16), (pan * 65535).astype(np.uint16), L=16)
    assert float(read_pansharpen(ok)[0]["ms"].max()) <= 1.0
    with pytest.raises(ValueError, match="H×W×C"):
        read_pansharpen(_full_pair(tmp_path / "2d.mat", ms[..., 0], pan))


def test_restored_output_is_clamped_to_its_range(tmp_path):
    net = zoo.create("ssopga-pansharpen-wv", **TINY).eval()
    rng = np.random.default_rng(1)
    src = _full_pair(tmp_path / "p.mat", (rng.uniform(0.9, 1.0, (16, 16, 8)) * 2047).astype(np.uint16),
                     (rng.uniform(0.0, 1.0, (64, 64)) * 2047).astype(np.uint16))
    restore_file(get_task("pansharpen"), net, str(src), str(tmp_path / "o.mat"))
    fused = sio.loadmat(tmp_path / "o.mat")["fused"]
    assert fused.min() >= 0 and fused.max() <= 1


def test_api_refuses_sigma_in_255_units():
    net = zoo.create("ssopga-flash", **TINY).eval()
    x = torch.rand(1, 3, 32, 32)
    with pytest.raises(ValueError, match="divide by 255"):
        net(noisy=x, flash=x, sigma=25.0)  # was a black image
    with pytest.raises(ValueError, match=">= 0"):
        net(noisy=x, flash=x, sigma=-0.1)


def test_integer_tensors_are_refused():
    net = zoo.create("lorun-cs-r25", **TINY).eval()
    with pytest.raises(ValueError, match="uint8.*float"):
        net.measure((torch.rand(1, 1, 66, 66) * 255).to(torch.uint8))  # was accepted, output ≈ 0


# -- D6 / D12: tiling -------------------------------------------------------------------------------
@pytest.mark.parametrize("tile, overlap, match", [(66, -33, "overlap >= 0"), (0, 0, "tile must be > 0"),
                                                  (66, 66, "smaller than tile"), (40, 33, "round to")])
def test_bad_tiling_is_refused(tile, overlap, match):
    net = zoo.create("lorun-cs-r25", **TINY).eval()
    with pytest.raises(ValueError, match=match):  # overlap -33 left black bands with rc=0
        restore_tiled(net, torch.rand(1, 1, 300, 300), tile=tile, overlap=overlap)


def test_flash_restore_is_tiled_and_seamless():
    torch.manual_seed(0)
    net = zoo.create("ssopga-flash", **TINY).eval()
    x = torch.rand(1, 3, 8, 12)
    x = torch.nn.functional.interpolate(x, size=(96, 144), mode="bicubic", align_corners=False).clamp(0, 1)
    inputs = {"noisy": x + 0.05 * torch.randn_like(x), "flash": x, "sigma": 0.05}
    with torch.no_grad():
        whole = net(**inputs)
    calls = []
    orig = net.forward
    net.forward = lambda **kw: calls.append(kw["noisy"].shape[-2:]) or orig(**kw)  # type: ignore[method-assign]
    tiled = restore_inputs_tiled(net, inputs, tile=64, overlap=32, like="noisy")
    assert len(calls) > 1 and all(h <= 64 and w <= 64 for h, w in calls)  # never the whole image at once
    psnr = 10 * torch.log10(1 / ((tiled - whole) ** 2).mean())
    assert psnr > 45, f"tiled vs whole {float(psnr):.1f} dB: seams"
    assert "tile" in {o.name for o in get_task("flash").options}


# -- D11 / D20: outputs and inputs ------------------------------------------------------------------
def test_unwritable_output_fails_before_the_reconstruction(tmp_path, monkeypatch):
    net = zoo.create("lorun-cs-r25", **TINY).eval()
    src = tmp_path / "in.png"
    Image.fromarray((np.random.default_rng(0).random((66, 66)) * 255).astype(np.uint8)).save(src)
    ran = []
    task = get_task("cs")
    monkeypatch.setattr(type(task), "run", lambda self, *a, **k: ran.append(1) or torch.zeros(1, 1, 66, 66))
    import errno
    import tempfile

    real = tempfile.mkstemp

    def read_only(*a, **k):  # a read-only file system (root ignores permission bits, so simulate it)
        if str(k.get("dir", "")).endswith("ro"):
            raise OSError(errno.EROFS, "Read-only file system")
        return real(*a, **k)

    monkeypatch.setattr(tempfile, "mkstemp", read_only)
    (tmp_path / "ro").mkdir()
    with pytest.raises(PermissionError, match="cannot write to .*ro.*Read-only"):
        restore_file(task, net, str(src), str(tmp_path / "ro" / "o.png"))
    (tmp_path / "afile").write_text("x")
    with pytest.raises(NotADirectoryError, match="is a file"):
        restore_file(task, net, str(src), str(tmp_path / "afile" / "o.png"))
    assert not ran  # refused before any work (was: a traceback after the reconstruction)
    (tmp_path / "adir").mkdir()
    with pytest.raises(IsADirectoryError, match="folder"):
        restore_file(task, net, str(src), str(tmp_path / "adir"), overwrite=True)
    with pytest.raises(IsADirectoryError, match="folder, not a file"):
        restore_file(task, net, str(tmp_path / "adir"), str(tmp_path / "o.png"))
    with pytest.raises(ValueError, match="writes a picture"):
        restore_file(task, net, str(src), str(tmp_path / "o.mat"))  # was: PNG bytes in a .mat
    assert not ran


def test_cli_reports_os_errors_without_traceback(tmp_path, capsys):
    from zoo.cli.main import main

    (tmp_path / "adir").mkdir()
    assert main(["restore", "lorun-cs-r25", str(tmp_path / "adir"), "-o", str(tmp_path / "o.png")]) == 2
    assert "is a folder" in capsys.readouterr().err
    assert main(["restore", "lorun-cs-r25", str(tmp_path / "x.png"), "-o", str(tmp_path / "o.png"), "--threads", "0"]) == 2


# -- D16: concurrency -------------------------------------------------------------------------------
def test_exclusive_create_has_one_winner(tmp_path):
    target, barrier, results = tmp_path / "out.txt", threading.Barrier(2), []

    def writer(text: str) -> None:
        try:
            with atomic_write(target) as tmp:
                tmp.write_text(text)
                barrier.wait()  # both writers are inside the window before either finishes
            results.append(text)
        except FileExistsRefusal:
            results.append("refused")

    threads = [threading.Thread(target=writer, args=(t,)) for t in ("a", "b")]
    [t.start() for t in threads]
    [t.join() for t in threads]
    assert sorted(results)[1] == "refused" and target.read_text() == sorted(results)[0]


def test_concurrent_manifest_writers_keep_both_records(tmp_path, monkeypatch):
    import json
    import shutil

    from zoo.hub import manifest as M

    src = Path(__file__).resolve().parents[1] / "checkpoints_manifest.json"
    path = tmp_path / "checkpoints_manifest.json"
    shutil.copy(src, path)
    names = ["lorun-cs-r25", "block9-cs-r25"]
    barrier = threading.Barrier(2, timeout=2)
    real_load = M.load_manifest

    def slow_load(p=None):  # both writers read before either writes: a lost update without the lock
        m = real_load(p)
        try:
            barrier.wait()
        except threading.BrokenBarrierError:
            pass
        return m

    monkeypatch.setattr(M, "load_manifest", slow_load)
    bench = {"command": "test", "results": {"Set11": {"psnr": 1.0}}}
    threads = [threading.Thread(target=M.set_bench, args=(n, {**bench, "command": n}, path)) for n in names]
    [t.start() for t in threads]
    [t.join() for t in threads]
    data = json.loads(path.read_text())["checkpoints"]
    assert [data[n]["bench"]["command"] for n in names] == names


def test_float64_input_is_cast_to_the_network_dtype():
    net = zoo.create("lorun-cs-r25", **TINY).eval()
    x = torch.rand(1, 1, 66, 66, dtype=torch.float64)
    with torch.no_grad():  # was: RuntimeError "Input type (double) and bias type (float)"
        assert net(**net.measure(x)).dtype == torch.float32


def test_nan_weights_are_named_as_weights(tmp_path):
    import json

    from safetensors.torch import save_file

    net = zoo.create("lorun-cs-r25", **TINY)
    sd = {k: v.clone().contiguous() for k, v in net.state_dict().items()}
    k = next(k for k, v in sd.items() if v.is_floating_point() and "denoiser" in k)
    sd[k].fill_(float("nan"))
    save_file(sd, str(tmp_path / "model.safetensors"))
    (tmp_path / "config.json").write_text(json.dumps({"model": "lorun-cs-r25", "config": {**TINY, "widths": [8, 16]}}))
    with pytest.warns(UserWarning), pytest.raises(ValueError, match="weights .* NaN/Inf"):
        zoo.load("lorun-cs-r25", path=tmp_path, verify=False)  # was: "image contains NaN" at restore time
