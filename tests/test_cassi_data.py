"""CASSI data: official layouts (fake files in the real formats), synthesis, colour, the datamodule."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from zoo.data import cassi as D
from zoo.data.spectral import (WAVELENGTHS, blackbody, cube_to_srgb, cube_to_xyz, random_spectra, reflectance_from_xyz,
                               rgb_to_cube, rgb_to_random_cube)

from cassi_fixtures import real_data_root_cassi  # noqa: F401  (fixture)


@pytest.fixture(scope="module")
def fake_root(tmp_path_factory) -> Path:
    from fakedata_cassi import make

    return make(tmp_path_factory.mktemp("cassi_fake"))


def test_resample_bands_linear_and_range():
    wl = D.CAVE_WAVELENGTHS
    cube = np.broadcast_to(wl[:, None, None], (31, 2, 2)).astype(np.float64)
    out = D.resample_bands(cube, wl)
    np.testing.assert_allclose(out[:, 0, 0], D.KAIST_WAVELENGTHS, rtol=1e-6)  # linear data → exact
    with pytest.raises(ValueError, match="exceed"):
        D.resample_bands(np.zeros((3, 2, 2)), [500, 510, 520])


def test_official_layouts(fake_root):
    c = fake_root / "cassi"
    for f in (c / "cave256" / "cloth_ms_256.mat", c / "kaist" / "scene01.mat", c / "mst_cave" / "scene001.mat"):
        cube = D.read_cube(f)
        assert cube.shape[0] == 28 and cube.dtype == np.float32 and 0 <= cube.min() and cube.max() <= 1
    assert 0.5 < D.read_cube(c / "cave256" / "cloth_ms_256.mat").max() <= 1.0  # NRD / max over 31 bands
    png = D.list_cubes(c / "cave_png")
    assert len(png) == 1 and D.load_any(png[0]).shape == (28, 40, 40)
    remote = D.read_remote_cubes(c / "remote")
    assert len(remote) == 3 and all(r.shape[0] == 28 for r in remote)


def test_bad_cubes_are_refused(tmp_path):
    import scipy.io as sio

    sio.savemat(tmp_path / "a.mat", {"img": np.random.rand(16, 16, 27)})
    with pytest.raises(ValueError, match="28 .* or 31"):
        D.read_cube(tmp_path / "a.mat")
    sio.savemat(tmp_path / "b.mat", {"foo": np.zeros((4, 4))})  # no cube variable at all
    with pytest.raises(KeyError, match="keys present"):
        D.read_cube(tmp_path / "b.mat")
    bad = np.random.rand(16, 16, 28)
    bad[0, 0, 0] = np.nan
    sio.savemat(tmp_path / "c.mat", {"img": bad})
    with pytest.raises(ValueError, match="NaN"):
        D.read_cube(tmp_path / "c.mat")
    sio.savemat(tmp_path / "d.mat", {"img": np.random.rand(16, 16)})
    with pytest.raises(ValueError, match="3-D"):
        D.read_cube(tmp_path / "d.mat")
    with pytest.raises(D.DatasetNotFoundError, match="Expected .mat cubes"):
        D.CASSIDataModule(data_root=str(tmp_path), rgb_dirs=["nope"]).setup("fit")


def test_reflectance_recovery_reproduces_colour():
    # Otsu 2018 recovery is exact in XYZ (before clipping) for in-gamut mid-tones
    rng = np.random.default_rng(0)
    from zoo.data.spectral import rgb_to_xyz, srgb_to_linear
    from zoo.data._spectral_tables import CMF_1931

    rgb = 0.3 + 0.4 * rng.random((50, 3))
    refl = reflectance_from_xyz(rgb_to_xyz(srgb_to_linear(rgb)))
    assert refl.shape == (50, 28) and (refl >= 0).all() and (refl <= 1).all()
    # a grey input gives a nearly flat spectrum
    grey = reflectance_from_xyz(rgb_to_xyz(srgb_to_linear(np.array([[0.5, 0.5, 0.5]]))))[0]
    assert grey.std() < 0.05 * grey.mean() + 0.01
    # black stays black, shading scales the spectrum
    assert np.abs(reflectance_from_xyz(np.zeros((1, 3)))).max() == 0
    assert CMF_1931.shape == (28, 3)


def test_tables_match_colour_science():
    colour = pytest.importorskip("colour")
    from colour.recovery.otsu2018 import DATASET_REFERENCE_OTSU2018 as ds

    rng = np.random.default_rng(1)
    for v in rng.random((10, 3)) * 0.5 + 0.1:
        sd = colour.recovery.XYZ_to_sd_Otsu2018(v, clip=False)
        ref = np.clip(np.interp(WAVELENGTHS, sd.wavelengths, sd.values), 0, 1)
        np.testing.assert_allclose(reflectance_from_xyz(v[None], floor=0)[0], ref, atol=1e-5)
    assert ds.basis_functions.shape[0] == 8


def test_rendering_white_and_colours():
    flat = np.full((28, 2, 2), 0.5)
    xyz = cube_to_xyz(flat)
    np.testing.assert_allclose(xyz[0, 0] / xyz[0, 0, 1], [0.9505, 1.0, 1.089], atol=2e-3)
    img = cube_to_srgb(torch.from_numpy(flat).float())
    assert img.dtype == np.uint8 and (img == 255).all()
    red = np.zeros((28, 1, 1))
    red[-6:] = 1
    r, g, b = cube_to_srgb(red, exposure=1)[0, 0].astype(int)
    assert r > g and r > b
    assert blackbody(3000)[-1] > blackbody(3000)[0] and blackbody(9000)[0] > blackbody(9000)[-1]
    cube = rgb_to_cube(np.full((3, 3, 3), 200, dtype=np.uint8), illuminant=blackbody(5000))
    assert cube.shape == (28, 3, 3)


def test_random_spectra_mix_by_colour():
    rng = np.random.default_rng(0)
    basis = random_spectra(rng)
    assert basis.shape == (3, len(WAVELENGTHS)) and basis.min() >= 0 and np.allclose(basis.max(1), 1)
    assert not np.allclose(random_spectra(rng), basis)  # a new basis per draw
    img = np.zeros((2, 2, 3), dtype=np.uint8)
    img[0, 0] = (255, 0, 0)  # a saturated primary takes its own spectrum, at full brightness
    img[0, 1] = (0, 0, 0)
    img[1, 0] = (128, 128, 128)  # equal channels: the mean of the three spectra, at the pixel's brightness
    cube = rgb_to_random_cube(img, basis)
    assert cube.shape == (28, 2, 2) and cube.dtype == np.float32
    np.testing.assert_allclose(cube[:, 0, 0], basis[0], atol=1e-4)
    assert np.abs(cube[:, 0, 1]).max() < 1e-6
    grey = float(((128 / 255 + 0.055) / 1.055) ** 2.4)
    np.testing.assert_allclose(cube[:, 1, 0], basis.mean(0) * grey, rtol=1e-4)
    with pytest.raises(ValueError, match=r"\(3, C\) basis"):
        rgb_to_random_cube(img, basis[:2])


def test_random_spectra_crops_only_in_training(fake_root):
    rgb = [(np.random.default_rng(1).random((40, 40, 3)) * 255).astype(np.uint8)]
    otsu = D.SpectralPatches(rgb, [], 32, 4, illuminant_prob=0.0, seed=3)
    mixed = D.SpectralPatches(rgb, [], 32, 4, illuminant_prob=0.0, seed=3, random_spectra_prob=1.0)
    a, b = otsu[0]["target"], mixed[0]["target"]
    assert a.shape == b.shape == (28, 32, 32) and not torch.allclose(a, b) and 0 <= float(b.min()) <= float(b.max()) <= 1
    with pytest.raises(ValueError, match="random_spectra_prob"):
        D.SpectralPatches(rgb, [], 32, 4, random_spectra_prob=1.5)
    dm = D.CASSIDataModule(data_root=str(fake_root), train_dirs=["cassi/mst_cave"], patch=32, samples_per_epoch=4,
                           val_images=1, batch_size=2, random_spectra_prob=1.0)
    dm.setup("fit")
    assert dm.train_set.random_spectra_prob == 1.0 and dm.val_set.random_spectra_prob == 0.0


def test_bump_cube_peaks_follow_a_field_or_the_hue():
    from zoo.data.spectral import WAVELENGTHS, rgb_to_bump_cube

    img = (np.random.default_rng(0).random((24, 24, 3)) * 255).astype(np.uint8)
    seen = set()
    for seed in range(8):
        cube = rgb_to_bump_cube(img, np.random.default_rng(seed))
        assert cube.shape == (28, 24, 24) and cube.dtype == np.float32 and 0 <= cube.min() <= cube.max() <= 1
        lin = ((img / 255 + 0.055) / 1.055) ** 2.4
        np.testing.assert_allclose(cube.max(0), lin.max(-1), rtol=1e-4, atol=1e-6)  # brightness = max linear RGB
        seen.add(len(np.unique(cube.argmax(0))))
    assert max(seen) > 3  # pixels peak at different bands, not one spectrum per crop
    np.testing.assert_array_equal(rgb_to_bump_cube(img, np.random.default_rng(5)),
                                  rgb_to_bump_cube(img, np.random.default_rng(5)))
    flat = rgb_to_bump_cube(np.full((16, 16, 3), 200, np.uint8), np.random.default_rng(1))
    assert np.isfinite(flat).all() and len(WAVELENGTHS) == flat.shape[0]
    with pytest.raises(ValueError, match=r"\(H, W, 3\) image"):
        rgb_to_bump_cube(img[..., :2], np.random.default_rng(0))


def test_bump_spectra_crops_only_in_training(fake_root):
    rgb = [(np.random.default_rng(1).random((40, 40, 3)) * 255).astype(np.uint8)]
    otsu = D.SpectralPatches(rgb, [], 32, 4, illuminant_prob=0.0, seed=3)
    bump = D.SpectralPatches(rgb, [], 32, 4, illuminant_prob=0.0, seed=3, bump_spectra_prob=1.0)
    assert not torch.allclose(otsu[0]["target"], bump[0]["target"])
    with pytest.raises(ValueError, match="bump_spectra_prob"):
        D.SpectralPatches(rgb, [], 32, 4, bump_spectra_prob=-0.1)
    dm = D.CASSIDataModule(data_root=str(fake_root), train_dirs=["cassi/mst_cave"], patch=32, samples_per_epoch=4,
                           val_images=1, batch_size=2, bump_spectra_prob=0.5)
    dm.setup("fit")
    assert dm.train_set.bump_spectra_prob == 0.5 and dm.val_set.bump_spectra_prob == 0.0


def test_datamodule_fit_and_test(fake_root):
    dm = D.CASSIDataModule(data_root=str(fake_root), train_dirs=["cassi/mst_cave"], patch=32, samples_per_epoch=6,
                           val_images=1, batch_size=2, test_dirs=["cassi/cave256", "cassi/kaist"])
    dm.setup("fit")
    b = next(iter(dm.train_dataloader()))
    assert b["target"].shape == (2, 28, 32, 32) and 0 <= float(b["target"].min()) and float(b["target"].max()) <= 1
    v1 = next(iter(dm.val_dataloader()))["target"]
    v2 = next(iter(dm.val_dataloader()))["target"]
    assert torch.equal(v1, v2)  # fixed validation crops
    dm.setup("test")
    assert dm.test_names == ["cave256", "kaist"]
    t = next(iter(dm.test_dataloader()[0]))
    assert t["target"].shape == (1, 28, 48, 48)


def test_custom_cube_folder_only(fake_root):
    dm = D.CASSIDataModule(data_root=str(fake_root), rgb_dirs=[], remote_dir=None, train_dirs=["cassi/mst_cave"],
                           patch=32, samples_per_epoch=4, batch_size=2)
    dm.setup("fit")
    assert next(iter(dm.train_dataloader()))["target"].shape == (2, 28, 32, 32)
    assert len(dm.val_set) == 16


def test_real_cave_and_remote(real_data_root_cassi):
    c = real_data_root_cassi / "cassi"
    cubes = [D.read_cube(f) for f in D.list_cubes(c / "cave256")]
    assert len(cubes) == 2 and all(x.shape == (28, 256, 256) for x in cubes)
    assert all(x.shape[0] == 28 and min(x.shape[1:]) >= 72 for x in D.read_remote_cubes(c / "remote"))


def test_cave_style_cube_variable_is_found_and_max_normalised(tmp_path):
    """A CAVE cube under another variable name (the training cube's `Omsi`, uint16) is found and divided by its max."""
    import numpy as np
    import scipy.io as sio

    from zoo.data.cassi import read_cube

    rng = np.random.default_rng(0)
    a = (rng.random((16, 16, 31)) * 40000).astype(np.uint16)
    sio.savemat(tmp_path / "c.mat", {"Omsi": a, "note": np.zeros((2, 2))})
    cube = read_cube(tmp_path / "c.mat")
    assert cube.shape == (28, 16, 16) and 0.9 < float(cube.max()) <= 1.0
    sio.savemat(tmp_path / "d.mat", {"whatever": a, "other": a})
    with pytest.raises(KeyError, match="pass key="):
        read_cube(tmp_path / "d.mat")  # two candidates: ambiguous, say so
