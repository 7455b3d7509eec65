"""Target-adaptive inference: fit a *copy* of a trained network to the one input it is about to
restore, from that input alone (no reference), then restore it.

A network trained on some scenes, sensors or cameras meets an image the training set did not hold.
Each task has a self-supervised signal in its own inputs:

* **pansharpening** (:func:`wald_adapt`; Scarpa et al., "Target-adaptive CNN-based
  pansharpening", TGRS 2018) — reduce the input pair once more with the network's physics
  (Wald's protocol) and learn to map it back to the input MS::

      (ms↓, pan↓) = (S(k_MTF ∗ ms), S(k_PAN ∗ pan)),   θ* ≈ argmin_θ ‖M ⊙ (f_θ(ms↓, pan↓) − ms)‖₁

  (``M`` the band-availability mask when bands are missing). Each step sees the pair under one of
  the 8 flips/rotations (applied before the reduction, so the decimation phase stays exact) and,
  for images larger than ``crop`` MS pixels, a random crop aligned to the ratio.
* **flash-guided denoising** (:func:`r2r_adapt`; Pang et al., "Recorrupted-to-Recorrupted",
  CVPR 2021) — for Gaussian noise of known σ, with ``z ~ N(0, σ²I)`` drawn afresh::

      y_in = y + α z,   y_tgt = y − z / α

  carry *independent* noises (covariance σ²(1+α²) and σ²(1+1/α²), cross term σ² − σ² = 0), so
  ``E‖f_θ(y_in) − y_tgt‖² = E‖f_θ(y_in) − x‖² + const``: the noisy image alone is an unbiased
  training signal (the network is told the level σ√(1+α²) it sees).
* **SD-CASSI** (:func:`ei_adapt`; Chen, Tachella & Davies, "Equivariant Imaging", ICCV 2021) —
  measurement consistency plus equivariance under transforms ``T_g`` the scenes are invariant to::

      x̂ = f_θ(y),   L = ‖(Φ x̂ − y)·2/C‖² + α ‖T_g x̂ − f_θ(Φ T_g x̂)‖²

  ``Φ`` alone cannot see its null space; re-measuring the transformed estimate with the *same* ``Φ``
  (same mask) shows the network other null spaces, which is what fills them. ``x̂`` is detached in
  the equivariance term by default (a fixed target; the EI paper's code lets the gradient flow through
  both uses of ``f_θ``, ``detach=False``, which lowered PSNR on our training cube). ``T_g``: a random
  circular shift along H and W, a random flip of either axis and, on square inputs, a 90° rotation.
  ``y·2/C`` is the operator's own normalisation (:meth:`~zoo.physics.SDCASSI.A_dagger`), which puts both
  terms in cube units. Each step works on a band of ``rows`` detector rows: SD-CASSI disperses along W
  only, so rows ``t:t+h`` of ``y`` are *exactly* the measurement of rows ``t:t+h`` of the cube under the
  same rows of the mask (no approximation, a quarter of the cost at 64 of 256 rows).

The caller's network is never modified. The adapted copy is in eval mode without gradients;
``copy.target_adaptation`` records the settings and the loss at the first and last step.

Example:
    >>> import torch, zoo
    >>> from zoo.training.target_adaptive import wald_adapt
    >>> net = zoo.create("ssopga-pansharpen-wv", stages=2, widths=(8, 16))
    >>> inputs = net.measure(torch.rand(1, 8, 128, 128))
    >>> adapted = wald_adapt(net, inputs["ms"], inputs["pan"], steps=2)
    >>> tuple(adapted(**inputs).shape), adapted is net
    ((1, 8, 128, 128), False)
"""

from __future__ import annotations

import copy
import math
from typing import Any, Callable

import torch
import torch.nn as nn

from zoo.data.base import d4
from zoo.physics.flash import FlashDenoising
from zoo.physics.cassi import SDCASSI
from zoo.physics.pansharpen import INTERP_MIN, Pansharpening

__all__ = ["wald_adapt", "r2r_adapt", "ei_adapt", "target_adapt", "recorrupted_adapt", "DEFAULTS"]

