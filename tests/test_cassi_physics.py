"""SD-CASSI operator: the TSA/MST benchmark formula (NumPy transcription), real masks, errors, GAP-TV."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from zoo.data.cassi import read_cassi_mask as load_cassi_mask
from zoo.physics import SDCASSI
from zoo.solvers import gap_tv

from cassi_fixtures import real_data_root_cassi  # noqa: F401  (fixture)


# -- an independent transcription of the TSA-Net / MST NumPy code (HWC layout, np.roll) --------
def np_forward(mask2d: np.ndarray, cube_hwc: np.ndarray, step: int = 2) -> np.ndarray:
    h, w, c = cube_hwc.shape
    mask_3d = np.tile(mask2d[:, :, np.newaxis], (1, 1, c))
    temp = mask_3d * cube_hwc
    temp_shift = np.zeros((h, w + (c - 1) * step, c))
    temp_shift[:, 0:w, :] = temp
    for t in range(c):
        temp_shift[:, :, t] = np.roll(temp_shift[:, :, t], step * t, axis=1)
    return np.sum(temp_shift, axis=2)


def np_shift_back(meas: np.ndarray, c: int, step: int = 2) -> np.ndarray:
    h, wp = meas.shape
    w = wp - step * (c - 1)
    return np.stack([meas[:, step * i : step * i + w] for i in range(c)], axis=2)


def np_phi_s(mask2d: np.ndarray, c: int, step: int = 2) -> np.ndarray:
    h, w = mask2d.shape
    shifted = np.zeros((h, w + (c - 1) * step, c))
    shifted[:, 0:w, :] = np.tile(mask2d[:, :, None], (1, 1, c))
    for t in range(c):
        shifted[:, :, t] = np.roll(shifted[:, :, t], step * t, axis=1)
    s = np.sum(shifted**2, axis=2)
    s[s == 0] = 1
    return s


def _check_against_numpy(mask: np.ndarray, c: int, step: int, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    mask = mask.astype(np.float32).astype(np.float64)  # the operator stores its mask in float32
    h, w = mask.shape
    cube = rng.random((h, w, c))
    op = SDCASSI(torch.from_numpy(mask), bands=c, step=step).double()
    x = torch.from_numpy(cube).permute(2, 0, 1)[None]
    y = op.A(x)
    ref = np_forward(mask.astype(np.float64), cube, step)
    assert y.shape == (1, 1, h, w + step * (c - 1))
    np.testing.assert_allclose(y[0, 0].numpy(), ref, rtol=1e-12, atol=1e-10)
    # initial estimate shift_back(y / C · 2)
    np.testing.assert_allclose(op.A_dagger(y)[0].permute(1, 2, 0).numpy(), np_shift_back(ref / c * 2, c, step), atol=1e-12)
    # adjoint = mask ⊙ shift_back
    np.testing.assert_allclose(op.A_adjoint(y)[0].permute(1, 2, 0).numpy(),
                               np_shift_back(ref, c, step) * mask[:, :, None], atol=1e-10)
    np.testing.assert_allclose(op.phi_phit()[0, 0].numpy(), np_phi_s(mask, c, step), rtol=1e-12)


def test_real_256_mask_matches_numpy_transcription(real_data_root_cassi):
    mask = load_cassi_mask(real_data_root_cassi / "cassi" / "mask_256.mat").numpy()
    assert mask.shape == (256, 256)
    _check_against_numpy(mask, 28, 2)
    op = SDCASSI(torch.from_numpy(mask))
    assert tuple(op.A(torch.rand(1, 28, 256, 256)).shape) == (1, 1, 256, 310)


def test_real_660_mask_and_capture_sizes(real_data_root_cassi):
    import scipy.io as sio

    mask = load_cassi_mask(real_data_root_cassi / "cassi" / "real" / "mask_660.mat")
    meas = sio.loadmat(str(real_data_root_cassi / "cassi" / "real" / "scene1.mat"))["meas_real"]
    op = SDCASSI(mask)
    y = torch.from_numpy(np.asarray(meas, dtype=np.float32))[None, None]
    assert op.A_adjoint(y).shape == (1, 28, 660, 660)


@pytest.mark.parametrize("c, step, hw", [(28, 2, (12, 17)), (7, 3, (9, 5)), (31, 1, (6, 6)), (3, 0, (4, 5))])
def test_any_bands_step_size_match_numpy(c, step, hw):
    rng = np.random.default_rng(1)
    _check_against_numpy(rng.random(hw), c, step)


def test_gap_projection_is_exact_and_phi_phit_diagonal():
    g = torch.Generator().manual_seed(0)
    op = SDCASSI(torch.rand(10, 12, generator=g), bands=6, step=2).double()
    x = torch.rand(1, 6, 10, 12, dtype=torch.float64)
    y = op.A(torch.rand(1, 6, 10, 12, dtype=torch.float64))
    # AAᵀ is diagonal: A(Aᵀ v) = ΦΦᵀ ⊙ v wherever ΦΦᵀ > 0
    v = torch.rand_like(y)
    assert torch.allclose(op.A(op.A_adjoint(v)), v * op.phi_phit(like=v), atol=1e-12)
    x1 = x + op.gap_step(x, y)
    assert torch.allclose(op.A(x1), y, atol=1e-10)


def test_batched_masks_and_crops():
    op = SDCASSI(torch.rand(32, 32), bands=4, step=2)
    m = op.crop_mask(8, 10, batch=3, generator=torch.Generator().manual_seed(0))
    assert m.shape == (3, 1, 8, 10)
    x = torch.rand(3, 4, 8, 10)
    y = op.A(x, mask=m)
    for i in range(3):
        assert torch.allclose(y[i : i + 1], SDCASSI(m[i, 0], bands=4).A(x[i : i + 1]))
    assert torch.equal(op.crop_mask(8, 10, top=2, left=3)[0, 0], op.mask[2:10, 3:13])
    with pytest.raises(ValueError, match="larger than the 32×32"):
        op.crop_mask(40, 8)


def test_shot_noise_statistics():
    torch.manual_seed(0)
    y = torch.full((1, 1, 64, 64), 5.0)
    yn = SDCASSI.shot_noise(y, bands=28)
    assert abs(float(yn.mean()) / 5.0 - 1) < 0.02  # unbiased up to the floor of counts
    assert 0 < float(yn.std()) < 0.5
    assert torch.all(yn >= 0)


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda op: op.A(torch.rand(1, 27, 16, 16)), "27 bands but this operator disperses 28"),
        (lambda op: op.A(torch.rand(28, 16, 16)), r"cube batch \(N, C=28, H, W\)"),
        (lambda op: op.A(torch.rand(1, 28, 16, 20)), "cube is 16×20 but the mask is 16×16"),
        (lambda op: op.A(torch.full((1, 28, 16, 16), float("nan"))), "NaN"),
        (lambda op: op.A_adjoint(torch.rand(1, 1, 16, 60)), "measurement/mask size mismatch"),
        (lambda op: op.A_adjoint(torch.rand(16, 70)), r"measurement must be \(N, 1, H, W \+ 54\)"),
        (lambda op: op.A_adjoint(torch.rand(1, 16, 70)), "measurement must be"),
        (lambda op: op.A_dagger(torch.rand(1, 28, 16, 70)), "A 3-D array is a cube"),
        (lambda op: op.A_adjoint(torch.full((1, 1, 16, 70), float("nan"))), "measurement contains"),
        (lambda op: op.A_adjoint(torch.rand(1, 1, 16, 70), img_size=(16, 20)), "img_size"),
    ],
)
def test_bad_input_errors(call, match):
    op = SDCASSI(torch.rand(16, 16))
    with pytest.raises(ValueError, match=match):
        call(op)


def test_bad_masks():
    with pytest.raises(ValueError, match="2-D"):
        SDCASSI(torch.rand(2, 8, 8))
    with pytest.raises(ValueError, match="NaN"):
        SDCASSI(torch.full((4, 4), float("nan")))
    with pytest.raises(ValueError, match="bands"):
        SDCASSI(bands=0)


def test_mask_file_roundtrip(tmp_path):
    import scipy.io as sio

    m = np.random.default_rng(0).random((6, 7)).astype(np.float32)
    sio.savemat(tmp_path / "m.mat", {"mask": m})
    assert torch.equal(load_cassi_mask(tmp_path / "m.mat"), torch.from_numpy(m))
    sio.savemat(tmp_path / "m3.mat", {"mask": np.repeat(m[:, :, None], 28, 2)})
    assert load_cassi_mask(tmp_path / "m3.mat").shape == (6, 7)
    with pytest.raises(KeyError, match="no key 'Phi'"):
        load_cassi_mask(tmp_path / "m.mat", key="Phi")


def test_gap_tv_beats_initial_estimate():
    # a piecewise-smooth synthetic cube: GAP-TV must clearly improve on shift_back(y/C·2)
    from zoo.metrics import psnr

    g = torch.Generator().manual_seed(0)
    op = SDCASSI(mask_size=32, bands=8, step=2, seed=1)
    base = torch.nn.functional.interpolate(torch.rand(1, 3, 4, 4, generator=g), size=(32, 32), mode="nearest")
    spectra = torch.rand(3, 8, generator=g)
    x = torch.einsum("nchw,cb->nbhw", base, spectra) / 3
    y = op.A(x)
    rec = gap_tv(op, y, iters=30, tv_weight=2.0)
    assert float(psnr(rec, x)) > float(psnr(op.A_dagger(y), x)) + 5


@pytest.mark.parametrize("c, step, n_x, n_m", [(28, 2, 2, 1), (5, 3, 1, 3), (4, 0, 2, 2), (1, 2, 1, 1)])
def test_fast_shear_equals_traceable_and_gradients_check(c, step, n_x, n_m):
    """The buffer/strided-view shear (eager) and the F.pad one (export) agree; both gradients pass gradcheck."""
    from zoo.physics.cassi import _Unshear, _shear, _shear_traceable, _unshear_traceable

    g = torch.Generator().manual_seed(c + step)
    x = torch.rand(n_x, c, 5, 7, dtype=torch.float64, generator=g, requires_grad=True)
    m = torch.rand(n_m, 1, 5, 7, dtype=torch.float64, generator=g, requires_grad=True)
    assert torch.equal(_shear(x, step, m), _shear_traceable(x, step, m))
    with torch.no_grad():  # the out= path
        assert torch.equal(_shear(x, step, m), _shear_traceable(x, step, m))
    y = torch.rand(n_x, 1, 5, 7 + step * (c - 1), dtype=torch.float64, generator=g, requires_grad=True)
    yc = torch.rand(n_x, c, 5, 7 + step * (c - 1), dtype=torch.float64, generator=g, requires_grad=True)
    for v in (y, yc, y.transpose(-1, -2).contiguous().transpose(-1, -2)):  # also a non-contiguous y
        assert torch.equal(_Unshear.apply(v, c, step), _unshear_traceable(v, c, step))
    assert torch.autograd.gradcheck(lambda a, b: _shear(a, step, b), (x, m))
    assert torch.autograd.gradcheck(lambda a: _Unshear.apply(a, c, step), (y,))
    assert torch.autograd.gradcheck(lambda a: _Unshear.apply(a, c, step), (yc,))


def test_shift_back_and_adjoint_do_not_alias_the_measurement():
    """The operator reads y through a strided view internally; what it hands out is a new tensor."""
    op = SDCASSI(torch.rand(4, 6), bands=3, step=2)
    y = torch.rand(1, 1, 4, 10)
    y0 = y.clone()
    for out in (op.shift_back(y), op.A_adjoint(y), op.A_dagger(y)):
        out.mul_(2)
    assert torch.equal(y, y0)
