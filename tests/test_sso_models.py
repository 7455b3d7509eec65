"""SSO-PGA networks and their PGA twins: contract, positivity, missing bands, bad inputs, training."""

from __future__ import annotations

import lightning as L
import pytest
import torch
from torch.utils.data import DataLoader

import zoo
from zoo.physics.pansharpen import fill_missing, random_band_mask
from zoo.solvers.sso import estimate_pan_weights
from zoo.nn.guided_prox import positive
from zoo.solvers.sso import sso

TINY = {"stages": 2, "widths": (8, 16)}
NAMES = zoo.list_models("ssopga-*") + zoo.list_models("pga-*")


@pytest.mark.parametrize("name", NAMES)
def test_build_measure_restore(name):
    net = zoo.create(name, **TINY).eval()
    x = torch.rand(2, net.channels, 40, 44) * 0.8 + 0.1
    with torch.no_grad():
        out = net(**net.measure(x))
    assert out.shape == x.shape and torch.isfinite(out).all() and (out >= 0).all()
    ex = net.example_inputs(37)
    with torch.no_grad():
        assert net(**ex).shape[-2:] == (36, 36) if "pansharpen" in name else (37, 37)


def test_twins_share_the_architecture():
    for task in ("pansharpen-wv", "flash"):
        a, b = zoo.create(f"ssopga-{task}"), zoo.create(f"pga-{task}")
        assert a.update == "sso" and b.update == "pga"
        sa, sb = a.state_dict(), b.state_dict()
        assert sa.keys() == sb.keys() and all(sa[k].shape == sb[k].shape for k in sa)
        n = sum(p.numel() for p in a.parameters())
        assert 50_000 <= n <= 150_000, n


def test_learned_stage_parameters_are_positive():
    net = zoo.create("ssopga-flash", **TINY)
    with torch.no_grad():
        net.alpha_raw.fill_(-20.0)
        net.step_raw.fill_(-5.0)
    assert (net.alpha >= 0).all() and (net.eta > 0).all()


def test_untrained_flash_net_is_the_classical_iteration():
    # zero-initialised prox tails: every prox is softplus_β (≈ identity), so the network is the
    # plain multiplicative SSO iteration on ½λ‖x − y‖²
    net = zoo.create("ssopga-flash", **TINY).eval()
    x = torch.rand(1, 3, 24, 24)
    inp = net.measure(x, sigma=0.1, generator=torch.Generator().manual_seed(0))
    ref = positive(inp["noisy"])
    for k in range(2):
        ref = positive(ref * sso(net.eta[k] * net.lam_raw.new_tensor(1.0) * torch.nn.functional.softplus(net.lam_raw[k])
                                 * (ref - inp["noisy"]), net.alpha[k]))
    with torch.no_grad():
        assert torch.allclose(net(**inp), ref, atol=1e-5)


@pytest.mark.parametrize("task, step", [("pansharpen-wv", 200.0), ("flash", 6.0)])
def test_sso_iterates_stay_nonnegative_where_the_pga_twin_goes_negative(task, step):
    torch.manual_seed(0)
    sso_net, pga_net = zoo.create(f"ssopga-{task}", **TINY).eval(), zoo.create(f"pga-{task}", **TINY).eval()
    pga_net.load_state_dict(sso_net.state_dict())
    for n in (sso_net, pga_net):
        with torch.no_grad():
            n.step_raw.fill_(step)  # a large step (softplus(s) ≈ s)
    x = torch.rand(1, sso_net.channels, 32, 32) * 0.5 + 0.05
    inp = sso_net.measure(x)
    with torch.no_grad():
        a, b = sso_net(**inp), pga_net(**inp)
    assert sso_net.last_min_iterate >= 0 and (a >= 0).all()
    assert pga_net.last_min_iterate < 0 and (b >= 0).all()  # the prox output is still non-negative


def test_missing_bands_do_not_leak_and_stay_valid():
    net = zoo.create("ssopga-pansharpen-wv", **TINY).eval()
    with torch.no_grad():
        for p in net.prox.parameters():
            p.add_(0.01 * torch.randn_like(p))
    x = torch.rand(2, 8, 32, 32) * 0.7 + 0.1
    inp = net.measure(x)
    mask = random_band_mask(2, 8, 0.5, torch.Generator().manual_seed(0))
    assert (mask.sum(1) == 4).all()
    with torch.no_grad():
        out = net(**inp, ms_mask=mask)
        garbage = inp["ms"].clone()
        garbage[mask[..., None, None].expand_as(garbage) == 0] = 0.99
        out2 = net(ms=garbage, pan=inp["pan"], ms_mask=mask)
    assert torch.isfinite(out).all() and (out >= 0).all()
    assert torch.allclose(out, out2, atol=1e-5)  # values of missing bands are never used
    # per-pixel masks work too
    pix = (torch.rand(2, 8, 8, 8) > 0.5).float()
    with torch.no_grad():
        assert net(**inp, ms_mask=pix).shape == x.shape
    with pytest.raises(ValueError, match="at least one band"):
        net(**inp, ms_mask=torch.zeros(2, 8))