# per task: steps, lr and the method's own knobs (zoo.tasks records them beside the bench's +TA<steps> sets)
DEFAULTS: dict[str, dict[str, Any]] = {
    "pansharpen": {"steps": 200, "lr": 1e-4, "crop": 128},
    "flash": {"steps": 60, "lr": 1e-4, "alpha": 0.5, "crop": 96, "batch": 8},
    # lr and steps chosen on the training cube only (experiments/studies/cassi_ta.py → results/cassi/ta): 40 steps at
    # 1e-5 gave +1.45 dB there (mean of both networks; 3e-5 tied); 1e-4 diverged within a few steps, and not
    # detaching x̂ (or alpha = 0) lowered PSNR
    "cassi": {"steps": 40, "lr": 1e-5, "alpha": 1.0, "rows": 64, "detach": True},
}


def _check(steps: int, lr: float) -> None:
    if steps < 0 or not math.isfinite(lr) or lr <= 0:
        raise ValueError(f"steps must be >= 0 and lr > 0, got steps={steps}, lr={lr}")


def _fit(net: nn.Module, step_loss: Callable[[nn.Module, int, torch.Generator], torch.Tensor],
         steps: int, lr: float, seed: int, record: dict[str, Any],
         on_step: Callable[[int, nn.Module], None] | None = None) -> nn.Module:
    """Adam on a copy of ``net``; ``step_loss(copy, step, generator)`` is the loss of one step.

    ``on_step(done, copy)`` (learning curves) runs after every step, without gradients.
    """
    adapted = copy.deepcopy(net).float().train()
    adapted.requires_grad_(True)
    g = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(adapted.parameters(), lr=lr)
    first = last = float("nan")
    with torch.enable_grad():
        for i in range(steps):
            loss = step_loss(adapted, i, g)
            if not torch.isfinite(loss):
                raise RuntimeError(f"target adaptation diverged (loss {float(loss)} at step {i + 1}); lower lr (now {lr})")
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            last = float(loss.detach())
            first = last if i == 0 else first
            if on_step is not None:
                with torch.no_grad():
                    on_step(i + 1, adapted)
                adapted.train()  # on_step may evaluate the copy
    adapted.eval().requires_grad_(False)
    adapted.target_adaptation = {**record, "steps": steps, "lr": lr, "seed": seed, "loss_first": first, "loss_last": last}
    return adapted


def _supervised(batch_fn: Callable[[int, torch.Generator], tuple[dict, torch.Tensor, torch.Tensor | None]],
                loss_fn: Callable[[torch.Tensor, torch.Tensor, torch.Tensor | None], torch.Tensor]
                ) -> Callable[[nn.Module, int, torch.Generator], torch.Tensor]:
    """One step's loss from ``batch_fn(step, generator)`` → (inputs, target, weight) and ``loss_fn``."""
    def step_loss(net: nn.Module, i: int, g: torch.Generator) -> torch.Tensor:
        inputs, target, weight = batch_fn(i, g)
        return loss_fn(net(**inputs), target, weight)

    return step_loss


