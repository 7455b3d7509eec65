"""Reconstruct the 5 real TSA-Net CASSI captures; sRGB renderings and per-band grids beside DGSMP.

For each ``cassi/real/scene{1..5}.mat`` (``meas_real``, 660×714, MST normalisation ``y/C·2·1.2``):
reconstruct 660×660×28 with a real-system LoRun checkpoint (and GAP-TV), render 28 wavelengths →
CIE XYZ → sRGB, and write a per-band grid (ours on top, DGSMP's published pseudo-colour band
images of ``real_reference_dgsmp/<scene>/<band>.png`` below, downscaled). Outputs (PNG, git-ignored)
go to ``results/cassi/real/``; timings to ``results/cassi/real/summary.json``.

Usage:
    OMP_NUM_THREADS=1 python experiments/studies/real_cassi.py [--model lorun-cassi-9stg-real] [--weights runs/.../export]
        [--gaptv] [--adapt 40] [--scenes 1 2 3 4 5] [--out results/cassi/real]

``--adapt N`` also reconstructs with N steps of Equivariant-Imaging adaptation on the capture alone
(``zoo restore … --adapt N``) and writes its sRGB and band grid beside DGSMP's. Without a reference the only
number is the relative measurement residual ``‖Φx̂ − y‖ / ‖y‖`` of each reconstruction (in the summary).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image


def band_grid(cube: torch.Tensor, cols: int = 7, scale: float = 0.25) -> np.ndarray:
    """28 grey band images (each normalised by the cube's 99.5th percentile) in a ``4×7`` grid."""
    c = cube.detach().float().clamp(0, 1).cpu().numpy()
    ref = max(float(np.percentile(c, 99.5)), 1e-6)
    tiles = []
    for b in range(c.shape[0]):
        im = Image.fromarray((np.clip(c[b] / ref, 0, 1) * 255).astype(np.uint8))
        im = im.resize((int(im.width * scale), int(im.height * scale)), Image.BILINEAR)
        tiles.append(np.stack([np.asarray(im)] * 3, -1))
    return _tile(tiles, cols)


def _tile(tiles: list[np.ndarray], cols: int) -> np.ndarray:
    h, w = tiles[0].shape[:2]
    rows = (len(tiles) + cols - 1) // cols
    out = np.full((rows * (h + 2), cols * (w + 2), 3), 255, dtype=np.uint8)
    for i, t in enumerate(tiles):
        r, c = divmod(i, cols)
        out[r * (h + 2) : r * (h + 2) + h, c * (w + 2) : c * (w + 2) + w] = t
    return out


def dgsmp_grid(folder: Path, bands: int = 28, cols: int = 7, scale: float = 0.25) -> np.ndarray | None:
    if not folder.is_dir():
        return None
    tiles = []
    for b in range(1, bands + 1):
        f = folder / f"{b}.png"
        if not f.is_file():
            return None
        with Image.open(f) as im:
            im = im.convert("RGB")
            tiles.append(np.asarray(im.resize((int(im.width * scale), int(im.height * scale)), Image.BILINEAR)))
    return _tile(tiles, cols)


def main(argv: list[str] | None = None) -> int:
    import zoo
    from zoo.data.paths import find_data
    from zoo.data.spectral import cube_to_srgb
    from zoo.models.lorun_cassi import real_to_operator
    from zoo.solvers import gap_tv
    from zoo.tasks.cassi import GAPTV_SETTINGS, read_measurement
    from zoo.training.target_adaptive import ei_adapt

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="lorun-cassi-9stg-real")
    p.add_argument("--weights", help="a checkpoint folder/file (default: the published checkpoint)")
    p.add_argument("--data-root")
    p.add_argument("--scenes", type=int, nargs="*", default=[1, 2, 3, 4, 5])
    p.add_argument("--gaptv", action="store_true", help="also reconstruct with GAP-TV")
    p.add_argument("--adapt", type=int, default=0, help="also N steps of EI adaptation on each capture")
    p.add_argument("--out", default="results/cassi/real")
    ns = p.parse_args(argv)
    torch.set_num_threads(max(1, torch.get_num_threads()))
    real = find_data("cassi/real", ns.data_root, layout="cassi/real/scene{1..5}.mat (meas_real) + mask_660.mat",
                     source="github.com/mengziyi64/TSA-Net (Testing_real_data)")
    ref_root = real.parent / "real_reference_dgsmp"
    net = zoo.load(ns.model, path=ns.weights)
    out = Path(ns.out)
    out.mkdir(parents=True, exist_ok=True)
    summary = {"model": ns.model, "weights": ns.weights or "published", "threads": torch.get_num_threads(), "scenes": {}}
    for s in ns.scenes:
        meas, _ = read_measurement(real / f"scene{s}.mat")
        y = real_to_operator(torch.from_numpy(meas).clamp(0, 1)[None, None], net.physics.bands)
        t = time.perf_counter()
        with torch.no_grad():
            cube = net(y=y).float().clamp(0, 1)[0]
        dt = time.perf_counter() - t
        residual = lambda c: float((net.physics.A(c[None]) - y).norm() / y.norm())  # noqa: E731
        rec = {"seconds": round(dt, 2), "residual": round(residual(cube), 5)}
        ref = dgsmp_grid(ref_root / str(s))
        cubes = {"lorun": cube}
        if ns.adapt:
            t = time.perf_counter()
            tuned = ei_adapt(net, y, steps=ns.adapt)
            with torch.no_grad():
                cubes[f"lorun_ta{ns.adapt}"] = tuned(y=y).float().clamp(0, 1)[0]
            rec[f"ta{ns.adapt}_seconds"] = round(time.perf_counter() - t, 2)
            rec[f"ta{ns.adapt}_residual"] = round(residual(cubes[f"lorun_ta{ns.adapt}"]), 5)
        for tag, c in cubes.items():
            Image.fromarray(cube_to_srgb(c)).save(out / f"scene{s}_{tag}_srgb.png")
            grid = band_grid(c)
            if ref is not None:
                w = max(grid.shape[1], ref.shape[1])
                pad = lambda a: np.pad(a, ((0, 0), (0, w - a.shape[1]), (0, 0)), constant_values=255)  # noqa: E731
                grid = np.concatenate([pad(grid), np.full((8, w, 3), 255, np.uint8), pad(ref)], 0)
            Image.fromarray(grid).save(out / f"scene{s}_bands_{tag}_vs_dgsmp.png")
        if ns.gaptv:
            t = time.perf_counter()
            g = gap_tv(net.physics, y, **GAPTV_SETTINGS)[0].clamp(0, 1)
            rec["gaptv_seconds"] = round(time.perf_counter() - t, 2)
            rec["gaptv_residual"] = round(residual(g), 5)
            Image.fromarray(cube_to_srgb(g)).save(out / f"scene{s}_gaptv_srgb.png")
        summary["scenes"][f"scene{s}"] = rec
        print(f"scene{s}: {rec}", flush=True)
    (out / "summary.json").write_text(json.dumps(summary, indent=1))
    print(f"wrote {out}/")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
