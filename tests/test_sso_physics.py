"""Pansharpening and flash physics: properties beyond the shared adjoint tests, and bad inputs."""

from __future__ import annotations

import math

import pytest
import torch

from zoo.physics.flash import FlashDenoising
from zoo.physics.pansharpen import (
    SENSORS,
    Pansharpening,
    gaussian_kernel1d,
    interp23tap,
    mtf_sigma,
    sensor_gains,
    wald_reduce,
)


@pytest.mark.parametrize("sensor", sorted(SENSORS))
def test_mtf_gaussian_has_the_sensor_gain_at_nyquist(sensor):
    gains, pan_gain = sensor_gains(sensor)
    for g in (*gains, pan_gain):
        s = mtf_sigma(g, 4)
        k = gaussian_kernel1d(torch.tensor(s, dtype=torch.float64), 41)
        t = torch.arange(41, dtype=torch.float64) - 20
        resp = (k * torch.cos(2 * math.pi * t / 8)).sum()  # response at 1/(2r) cycles/pixel
        assert float(resp) == pytest.approx(g, abs=2e-3)
        assert float(k.sum()) == pytest.approx(1.0)


def test_constant_image_is_preserved():
    op = Pansharpening("WV3", pan_weights=torch.full((8,), 1 / 8))
    x = torch.full((1, 8, 32, 36), 0.4)
    y = op.A(x)
    assert torch.allclose(y["ms"], torch.full_like(y["ms"], 0.4), atol=1e-6)
    assert torch.allclose(y["pan"], torch.full_like(y["pan"], 0.4), atol=1e-6)
    assert y["ms"].shape == (1, 8, 8, 9)


def test_decimation_phase_matches_interp23tap():
    # a delta on the LR grid, interpolated, peaks where S samples (offset r//2)
    op = Pansharpening("QB")
    ms = torch.zeros(1, 4, 8, 8)
    ms[..., 3, 5] = 1.0
    up = interp23tap(ms, 4)
    idx = int(up[0, 0].argmax())
    assert divmod(idx, 32) == (3 * 4 + op.offset, 5 * 4 + op.offset)
    # interp23tap interpolates: it keeps the samples where S reads them
    lr = torch.rand(1, 4, 8, 8)
    assert torch.allclose(op.decimate(interp23tap(lr, 4)), lr, atol=1e-3)


def test_nonneg_image_gives_nonneg_measurements():
    op = Pansharpening("WV2")
    y = op.A(torch.rand(2, 8, 40, 40))
    assert (y["ms"] >= 0).all() and (y["pan"] >= 0).all()


def test_per_sample_weights_and_gradient_zero_at_truth():
    op = Pansharpening("QB").double()
    x = torch.rand(2, 4, 24, 24, dtype=torch.float64)
    w = torch.rand(2, 4, dtype=torch.float64)
    y = op.A(x, weights=w)
    assert torch.allclose(y["pan"][1, 0], (x[1] * w[1, :, None, None]).sum(0))
    assert op.gradient(x, y, weights=w).abs().max() < 1e-12


def test_wald_reduce_shapes_and_scale():
    ms, pan = torch.rand(1, 4, 40, 40), torch.rand(1, 1, 160, 160)
    ms_lr, pan_lr = wald_reduce(ms, pan, sensor="QB")
    assert ms_lr.shape == (1, 4, 10, 10) and pan_lr.shape == (1, 1, 40, 40)
    with pytest.raises(ValueError, match="do not match the ratio"):
        wald_reduce(ms, torch.rand(1, 1, 150, 160), sensor="QB")


@pytest.mark.parametrize(
    "ms, pan, match",
    [
        (torch.rand(1, 8, 16, 16), torch.rand(1, 1, 60, 64), "do not match the ratio 4"),
        (torch.rand(1, 4, 16, 16), torch.rand(1, 1, 64, 64), "4 bands but the WV3 sensor has 8"),
        (-torch.rand(1, 8, 16, 16), torch.rand(1, 1, 64, 64), "negative"),
        (torch.rand(1, 8, 16, 16), -torch.rand(1, 1, 64, 64), "PAN image has negative"),
        (torch.full((1, 8, 16, 16), float("nan")), torch.rand(1, 1, 64, 64), "NaN"),
        (torch.rand(1, 8, 16, 16), torch.rand(2, 1, 64, 64), "PAN must be"),
        (torch.rand(8, 16, 16), torch.rand(1, 1, 64, 64), "MS must be"),
    ],
)
def test_pansharpening_bad_inputs(ms, pan, match):
    with pytest.raises(ValueError, match=match):
        Pansharpening("WV3").check_inputs(ms, pan)


def test_pansharpening_bad_config():
    with pytest.raises(ValueError, match="unknown sensor"):
        Pansharpening("Landsat")
    with pytest.raises(ValueError, match="pan_weights must have 8"):
        Pansharpening("WV3", pan_weights=[0.5, 0.5])
    with pytest.raises(ValueError, match="odd"):
        Pansharpening("WV3", kernel_size=40)
    with pytest.raises(ValueError, match="8 bands"):
        Pansharpening("WV3").A(torch.rand(1, 4, 32, 32))
    with pytest.raises(ValueError, match="MTF gain"):
        mtf_sigma(1.2, 4)


def test_flash_noise_protocol():
    op = FlashDenoising(3)
    x = torch.full((2, 3, 64, 64), 0.01)
    g = torch.Generator().manual_seed(0)
    y = op.noisy(x, torch.tensor([25 / 255, 75 / 255]), generator=g)
    assert (y < 0).any()  # no clipping
    assert float((y[0] - x[0]).std()) == pytest.approx(25 / 255, rel=0.05)
    assert float((y[1] - x[1]).std()) == pytest.approx(75 / 255, rel=0.05)
    y2 = op.noisy(x, torch.tensor([25 / 255, 75 / 255]), generator=torch.Generator().manual_seed(0))
    assert torch.equal(y, y2)  # seeded


@pytest.mark.parametrize(
    "noisy, flash, match",
    [
        (torch.rand(1, 3, 16, 16), torch.rand(1, 3, 16, 15), "must match"),
        (torch.rand(1, 3, 16, 16), -torch.rand(1, 3, 16, 16), "negative"),
        (torch.rand(1, 3, 16, 16), torch.full((1, 3, 16, 16), float("nan")), "NaN"),
        (torch.rand(1, 1, 16, 16), torch.rand(1, 3, 16, 16), r"\(N, 3, H, W\)"),
    ],
)
def test_flash_bad_inputs(noisy, flash, match):
    with pytest.raises(ValueError, match=match):
        FlashDenoising(3).check_inputs(noisy, flash)
    with pytest.raises(ValueError, match="noise level"):
        FlashDenoising(3).noisy(torch.rand(1, 3, 4, 4), -0.1)
