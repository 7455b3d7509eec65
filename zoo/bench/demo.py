"""``zoo demo``: every pretrained checkpoint restores a built-in sample that fits its own inputs.

One picture per model — input | classical floor | output | target, with the PSNR under each
panel (spectral cubes rendered to sRGB) — and a ``metrics.md`` table that says when a learned
model scores below its floor on its sample.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from zoo.api import get_entry, list_models, load
from zoo.metrics import psnr, ssim
from zoo.tasks import Task, get_task
from zoo.utils.files import atomic_write, check_writable

__all__ = ["run_demo"]


def _input_picture(task: Task, inputs: dict, like: torch.Tensor) -> torch.Tensor:
    """What the restorer is given, shown at the target's size: the noisy image, the upsampled MS,
    or (for a measurement that is not an image) the floor's own first estimate."""
    for k in ("noisy", "ms", "lr", "low", "x"):
        if k in inputs and inputs[k].ndim == 4:
            t = inputs[k].float()
            if t.shape[-2:] != like.shape[-2:]:
                t = torch.nn.functional.interpolate(t, size=like.shape[-2:], mode="nearest")
            return t
    return torch.zeros(0)


def _panel(img: np.ndarray, caption: str, height: int = 22) -> np.ndarray:
    from PIL import Image, ImageDraw

    rgb = img if img.ndim == 3 else np.repeat(img[..., None], 3, axis=2)
    pic = Image.new("RGB", (rgb.shape[1], rgb.shape[0] + height), (255, 255, 255))
    pic.paste(Image.fromarray(rgb), (0, 0))
    ImageDraw.Draw(pic).text((4, rgb.shape[0] + 5), caption, fill=(0, 0, 0))
    return np.asarray(pic)


def _measurement_picture(y: torch.Tensor, width: int) -> np.ndarray:
    """A 2-D measurement (CASSI detector image, CS coefficients) as a grey picture, stretched."""
    a = y.detach().float()[0, 0]
    a = (a - a.min()) / (a.max() - a.min()).clamp_min(1e-8)
    img = (a.cpu().numpy() * 255 + 0.5).astype(np.uint8)
    from PIL import Image

    h = max(1, round(img.shape[0] * width / img.shape[1]))
    return np.asarray(Image.fromarray(img).resize((width, h), Image.NEAREST))


def run_demo(out_dir: str | Path, names: Sequence[str] | None = None, overwrite: bool = False) -> list[list[str]]:
    """Restore each checkpoint's built-in sample; write ``<name>.png`` per model and ``metrics.md``."""
    from PIL import Image

    out = Path(out_dir)
    names = list(names or list_models(pretrained=True))
    if not names:
        raise ValueError("no pretrained checkpoints are listed in checkpoints_manifest.json")
    targets = [out / f"{n}.png" for n in names] + [out / "metrics.md"]
    existing = [str(p) for p in targets if p.exists()]
    if existing and not overwrite:
        raise FileExistsError(f"{existing[0]} exists; pass --overwrite to replace the demo in {out}")
    check_writable(out)
    rows = []
    for name in names:
        task = get_task(get_entry(name).task)
        net = load(name)
        torch.manual_seed(0)  # simulated noise (e.g. the real-system CASSI model) is the same every run
        batch = task.sample(net)
        x = batch["target"]
        with torch.no_grad():
            inputs = task.inputs(net, batch)
            t = time.perf_counter()
            y = net(**inputs).float()
            dt = time.perf_counter() - t
            floor = task.floor(net, inputs).float()
        p_floor, p_out = float(psnr(floor, x)[0]), float(psnr(y, x)[0])
        s_floor, s_out = float(ssim(floor, x)[0]), float(ssim(y, x)[0])
        shown = _input_picture(task, inputs, x)
        if shown.numel():
            first = _panel(task.to_image(shown), f"input  {float(psnr(shown, x)[0]):.2f} dB")
        else:  # a measurement, not an image: show it as it is
            key = next(k for k, v in inputs.items() if torch.is_tensor(v) and v.ndim == 4)
            first = _panel(_measurement_picture(inputs[key], x.shape[-1]),
                           f"measurement {key}" + (f" (1st of {inputs[key].shape[1]} maps)" if inputs[key].shape[1] > 1 else ""))
        panels = [_panel(task.to_image(floor), f"{task.floor_name.split(' (')[0]}  {p_floor:.2f} dB"),
                  _panel(task.to_image(y), f"{name}  {p_out:.2f} dB"), _panel(task.to_image(x), "target")]
        h = max(p.shape[0] for p in [first, *panels])
        pad = lambda a: np.pad(a, ((0, h - a.shape[0]), (0, 4), (0, 0)), constant_values=255)  # noqa: E731
        grid = np.concatenate([pad(first), *map(pad, panels)], axis=1)
        with atomic_write(out / f"{name}.png", overwrite=True) as tmp:
            Image.fromarray(grid).save(tmp, format="PNG")
        verdict = "above floor" if p_out > p_floor else "**below floor**"
        rows.append([name, task.name, task.floor_name, f"{p_floor:.2f}", f"{p_out:.2f}", f"{s_floor:.4f}",
                     f"{s_out:.4f}", verdict, f"{dt:.2f}"])
    header = ["model", "task", "floor", "PSNR floor", "PSNR model", "SSIM floor", "SSIM model", "vs floor", "seconds"]
    md = "| " + " | ".join(header) + " |\n|" + "---|" * len(header) + "\n" + "".join(
        "| " + " | ".join(r) + " |\n" for r in rows)
    with atomic_write(out / "metrics.md", overwrite=True) as tmp:
        tmp.write_text("Built-in procedural samples (zoo.samples), one per model, fitting its inputs (bands, "
                       "sensor, mask, sigma); 'floor' = the task's classical method on the same inputs.\n\n" + md)
    return [header, *rows]
