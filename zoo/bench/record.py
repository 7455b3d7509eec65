"""``zoo bench --record``: store a bench summary in the manifest and refresh the model cards."""

from __future__ import annotations

from zoo.hub.card import refresh_card
from zoo.hub.manifest import set_bench

__all__ = ["record_bench"]

_COSTS = ("gflops", "latency_s", "weights_mib", "peak_mem_mib", "train_patches_per_s", "cost_protocol")


def record_bench(summary: dict) -> list[str]:
    """Write each model's results of a :func:`~zoo.bench.run_bench` summary into its manifest record."""
    for n, m in summary["models"].items():
        set_bench(n, {"command": summary["command"], "protocol": summary["protocol"],
                      "environment": summary["environment"], "results": m["datasets"],
                      "costs": {k: m.get(k) for k in _COSTS}, "params": m["params"]})
        refresh_card(n)
    return list(summary["models"])