def test_fill_missing_and_pan_weights():
    ms = torch.rand(1, 4, 6, 6) + 0.1
    mask = torch.tensor([[1.0, 0.0, 1.0, 0.0]])
    f = fill_missing(ms, mask)
    assert torch.equal(f[:, 0], ms[:, 0]) and torch.allclose(f[:, 1], (ms[:, 0] + ms[:, 2]) / 2)
    w_true = torch.tensor([[0.1, 0.4, 0.0, 0.5]], dtype=torch.float64)
    ms = torch.rand(1, 4, 20, 20, dtype=torch.float64)
    pan = (ms * w_true[..., None, None]).sum(1)
    w = estimate_pan_weights(ms, pan, iters=3000)
    assert (w >= 0).all() and torch.allclose(w, w_true, atol=2e-2)


@pytest.mark.parametrize(
    "kw, match",
    [
        ({"ms": torch.rand(1, 8, 16, 16), "pan": torch.rand(1, 1, 60, 64)}, "ratio"),
        ({"ms": torch.rand(1, 4, 16, 16), "pan": torch.rand(1, 1, 64, 64)}, "has 8"),
        ({"ms": torch.rand(1, 8, 16, 16) - 0.5, "pan": torch.rand(1, 1, 64, 64)}, "negative"),
        ({"ms": torch.rand(1, 8, 16, 16), "pan": torch.full((1, 1, 64, 64), float("nan"))}, "NaN"),
    ],
)
def test_pansharpen_model_bad_inputs(kw, match):
    with pytest.raises(ValueError, match=match):
        zoo.create("ssopga-pansharpen-wv", **TINY)(**kw)


def test_flash_model_inputs():
    net = zoo.create("ssopga-flash", **TINY).eval()
    x = torch.rand(2, 3, 20, 20)
    with torch.no_grad():
        out = net(noisy=x, flash=x[:, :1], sigma=torch.tensor([0.1, 0.2]))  # grey guide is broadcast
    assert out.shape == x.shape
    with pytest.raises(ValueError, match="sigma"):
        net(noisy=x, flash=x, sigma=torch.tensor([0.1, 0.2, 0.3]))
    with pytest.raises(ValueError, match="negative"):
        net(noisy=x, flash=-x, sigma=0.1)
    with pytest.raises(ValueError, match="NaN"):
        net(noisy=x * float("nan"), flash=x, sigma=0.1)


def test_bf16_autocast_forward():
    net = zoo.create("ssopga-pansharpen-wv", **TINY).eval()
    inp = net.measure(torch.rand(1, 8, 32, 32))
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        out = net(**inp)
    assert torch.isfinite(out.float()).all()


class _PS(torch.utils.data.Dataset):
    def __init__(self, net):
        self.net = net

    def __len__(self):
        return 4

    def __getitem__(self, i):
        g = torch.Generator().manual_seed(i)
        x = torch.rand(1, self.net.channels, 32, 32, generator=g) * 0.8 + 0.1
        inp = {k: v[0] for k, v in self.net.measure(x).items()}
        return {"target": x[0], "inputs": inp}


@pytest.mark.parametrize("name", ["ssopga-pansharpen-wv", "pga-flash"])
def test_lightning_fit_two_steps(name):
    from zoo.training.ssopga import SSOPGAModule

    m = SSOPGAModule(name, dict(TINY), spectral="pansharpen" in name)
    dl = DataLoader(_PS(m.net), batch_size=2)
    before = {k: v.clone() for k, v in m.state_dict().items()}
    t = L.Trainer(max_steps=2, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                  enable_model_summary=False, num_sanity_val_steps=0, accelerator="cpu")
    t.fit(m, dl, dl)
    assert any(not torch.equal(before[k], v) for k, v in m.state_dict().items())
    assert "val/psnr" in t.callback_metrics and "val/min_iterate" in t.callback_metrics
