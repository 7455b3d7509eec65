"""Cost measurements: parameters, FLOPs, latency, peak memory, training throughput.

Timings are medians of repeated runs in one process and are reported with the thread count;
compare models as ratios within one run (shared machines are noisy).
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import time

import torch

from zoo.api import load
from zoo.models.base import Restorer

__all__ = ["param_counts", "flops", "latency", "latency_interleaved", "peak_memory", "status_kib", "train_throughput"]


def param_counts(net: Restorer) -> dict[str, float]:
    """Total and split counts by :meth:`~zoo.models.base.Restorer.parameter_roles` (raw and /2**20, the papers' "M").

    "prior" = base + adapters (the denoisers); "physics" = learned operators; per-stage scalars
    (step sizes, strengths) are in the total only.
    """
    roles = net.parameter_roles()
    by = {r: 0 for r in ("physics", "prior_base", "prior_adapters", "stage")}
    for n, p in net.named_parameters():
        by[roles[n]] += p.numel()
    tot = sum(by.values())
    prior = by["prior_base"] + by["prior_adapters"]
    out = {"total": tot, "physics": by["physics"], "prior": prior, "prior_adapters": by["prior_adapters"],
           "prior_base": by["prior_base"]}
    out.update({f"{k}_M": v / 2**20 for k, v in list(out.items())})
    return out


def _example(net: Restorer, size: int) -> dict:
    """Network inputs for a random ``size²`` image (the net's own channels, mask, sensor)."""
    return net.example_inputs(size)


@torch.no_grad()
def flops(net: Restorer, size: int = 256) -> float:
    """Forward FLOPs (multiply-adds × 2) on a ``size²`` input, via torch's FlopCounterMode."""
    from torch.utils.flop_counter import FlopCounterMode

    inputs = _example(net, size)
    with FlopCounterMode(display=False) as fc:
        net(**inputs)
    return float(fc.get_total_flops())


@torch.no_grad()
def latency(net: Restorer, size: int = 256, repeats: int = 5) -> float:
    """Median forward seconds on one ``size²`` image (after one warm-up run)."""
    inputs = _example(net, size)
    net(**inputs)
    ts = []
    for _ in range(repeats):
        t = time.perf_counter()
        net(**inputs)
        ts.append(time.perf_counter() - t)
    return statistics.median(ts)


@torch.no_grad()
def latency_interleaved(nets: dict[str, Restorer], size: int = 256, rounds: int = 5) -> dict[str, dict[str, float]]:
    """Forward seconds of several networks timed in turn (A B C A B C ...) on one process: per network the
    median, and the median over rounds of its time / the first network's (the load of a shared machine
    cancels in the ratio, not in separate runs)."""
    inputs = {n: _example(net, size) for n, net in nets.items()}
    for n, net in nets.items():
        net(**inputs[n])  # warm-up
    ts: dict[str, list[float]] = {n: [] for n in nets}
    for _ in range(rounds):
        for n, net in nets.items():
            t = time.perf_counter()
            net(**inputs[n])
            ts[n].append(time.perf_counter() - t)
    first = next(iter(nets))
    return {n: {"latency_s": statistics.median(v),
                "vs_first": statistics.median(a / b for a, b in zip(v, ts[first]))} for n, v in ts.items()}


def status_kib(field: str) -> int | None:
    """A ``/proc/self/status`` field in KiB (``VmRSS``, ``VmHWM``); None where there is no /proc."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def _child(name: str, path: str | None, size: int) -> None:
    import resource

    torch.set_num_threads(int(sys.argv[-1]))
    net = load(name, path=path or None, verify=not path)  # a path = the user's own weights
    inputs = _example(net, size)
    try:
        # reset the resident-set high-water mark (Linux), so VmHWM is the forward pass's own peak
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        base = status_kib("VmRSS")
    except OSError:
        base = None
    if base is None:
        base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with torch.no_grad():
        net(**inputs)
    peak = status_kib("VmHWM") or resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"peak_extra_bytes": max(0, peak - base) * 1024}))


def peak_memory(name: str, path: str | None = None, size: int = 256) -> float:
    """Peak extra memory (bytes) of one forward pass of a pretrained model.

    CPU: measured in a fresh process as the rise of the resident-set high-water mark (reset
    just before the first pass, so the allocator holds no freed pages to reuse) over the
    resident set after loading. CUDA: use
    ``torch.cuda.max_memory_allocated`` around the pass instead.
    """
    code = (
        "import sys; from zoo.bench.profile import _child; "
        f"_child({name!r}, {path!r}, {size})"
    )
    out = subprocess.run([sys.executable, "-c", code, str(torch.get_num_threads())], capture_output=True, text=True, check=True)
    return float(json.loads(out.stdout.strip().splitlines()[-1])["peak_extra_bytes"])


def train_throughput(net: Restorer, patch: int = 99, batch: int = 8, steps: int = 3) -> float:
    """Training patches per second (forward, L1 loss, backward, AdamW step) with the net's trainable params."""
    net.train()
    params = [p for p in net.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=1e-4)
    x = torch.rand(batch, net.channels, patch, patch)

    def step() -> None:
        opt.zero_grad()
        out = net(**net.measure(x))  # a super-resolution model restores x cropped to a multiple of its scale
        loss = (out - x[..., : out.shape[-2], : out.shape[-1]]).abs().mean()
        loss.backward()
        opt.step()

    step()
    t = time.perf_counter()
    for _ in range(steps):
        step()
    net.eval()
    return batch * steps / (time.perf_counter() - t)