def wald_adapt(net: nn.Module, ms: torch.Tensor, pan: torch.Tensor, ms_mask: torch.Tensor | None = None,
                 steps: int = DEFAULTS["pansharpen"]["steps"], lr: float = DEFAULTS["pansharpen"]["lr"],
                 crop: int = DEFAULTS["pansharpen"]["crop"], seed: int = 0) -> nn.Module:
    """Return a copy of the pansharpening ``net`` fine-tuned on the input pair's reduced version.

    Args:
        net: a pansharpening network with ``reduce(ms, pan)`` (e.g. ``zoo.load("ssopga-pansharpen-wv")``).
        ms, pan: the pair to fuse, (N, C, h, w) and (N, 1, r·h, r·w), non-negative.
        ms_mask: optional (N, C) band-availability mask (1 = present); missing bands leave the loss.
        steps, lr: Adam steps and learning rate (0 steps returns an unchanged copy).
        crop: MS-pixel size of the random crops once the image is larger (bounds the cost per step).
        seed: seeds the crops, so the result is reproducible.
    """
    if not isinstance(net.physics, Pansharpening):
        raise TypeError(f"wald_adapt is for pansharpening networks (Pansharpening physics), got {type(net).__name__}")
    _check(steps, lr)
    pan = net.physics.check_inputs(ms, pan)
    r = net.physics.ratio
    h, w = ms.shape[-2:]
    hc, wc = h // r * r, w // r * r
    if min(hc, wc) < INTERP_MIN * r:
        raise ValueError(f"target-adaptive inference reduces the input by the ratio {r} once more to train on it: the MS "
                         f"must be at least {INTERP_MIN * r}x{INTERP_MIN * r} pixels, got {h}x{w}; fuse it without adaptation")
    mask = None
    if ms_mask is not None:
        if ms_mask.ndim != 2 or tuple(ms_mask.shape) != tuple(ms.shape[:2]):
            raise ValueError(f"target-adaptive inference takes a per-band ms_mask of shape {tuple(ms.shape[:2])}, "
                             f"got {tuple(ms_mask.shape)}")
        mask = ms_mask.float().to(ms.device)
    ms, pan = ms.float(), pan.float()
    side = max(crop, INTERP_MIN * r) // r * r
    c = min(side, hc), min(side, wc)

    def batch(i: int, g: torch.Generator) -> tuple[dict, torch.Tensor, torch.Tensor | None]:
        t = int(torch.randint(0, hc - c[0] + 1, (1,), generator=g)) // r * r
        left = int(torch.randint(0, wc - c[1] + 1, (1,), generator=g)) // r * r
        a = d4(ms[..., t : t + c[0], left : left + c[1]], i % 8)
        b = d4(pan[..., t * r : (t + c[0]) * r, left * r : (left + c[1]) * r], i % 8)
        a_lr, b_lr = net.reduce(a, b)
        return {"ms": a_lr.clamp_min(0), "pan": b_lr.clamp_min(0), "ms_mask": mask}, a, mask

    def loss(out: torch.Tensor, target: torch.Tensor, m: torch.Tensor | None) -> torch.Tensor:
        err = (out - target).abs()
        return err.mean() if m is None else (err * m[..., None, None]).sum() / (m.sum() * err[0, 0].numel())

    return _fit(net, _supervised(batch, loss), steps, lr, seed, {"task": "pansharpen", "crop": crop})


def r2r_adapt(net: nn.Module, noisy: torch.Tensor, flash: torch.Tensor, sigma: float | torch.Tensor,
                      steps: int = DEFAULTS["flash"]["steps"], lr: float = DEFAULTS["flash"]["lr"],
                      alpha: float = DEFAULTS["flash"]["alpha"], crop: int = DEFAULTS["flash"]["crop"],
                      batch: int = DEFAULTS["flash"]["batch"], seed: int = 0) -> nn.Module:
    """Return a copy of the flash-guided denoiser ``net`` fine-tuned on recorrupted pairs of ``noisy``.

    Args:
        net: a flash-guided denoiser ``net(noisy, flash, sigma)`` (e.g. ``zoo.load("ssopga-flash")``).
        noisy, flash: (N, C, H, W) noisy ambient image(s) and their flash guide(s).
        sigma: the Gaussian noise level (0–1 scale), one value or one per image; must be > 0.
        steps, lr: Adam steps and learning rate (0 steps returns an unchanged copy).
        alpha: recorruption strength α (the input sees σ√(1+α²), the target σ√(1+1/α²)).
        crop, batch: each step trains on ``batch`` random ``crop``² crops (smaller images: whole).
        seed: seeds crops and recorruption noise, so the result is reproducible.
    """
    if not isinstance(net.physics, FlashDenoising):
        raise TypeError(f"recorrupted_adapt is for flash-guided denoisers (FlashDenoising physics), got {type(net).__name__}")
    _check(steps, lr)
    if not alpha > 0:
        raise ValueError(f"alpha must be > 0, got {alpha}")
    net.physics.check_inputs(noisy, flash)
    n, _, h, w = noisy.shape
    sig = torch.as_tensor(sigma, dtype=torch.float32).reshape(-1).cpu()
    sig = sig.expand(n) if sig.numel() == 1 else sig
    if sig.numel() != n or not torch.isfinite(sig).all() or (sig <= 0).any():
        raise ValueError(f"sigma must be > 0 (the noise level of the input: one value or one per image), got {sigma!r}")
    noisy, flash = noisy.float(), flash.float()
    ch, cw = min(crop, h), min(crop, w)

    def batch_fn(i: int, g: torch.Generator) -> tuple[dict, torch.Tensor, None]:
        idx = torch.randint(0, n, (batch,), generator=g).tolist()
        tops = torch.randint(0, h - ch + 1, (batch,), generator=g).tolist()
        lefts = torch.randint(0, w - cw + 1, (batch,), generator=g).tolist()
        y = torch.stack([noisy[j, :, t : t + ch, l : l + cw] for j, t, l in zip(idx, tops, lefts)])
        f = torch.stack([flash[j, :, t : t + ch, l : l + cw] for j, t, l in zip(idx, tops, lefts)])
        s = sig[idx].to(y)
        z = torch.randn(y.shape, generator=g).to(y) * s[:, None, None, None]
        return {"noisy": y + alpha * z, "flash": f, "sigma": s * math.sqrt(1 + alpha**2)}, y - z / alpha, None

    return _fit(net, _supervised(batch_fn, lambda out, tgt, _: ((out - tgt) ** 2).mean()), steps, lr, seed,
                {"task": "flash", "alpha": alpha, "crop": crop, "batch": batch})


