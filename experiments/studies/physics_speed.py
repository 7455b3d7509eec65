"""Faster physics, measured interleaved in one process (issue 20, item 4): each row times the old and the new
code path alternately (A B A B ...), 1 thread, and reports the median of the per-pair ratios old / new.

* the NaN/Inf scan once per network forward instead of in every operator call (``lorun-cs-r25``, 9 stages:
  ``check_finite`` on vs skipped inside the forward — the skip is :func:`zoo.physics.base.inputs_checked`);
* the SD-CASSI shift / shift-back as one skew instead of 28 slice copies (forward + backward);
* the pansharpening MTF blur evaluated at the kept pixels only (strided convolutions) for ``A_ms`` and
  its adjoint;
* the SD-CASSI ``A`` / ``Aᵀ`` with ``M ⊙ x`` written straight into the zero-padded buffer (only the padding
  zeroed) and ``shift_back`` as a strided view, against the ``F.pad`` skew that export still traces
  (operator alone, inference and fwd+bwd; and ``block9-cassi``'s whole forward).

    python experiments/studies/physics_speed.py                 # → results/deploy/physics_speed/summary.md
    python experiments/studies/physics_speed.py --only cassi-A  # rerun the rows of one group, keep the others
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path
from unittest import mock

import torch

import zoo
from zoo.physics import base as physics_base
from zoo.physics.cassi import SDCASSI
from zoo.physics.pansharpen import Pansharpening, blur, blur_adjoint
from zoo.utils.allocator import tune_allocator

OUT = Path("results/deploy/physics_speed")
torch.set_num_threads(1)


def _time(fn, reps: int) -> float:
    t = time.perf_counter()
    for _ in range(reps):
        fn()
    return (time.perf_counter() - t) / reps


def pair(old, new, reps: int = 3, pairs: int = 7) -> dict[str, float]:
    old(), new()  # warm-up
    ratios, to, tn = [], [], []
    for _ in range(pairs):
        a, b = _time(old, reps), _time(new, reps)
        ratios.append(a / b)
        to.append(a)
        tn.append(b)
    return {"old_ms": 1e3 * statistics.median(to), "new_ms": 1e3 * statistics.median(tn),
            "speedup": statistics.median(ratios), "speedup_min": min(ratios), "speedup_max": max(ratios)}


def shift_loop(x: torch.Tensor, s: int) -> torch.Tensor:  # the previous SDCASSI.shift
    n, c, h, w = x.shape
    out = x.new_zeros(n, c, h, w + s * (c - 1))
    for k in range(c):
        out[:, k, :, s * k: s * k + w] = x[:, k]
    return out


def shift_back_loop(y: torch.Tensor, c: int, s: int) -> torch.Tensor:  # the previous SDCASSI.shift_back
    w = y.shape[-1] - s * (c - 1)
    return torch.stack([y[:, 0, :, s * k: s * k + w] for k in range(c)], 1)


def cassi_operator_rows() -> dict[str, dict[str, float]]:
    """``cassi-A``: the eager buffer/strided-view path against the traceable ``F.pad`` path (the previous code),
    with the allocator tuned as the CLI does."""
    tune_allocator()  # as the CLI runs (process-wide, so these rows come last)
    rows = {}

    def padded(fn):  # fn with the shift on its F.pad path, as tracing takes it
        def run():
            with mock.patch("zoo.physics.cassi.tracing", return_value=True):
                return fn()
        return run

    for shape in ((1, 28, 256, 256), (4, 28, 64, 64)):
        ph = SDCASSI(torch.rand(shape[-2], shape[-1]))
        x = torch.rand(*shape)
        y = ph.A(x)
        xg = x.clone().requires_grad_(True)

        def infer():
            with torch.no_grad():
                return ph.A_adjoint((y - ph.A(x)) / 2)

        def train():
            ph.A_adjoint(y - ph.A(xg)).square().sum().backward()

        rows[f"SD-CASSI Aᵀ(y − A x), inference {tuple(shape)} (F.pad skew → buffer + strided view)"] = \
            pair(padded(infer), infer, reps=10)
        rows[f"SD-CASSI Aᵀ(y − A x), fwd+bwd {tuple(shape)} (F.pad skew → buffer + strided view)"] = \
            pair(padded(train), train, reps=5)
    net = zoo.load("block9-cassi").eval()
    y = net.physics.A(torch.rand(1, 28, 256, 256))

    def forward():
        with torch.no_grad():
            return net(y)

    rows["block9-cassi forward 256² (F.pad skew → buffer + strided view)"] = pair(padded(forward), forward, reps=1)
    return rows


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--only", choices=["cassi-A"], help="rerun one group's rows, keep the others from results.json")
    args = ap.parse_args(argv)
    if args.only:
        rows = json.loads((OUT / "results.json").read_text())
        rows.update(cassi_operator_rows())
        _write(rows)
        return
    rows = {}
    net = zoo.load("lorun-cs-r25")
    for size in (66, 256):
        inp = net.measure(torch.rand(1, 1, size, size))

        def checked_everywhere():  # the old behaviour: every operator call scans its input
            with torch.no_grad():
                return _forward_scanning(net, inp)

        def checked_once():
            with torch.no_grad():
                return net(**inp)

        rows[f"lorun-cs-r25 forward {size}² (NaN scan per operator call → once)"] = pair(checked_everywhere, checked_once)
        op = net.physics
        x = torch.rand(1, 1, size, size)
        y = op.A(x)

        def a_scan():
            return op.A_adjoint(op.A(x), img_size=(size, size))

        def a_noscan():
            with physics_base.inputs_checked():
                return op.A_adjoint(op.A(x), img_size=(size, size))

        rows[f"BlockCS A+Aᵀ {size}² (NaN scan → skipped)"] = pair(a_scan, a_noscan, reps=20)
    for shape in ((1, 28, 256, 256), (4, 28, 64, 64)):
        x = torch.rand(*shape, requires_grad=True)
        ph = SDCASSI(torch.rand(shape[-2], shape[-1]))

        def loop():
            shift_back_loop(shift_loop(x, 2).sum(1, keepdim=True), 28, 2).sum().backward()

        def skew():
            with mock.patch("zoo.physics.cassi.tracing", return_value=True):  # the skew as it was then
                ph.shift_back(ph.shift(x).sum(1, keepdim=True)).sum().backward()

        rows[f"SD-CASSI shift + shift-back, fwd+bwd {tuple(shape)} (28 slices → skew)"] = pair(loop, skew, reps=5)
    for size in (256, 1024):
        op = Pansharpening("WV3")
        x = torch.rand(1, 8, size, size)
        k = op.kernels(1, like=x)
        ms = op.A_ms(x)

        def full():
            return op.decimate(blur(x, k)), blur_adjoint(op.decimate_adjoint(ms, (size, size)), k)

        def strided():
            return op.A_ms(x), op.A_adjoint({"ms": ms, "pan": torch.zeros(1, 1, size, size)})

        rows[f"pansharpening A_ms + its adjoint, WV3 8 bands {size}² (blur all → kept pixels)"] = pair(full, strided)
    rows.update(cassi_operator_rows())
    _write(rows)


def _write(rows: dict[str, dict[str, float]]) -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "results.json").write_text(json.dumps(rows, indent=1) + "\n")
    lines = ["# Physics speed-ups, interleaved (old / new, median of 7 pairs, 1 thread)", "",
             "Command: `python experiments/studies/physics_speed.py`. Each pair times the old and the new path back to "
             "back in one process; the ratio is per pair, so machine load cancels.", "",
             "| step | old (ms) | new (ms) | old / new (min–max) |", "|---|---|---|---|"]
    for k, r in rows.items():
        lines.append(f"| {k} | {r['old_ms']:.1f} | {r['new_ms']:.1f} | **{r['speedup']:.2f}×** "
                     f"({r['speedup_min']:.2f}–{r['speedup_max']:.2f}) |")
    (OUT / "summary.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


def _forward_scanning(net, inp):
    """The forward with the NaN/Inf scan active in every operator call (the code before the scan moved)."""
    token = physics_base._CHECKED.set(False)
    try:
        return net.forward(**inp)  # forward itself, not __call__: no inputs_checked block around it
    finally:
        physics_base._CHECKED.reset(token)


if __name__ == "__main__":
    main()
