"""CASSI target adaptation (Equivariant Imaging), the PnP-GAP second floor and the bench's
comparison pictures: the copy is fitted, never the caller's network; only the measurement is read;
`zoo restore --adapt` and `zoo bench --adapt` through the CLI on fake cubes."""

from __future__ import annotations

import json

import numpy as np
import pytest
import scipy.io as sio
import torch

import zoo
from zoo.tasks import get_task
from zoo.training.target_adaptive import ei_adapt, ei_transform

TINY = dict(widths=(8, 16), stages=2, mask_size=24, step_width=8)


def _net(seed: int = 0, perturb: bool = False, **kw):
    torch.manual_seed(seed)
    net = zoo.create("lorun-cassi-9stg", **{**TINY, **kw}).eval()
    if perturb:  # an untrained LoRun-CASSI is the GAP solution (zero tails): give it something to fit
        with torch.no_grad():
            for n, p in net.named_parameters():
                if "tail" in n:
                    p.normal_(0, 0.05)
    return net


def _cube(size: int = 24, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.nn.functional.interpolate(torch.rand(1, 28, 6, 6, generator=g), size=(size, size), mode="bilinear",
                                           align_corners=False)


def _objective(net, y, m) -> float:
    """The EI objective over a fixed set of transforms (seeded), whole measurement."""
    ph = net.physics
    g = torch.Generator().manual_seed(123)
    with torch.no_grad():
        x = net(y, m)
        mc = float(((ph.A(x, mask=m) - y) * 2 / 28).pow(2).mean())
        ei = [float((net(ph.A(t, mask=m), m) - t).pow(2).mean()) for t in (ei_transform(x, g) for _ in range(8))]
    return mc + sum(ei) / len(ei)


def test_ei_copy_differs_caller_unchanged_and_reproducible():
    net = _net(perturb=True)
    before = {k: v.clone() for k, v in net.state_dict().items()}
    inp = net.measure(_cube())
    a = ei_adapt(net, inp["y"], inp["mask"], steps=3, lr=1e-3, rows=12)
    b = ei_adapt(net, inp["y"], inp["mask"], steps=3, lr=1e-3, rows=12)
    c = ei_adapt(net, inp["y"], inp["mask"], steps=3, lr=1e-3, rows=12, detach=False)  # the EI paper's gradient
    assert a is not net and all(torch.equal(v, net.state_dict()[k]) for k, v in before.items())
    assert not net.training and not a.training and not any(p.requires_grad for p in a.parameters())
    with torch.no_grad():
        ya, yb, y0 = a(**inp), b(**inp), net(**inp)
        z = ei_adapt(net, inp["y"], inp["mask"], steps=0)(**inp)
    assert torch.equal(ya, yb) and not torch.equal(ya, y0) and torch.equal(z, y0)
    assert not torch.equal(c(**inp), ya) and c.target_adaptation["detach"] is False
    rec = a.target_adaptation
    assert rec["task"] == "cassi" and rec["steps"] == 3 and rec["rows"] == 12 and np.isfinite(rec["loss_last"])


def test_ei_lowers_its_objective_on_a_tiny_fake():
    """Trained for 25 steps, the copy's EI objective (fixed transforms, whole image) falls."""
    net = _net(seed=1, perturb=True)
    inp = net.measure(_cube(seed=2))
    a = ei_adapt(net, inp["y"], inp["mask"], steps=25, lr=2e-3, rows=24)
    l0, l1 = _objective(net, inp["y"], inp["mask"]), _objective(a, inp["y"], inp["mask"])
    assert l1 < 0.8 * l0, (l0, l1)


def test_ei_transforms_keep_the_cube_and_rotate_only_squares():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(1, 4, 6, 10)
    outs = [ei_transform(x, g) for _ in range(20)]
    assert all(o.shape == x.shape for o in outs)
    assert all(torch.equal(o.flatten().sort().values, x.flatten().sort().values) for o in outs)  # pixels permuted
    assert any(not torch.equal(o, x) for o in outs)
    sq = torch.rand(1, 2, 5, 5)
    assert {ei_transform(sq, g).shape for _ in range(8)} == {sq.shape}


def test_task_adapt_reads_only_the_measurement():
    """The bench hands Task.adapt the inputs alone: a garbage reference changes nothing."""
    task = get_task("cassi")
    net = _net()
    x = _cube(seed=3)
    inp = task.inputs(net, {"target": x})
    assert set(inp) == {"y", "mask"}
    a = task.adapt(net, inp, 2)
    b = task.adapt(net, task.inputs(net, {"target": x, "inputs": inp}), 2)
    assert all(torch.equal(p, q) for p, q in zip(a.state_dict().values(), b.state_dict().values()))
    s = task.adapt_setting(5)
    assert task.adaptive and s["steps"] == 5 and "Equivariant Imaging" in s["method"] and "lr" in s


def test_ei_bad_inputs_are_named():
    net = _net()
    inp = net.measure(_cube())
    with pytest.raises(TypeError, match="SD-CASSI networks"):
        ei_adapt(zoo.create("ssopga-flash", stages=2, widths=(8, 16)), inp["y"], steps=1)
    with pytest.raises(ValueError, match="measurement/mask size mismatch"):
        ei_adapt(net, inp["y"][..., :-2], inp["mask"], steps=1)
    with pytest.raises(ValueError, match="alpha must be >= 0"):
        ei_adapt(net, inp["y"], inp["mask"], steps=1, alpha=-1)
    with pytest.raises(ValueError, match="steps must be >= 0"):
        ei_adapt(net, inp["y"], inp["mask"], steps=1, lr=0)


def test_pnp_gap_and_sstv():
    from zoo.physics import SDCASSI
    from zoo.solvers import geometric_schedule, pnp_gap, sstv_denoise, tv_denoise
    from zoo.metrics import psnr

    s = geometric_schedule(0.5, 0.05, 5)
    assert len(s) == 5 and s[0] == 0.5 and abs(s[-1] - 0.05) < 1e-12 and s == sorted(s, reverse=True)
    with pytest.raises(ValueError, match="levels > 0"):
        geometric_schedule(0.5, 0, 3)
    g = torch.Generator().manual_seed(4)  # a cube smooth in space and wavelength
    x = torch.nn.functional.interpolate(torch.rand(1, 1, 4, 6, 6, generator=g), size=(28, 24, 24), mode="trilinear",
                                        align_corners=False)[:, 0]
    noisy = x + 0.05 * torch.randn(x.shape, generator=torch.Generator().manual_seed(0))
    p_noisy, p_2d, p_3d = (float(psnr(t, x)) for t in (noisy, sstv_denoise(noisy, 30.0, 0.0, 20), sstv_denoise(noisy, 30.0, 1.0, 20)))
    assert p_3d > p_2d > p_noisy + 3, (p_noisy, p_2d, p_3d)  # measured 26.0, 29.8, 30.9
    # mu = 0 decouples the bands: a band's result does not depend on its neighbours
    a, b = sstv_denoise(noisy, 5.0, 0.0, 5), sstv_denoise(torch.cat([noisy[:, :1], noisy[:, 1:] * 0], 1), 5.0, 0.0, 5)
    assert torch.allclose(a[:, 0], b[:, 0], atol=1e-6)
    op = SDCASSI(torch.rand(24, 24), bands=28)
    y = op.A(x)
    identity = pnp_gap(op, y, lambda z, s: z, [1.0] * 3)
    assert torch.allclose(op.A(identity), y, atol=1e-4)  # no denoising: the iterates stay on {A x = y}
    tv = pnp_gap(op, y, lambda z, s: tv_denoise(z, 1.0, 10), [1.0] * 30)
    assert float(psnr(tv, x)) > float(psnr(identity, x))


def _tiny_ckpt(tmp_path, mask_size: int = 48):
    from safetensors.torch import save_file

    d = tmp_path / "ckpt"
    d.mkdir()
    net = _net(mask_size=mask_size)
    save_file({k: v.contiguous() for k, v in net.state_dict().items()}, str(d / "model.safetensors"))
    cfg = {**TINY, "mask_size": mask_size, "mask_init": "checkpoint", "widths": [8, 16]}
    (d / "config.json").write_text(json.dumps({"model": "lorun-cassi-9stg", "config": cfg}))
    return d, net


def test_restore_and_bench_adapt_floors_and_pictures_through_the_cli(tmp_path, monkeypatch, capsys):
    from PIL import Image

    from fakedata_cassi import make
    from zoo.cli.main import main

    monkeypatch.setenv("ZOO_MANIFEST", str(tmp_path / "no_manifest.json"))  # unpublished weights: no record
    d, net = _tiny_ckpt(tmp_path)
    y = net.physics.A(_cube(48, seed=5))
    sio.savemat(tmp_path / "meas.mat", {"meas": y[0, 0].numpy()})
    with pytest.warns(UserWarning, match="without sha256"):
        assert main(["restore", "lorun-cassi-9stg", str(tmp_path / "meas.mat"), "-o", str(tmp_path / "out.mat"),
                     "--weights", str(d), "--adapt", "2"]) == 0
    assert "after 2 target-adaptive steps" in capsys.readouterr().out
    assert sio.loadmat(str(tmp_path / "out.mat"))["cube"].shape == (48, 48, 28)

    root = make(tmp_path / "data")  # cassi/cave256: two 48×48×31 fake cubes
    out = tmp_path / "bench"
    with pytest.warns(UserWarning, match="without sha256"):
        assert main(["bench", "lorun-cassi-9stg", "--weights", f"lorun-cassi-9stg={d}", "--data-root", str(root),
                     "--out", str(out), "--adapt", "2", "--no-costs", "--threads", "1", "--limit", "1"]) == 0
    s = json.loads((out / "summary.json").read_text())
    res = s["models"]["lorun-cassi-9stg"]["datasets"]
    assert set(res) == {"CAVE-2", "CAVE-2+TA2"} and res["CAVE-2"]["psnr"] != res["CAVE-2+TA2"]["psnr"]
    more = s["floors_more"]["CAVE-2/sim"]
    assert [m["method"].split(" (")[0] for m in more] == ["GAP-SSTV"] and more[0]["psnr"] > 0
    assert s["floor"]["CAVE-2+TA2/sim"]["psnr"] == s["floor"]["CAVE-2/sim"]["psnr"]  # one floor per image, reused
    md = (out / "summary.md").read_text()
    assert "GAP-SSTV (lorun-cassi-9stg)" in md and "CAVE-2+TA2" in md
    pics = sorted(p.relative_to(out).as_posix() for p in (out / "pictures").rglob("*.png"))
    cubes = sorted({p.split("/")[3] for p in pics})
    assert len(cubes) == 1 and all(f"pictures/CAVE-2/sim/{c}/{f}" in pics for c in cubes
                                   for f in ("srgb.png", "error_bands.png", "spectra.png"))
    srgb = Image.open(out / "pictures/CAVE-2/sim" / cubes[0] / "srgb.png")
    assert srgb.width >= 5 * 48  # reference, GAP-TV, GAP-SSTV, the model, the adapted model
    with open(out / "per_image.csv") as f:
        head = f.readline()
    assert "floor_psnr" in head and "floor_gap-sstv_psnr" in head


def test_floors_hook_defaults_to_the_floor():
    from zoo.tasks.base import Task

    class One(Task):
        def floor(self, net, inputs):
            return inputs["x"] * 2

    t = One(name="one", datasets={}, description={}, floor_name="twice")
    out = t.floors(None, {"x": torch.ones(1, 1, 2, 2)})
    assert list(out) == ["twice"] and torch.equal(out["twice"], torch.full((1, 1, 2, 2), 2.0))
    assert t.pictures("img", {"reference": torch.zeros(1)}) == {}


def test_band_triplet_denoiser_keeps_the_cube():
    from zoo.tasks.cassi import band_triplet_denoiser

    d = band_triplet_denoiser("lorun-sr-x2")
    x = _cube(16, seed=6)
    out = d(x, 0.1)
    assert out.shape == x.shape and torch.isfinite(out).all() and float((out - x).abs().mean()) < 0.1