def ei_transform(x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    """One random ``T_g``: circular shift (H and W), flips, and a 90° rotation when ``x`` is square."""
    h, w = x.shape[-2:]
    dh, dw, fh, fw, r = (int(v) for v in torch.randint(0, 2**31 - 1, (5,), generator=g))
    x = torch.roll(x, (dh % h, dw % w), (-2, -1))
    x = x.flip(-2) if fh % 2 else x
    x = x.flip(-1) if fw % 2 else x
    return torch.rot90(x, r % 4, (-2, -1)) if h == w else x


def ei_adapt(net: nn.Module, y: torch.Tensor, mask: torch.Tensor | None = None,
             steps: int = DEFAULTS["cassi"]["steps"], lr: float = DEFAULTS["cassi"]["lr"],
             alpha: float = DEFAULTS["cassi"]["alpha"], rows: int = DEFAULTS["cassi"]["rows"],
             detach: bool = DEFAULTS["cassi"]["detach"], seed: int = 0,
             on_step: Callable[[int, nn.Module], None] | None = None) -> nn.Module:
    """Return a copy of the SD-CASSI ``net`` fine-tuned on its one measurement by Equivariant Imaging.

    Args:
        net: an SD-CASSI network ``net(y, mask)`` (e.g. ``zoo.load("lorun-cassi-9stg")``).
        y: the measurement ``(N, 1, H, W + s(C−1))`` in operator units (what ``net`` takes).
        mask: its coded aperture ``(H, W)`` or ``(N|1, 1, H, W)`` (default: the network's own).
        steps, lr: Adam steps and learning rate (0 steps returns an unchanged copy).
        alpha: weight ``α`` of the equivariance term (0: measurement consistency only).
        rows: detector rows per step (a random band of them; all rows when the image has fewer).
        detach: stop the gradient through ``x̂`` in the equivariance term (the EI paper's code does not: ``False``).
        seed: seeds the bands and transforms, so the result is reproducible.
        on_step: ``on_step(done, copy)`` after every step (learning curves), without gradients.
    """
    if not isinstance(net.physics, SDCASSI):
        raise TypeError(f"ei_adapt is for SD-CASSI networks (SDCASSI physics), got {type(net).__name__}")
    ph: SDCASSI = net.physics
    _check(steps, lr)
    if not (math.isfinite(alpha) and alpha >= 0) or int(rows) < 1:
        raise ValueError(f"alpha must be >= 0 and rows >= 1, got alpha={alpha}, rows={rows}")
    y = y.float()
    m = ph.resolve_mask(mask, y)
    ph.A_adjoint(y, mask=m)  # names a measurement/mask size mismatch now, not in the first step
    big_h = m.shape[-2]
    h = min(int(rows), big_h)
    scale = 2.0 / ph.bands

    def step_loss(f: nn.Module, i: int, g: torch.Generator) -> torch.Tensor:
        t = int(torch.randint(0, big_h - h + 1, (1,), generator=g))
        ys, ms = y[..., t : t + h, :], m[..., t : t + h, :]
        x_hat = f(ys, ms)
        mc = ((ph.A(x_hat, mask=ms) - ys) * scale).pow(2).mean()
        if alpha == 0:
            return mc
        x_t = ei_transform(x_hat.detach() if detach else x_hat, g)
        ei = (f(ph.A(x_t, mask=ms), ms) - x_t).pow(2).mean()
        return mc + alpha * ei

    return _fit(net, step_loss, steps, lr, seed, {"task": "cassi", "alpha": alpha, "rows": h, "detach": detach},
                on_step)


# the names of earlier releases
target_adapt = wald_adapt
recorrupted_adapt = r2r_adapt
