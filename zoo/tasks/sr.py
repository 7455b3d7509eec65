"""Task ``sr``: non-blind super-resolution ``y = (x ⊛ k)↓s + n`` (LoRun-SR, Block-9).

* ``Set5``, ``Set14``, ``BSD100``: the official SelfExSR pairs (``sr/<Set>/image_SRF_<s>``), LR = MATLAB
  bicubic ``imresize`` of the HR, as they are; the model is told the bicubic kernel of its scale.
* ``CBSD68-12k-x<s>`` / ``CBSD68-12k-x<s>-n2.55``: the USRNet protocol on ``images/CBSD68``: the HR cropped to a
  multiple of ``s``, blurred circularly by each of the 12 kernels of :func:`~zoo.physics.sr.usrnet_kernels`,
  decimated (``↓s``), plus Gaussian noise σ = 0 or 2.55/255 (seeded per image and kernel). Items are
  image-major (12 per image), so ``zoo bench --limit 120`` scores the first 10 images on every kernel.
* Metrics: PSNR / SSIM on the BT.601 Y channel of the 8-bit-rounded output, ``s`` border pixels cut.
* Floor: MATLAB bicubic upsampling of the LR (``imresize``).
* ``zoo restore NAME lr.png -o sr.png``: the LR picture super-resolved at the model's scale (``--scale``
  to change it among the trained ones), bicubic kernel unless ``--kernel k.npy|k.png`` is given,
  ``--sigma`` its noise level (/255); tiled over LR tiles for large images.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import torch

from zoo.data.images import list_images, resolve_folder
from zoo.data.io import open_image
from zoo.data.paths import find_data
from zoo.data.sr import SR_SOURCES, read_pairs, read_rgb
from zoo.inference import restore_inputs_tiled
from zoo.metrics import crop_border, psnr, rgb_to_y, ssim
from zoo.models.base import Restorer
from zoo.physics.sr import BlurDownsample, bicubic_kernel, check_kernel, usrnet_kernels
from zoo.samples import sample_ms
from zoo.tasks.base import Batch, Option, Task, Writer, check_input_file, image_format, png_writer, register_task

__all__ = ["SRTask", "read_kernel"]

_SCALES = (2, 3, 4)
CONTEXT = 16  # LR pixels of surroundings each tile is restored with (see SRTask.run)


def read_kernel(path: str | Path) -> torch.Tensor:
    """A blur kernel from ``.npy`` (2-D array) or a grey image (normalised to sum 1) → (kh, kw) float32."""
    p = Path(path)
    check_input_file(p)
    if p.suffix.lower() == ".npy":
        k = np.load(p, allow_pickle=False)
    else:
        with open_image(p) as im:
            k = np.asarray(im.convert("F"), dtype=np.float64)
    k = np.asarray(k, dtype=np.float64)
    if k.ndim != 2:
        raise ValueError(f"kernel {p} has shape {k.shape}: a blur kernel is a 2-D array")
    if not np.isfinite(k).all() or (k < 0).any() or k.sum() <= 0:
        raise ValueError(f"kernel {p} must be finite, non-negative and not all zero")
    return torch.from_numpy(k / k.sum()).float()


class SRTask(Task):
    # -- test data --------------------------------------------------------------------------------------------
    def load_testset(self, name: str, root: str | None) -> list[tuple[str, Batch]]:
        if name.startswith("CBSD68-12k"):
            return self._usrnet_set(name, root)
        folder = find_data(self.datasets[name], root, layout=f"{self.datasets[name]}/image_SRF_<s>/*_SRF_<s>_HR.png",
                           source=SR_SOURCES)
        items = []
        for s in _SCALES:
            if not (folder / f"image_SRF_{s}").is_dir():
                continue
            for stem, x, y in read_pairs(folder, s):
                items.append((f"{stem}_x{s}", {"target": x, "inputs": {
                    "lr": y, "kernel": bicubic_kernel(s)[None, None], "sigma": torch.zeros(1), "scale": s}}))
        return items

    def _usrnet_set(self, name: str, root: str | None) -> list[tuple[str, Batch]]:
        """``CBSD68-12k-x<s>[-n2.55]``: image-major (12 kernels per image), so ``--limit`` keeps whole images."""
        s = int(name.split("-x")[1].split("-")[0])
        sigma = 2.55 / 255 if name.endswith("n2.55") else 0.0
        files = list_images(resolve_folder(self.datasets[name], root))
        op = BlurDownsample(s)
        kernels = usrnet_kernels(s)
        items = []
        for i, f in enumerate(files):
            x, _ = read_rgb(f)
            xs = x[None, :, : x.shape[-2] // s * s, : x.shape[-1] // s * s]
            for j, (kname, k) in enumerate(kernels):
                y = op.A(xs, k, s)
                if sigma:
                    g = torch.Generator().manual_seed(1000 * i + j)
                    y = y + sigma * torch.randn(y.shape, generator=g)
                items.append((f"{f.stem}_{kname}", {"target": xs, "inputs": {
                    "lr": y, "kernel": k[None, None], "sigma": torch.tensor([sigma]), "scale": s}}))
        return items

    def compatible(self, net: Restorer, batch: Batch) -> bool:
        return int(batch["inputs"]["scale"]) == int(net.physics.scale)

    def setting(self, net: Restorer) -> str:
        return f"x{int(net.physics.scale)}"

    def score(self, output: torch.Tensor, target: torch.Tensor, inputs: dict[str, Any]) -> dict[str, float]:
        s = int(inputs["scale"])
        yo, yt = crop_border(rgb_to_y(output), s), crop_border(rgb_to_y(target), s)
        return {"psnr": float(psnr(yo, yt)[0]), "ssim": float(ssim(yo, yt)[0])}

    def sample(self, net: Restorer) -> Batch:
        s = int(net.physics.scale)
        x = sample_ms(192 // (4 * s) * 4 * s, 3)
        return {"target": x, "inputs": net.measure(x)}

    def floor(self, net: Restorer, inputs: dict[str, Any]) -> torch.Tensor:
        return net.physics.A_dagger(inputs["lr"], scale=int(inputs["scale"]))

    def finetune_data_args(self, folder: str) -> list[str]:
        return [f"--data.train_dirs=[{json.dumps(folder)}]", "--data.test_sets=[]"]

    # -- a user's file --------------------------------------------------------------------------------------------
    def read_input(self, net: Restorer, src: str, scale: int | None = None, kernel: str | None = None,
                   sigma: float | None = None, out_size: str | None = None, **opts: Any) -> tuple[dict[str, Any], str]:
        y, note = read_rgb(src)
        s = int(scale or net.physics.scale)
        if y.shape[0] != net.channels:
            raise ValueError(f"{src} has {y.shape[0]} channels; this model restores {net.channels}")
        h, w = y.shape[-2:]
        if out_size:
            try:
                oh, ow = (int(v) for v in out_size.lower().split("x"))
            except ValueError:
                raise ValueError(f"--out-size takes HxW (e.g. 512x512), got {out_size!r}") from None
            if oh < h or ow < w:
                raise ValueError(f"the LR {src} ({h}×{w}) is larger than the asked {oh}×{ow} output: did you pass the "
                                 "HR image? give the low-resolution picture, or a larger --out-size")
            if (oh, ow) != (h * s, w * s):
                if oh % h or ow % w or oh // h != ow // w:
                    raise ValueError(f"--out-size {oh}×{ow} is not an integer scale of the {h}×{w} LR "
                                     f"(×{s} gives {h * s}×{w * s})")
                s = oh // h
        k = read_kernel(kernel) if kernel else bicubic_kernel(s)
        k = check_kernel(k, (h * s, w * s))
        sig = 0.0 if sigma is None else float(sigma) / 255
        if not (math.isfinite(sig) and sig >= 0):
            raise ValueError(f"--sigma must be a noise level >= 0 in /255 units, got {sigma}")
        inputs = {"lr": y[None], "kernel": k, "sigma": torch.tensor([sig]), "scale": s}
        net.check_scale(s)  # type: ignore[attr-defined]  (the sr task's models are LoRunSR)
        what = (f"super-resolved {src} ({h}×{w}{'; ' + note if note else ''}) ×{s} → {h * s}×{w * s} with the "
                f"{'kernel ' + str(kernel) if kernel else 'bicubic kernel'}, σ = {sig * 255:g}/255")
        return inputs, what

    def run(self, net: Restorer, inputs: dict[str, Any], tile: int = 128, overlap: int = 8, **opts: Any) -> torch.Tensor:
        """LR tiles of ``tile`` pixels overlapping by ``overlap``, blended, each restored with ``CONTEXT`` LR pixels of
        its surroundings (the FFT data step is global: with them a tile equals the whole image to ~1e-5,
        results/sr/tiling); memory is bounded by the tile."""
        return restore_inputs_tiled(net, inputs, tile=tile, overlap=overlap, like="lr", scale=int(inputs["scale"]),
                                    context=CONTEXT)

    def outputs(self, net: Restorer, result: torch.Tensor, dst: str) -> dict[Path, Writer]:
        return {Path(dst): png_writer(self, result, image_format(dst))}


register_task(SRTask(
    name="sr",
    headline=("Set5",),
    datasets={"Set5": "sr/Set5", "Set14": "sr/Set14", "BSD100": "sr/BSD100",
              **{f"CBSD68-12k-x{_s}{_n}": "images/CBSD68" for _s in _SCALES for _n in ("", "-n2.55")}},
    description={
        "official sets": "SelfExSR Set5/Set14/BSD100 pairs as they are (LR = MATLAB bicubic imresize); grey images as RGB",
        "12-kernel protocol": "CBSD68 HR cropped to a multiple of s, circular blur by the 12 kernels of "
                              "zoo.physics.sr.usrnet_kernels (4 isotropic, 4 anisotropic Gaussian, 4 motion; generated "
                              "as USRNet describes, not its .mat), decimation x[::s, ::s], noise sigma 0 or 2.55/255",
        "metrics": "PSNR/SSIM on the BT.601 Y channel (MATLAB rgb2ycbcr) of the 8-bit-rounded output, s border pixels cut",
        "floor": "MATLAB bicubic imresize upsampling of the LR",
    },
    metrics={"psnr": psnr, "ssim": ssim},
    floor_name="bicubic interpolation",
    datamodule="zoo.data.sr.SRDataModule",
    options=(Option("scale", "upscaling factor among the model's trained scales (default: the model's)", int, None),
             Option("kernel", "the blur kernel of INPUT (.npy 2-D array or a grey image; default: bicubic)", str, None,
                    "FILE"),
             Option("sigma", "noise level of INPUT in /255 units (default 0)", float, None),
             Option("out_size", "the HR size to produce, HxW (checks that INPUT is the LR of it)", str, None, "HxW"),
             Option("tile", "LR tile size in pixels (bounds the memory of large images)", int, 128),
             Option("overlap", "overlap of neighbouring LR tiles in pixels", int, 8)),
    published={
        ("Set5", "x4"): [
            {"method": "SRCNN (57 K params)", "psnr": 30.48}, {"method": "FSRCNN (12 K)", "psnr": 30.72},
            {"method": "VDSR (665 K)", "psnr": 31.35}, {"method": "CARN-M (412 K)", "psnr": 31.92},
            {"method": "IMDN (715 K)", "psnr": 32.21}],
        ("CBSD68-12k-x4", "x4"): [
            {"method": "USRNet (17 M; its own 12 kernels, BSD68)", "psnr": "25.30–26.30",
             "note": "range over the kernels, noise-free; not the same kernels as this row's"}],
    },
))
