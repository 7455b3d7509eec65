"""Selective-scan benchmark (issue 18): sequential loop vs mambapy's parallel scan vs ours (``chunked``).

The three compute the same S6 scan ``y = C·h + D u`` (module docstring of :mod:`zoo.nn.mamba`) from the same
float32 inputs (u, Δ, A, B, C, D), forward and forward+backward (grads of u, Δ, A, B, C, D), timed interleaved
in one process (A/B/C, A/B/C, ...; median of the repeats), at L = 4096 and 16384 (a 64² and 128² image),
d_inner 32 and 64, N = 16, batch 1, with ``torch.set_num_threads(threads)``.

* ``loop``: the sequential recurrence with the vectorised pre- and post-processing of mambapy's own
  ``selective_scan_seq`` (exp(ΔA) and ΔBu computed at once, then ``h = a_t h + b_t`` for t = 1..L over
  ``unbind`` slices, whose backward is linear in L) — the fast form of a loop, not the per-step reference
  of the tests;
* ``mambapy``: ``mambapy.pscan.pscan`` (Blelloch, in place, its own backward) inside the lines of
  ``mambapy.mamba.MambaBlock.selective_scan``;
* ``ours``: ``zoo.nn.mamba.selective_scan(..., backend="chunked")``;
* ``loop_ref`` (``--with-ref``): ``backend="loop"``, the per-step reference of the tests (exp(Δ_t A), Δ_t B_t u_t and
  C_t·h_t computed inside the loop, as a plain S6 loop is usually written).

Peak memory: the rise of the process's resident-set high-water mark over one call, measured in a fresh
subprocess per (method, shape, pass) (``/proc/self/clear_refs``), median of 3.

    python experiments/studies/bench_scan.py --threads 1 --with-ref --out results/scan   # writes scan_t1_ref.{json,md}
    python experiments/studies/bench_scan.py --threads 2 --with-ref --out results/scan   # scan_t2_ref.{json,md}
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

from zoo.nn.mamba import selective_scan

METHODS = ("loop", "mambapy", "ours")  # --with-ref adds "loop_ref" (the tests' per-step reference)


def inputs(L: int, d: int, n: int = 16, grad: bool = False, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    u = torch.randn(1, d, L, generator=g)
    delta = torch.nn.functional.softplus(torch.randn(1, d, L, generator=g) - 3)
    A = -torch.exp(torch.log(torch.arange(1, n + 1, dtype=torch.float32)).repeat(d, 1))
    B, C = torch.randn(1, n, L, generator=g), torch.randn(1, n, L, generator=g)
    D = torch.ones(d)
    ts = [u, delta, A, B, C, D]
    return [t.requires_grad_(grad) for t in ts]


def run_loop(u, delta, A, B, C, D):
    x, dl, Bl, Cl = u.transpose(1, 2), delta.transpose(1, 2), B.transpose(1, 2), C.transpose(1, 2)  # (1, L, ·)
    dA = torch.exp(dl.unsqueeze(-1) * A)
    BX = dl.unsqueeze(-1) * Bl.unsqueeze(2) * x.unsqueeze(-1)
    h = x.new_zeros(x.shape[0], A.shape[0], A.shape[1])
    hs = []
    for a_t, b_t in zip(dA.unbind(1), BX.unbind(1)):  # unbind: a linear-time backward (indexing would be quadratic)
        h = a_t * h + b_t
        hs.append(h)
    hs = torch.stack(hs, 1)
    return ((hs @ Cl.unsqueeze(-1)).squeeze(3) + D * x).transpose(1, 2)


def run_mambapy(u, delta, A, B, C, D):
    from mambapy.pscan import pscan

    x, dl, Bl, Cl = u.transpose(1, 2), delta.transpose(1, 2), B.transpose(1, 2), C.transpose(1, 2)
    deltaA = torch.exp(dl.unsqueeze(-1) * A)
    BX = dl.unsqueeze(-1) * Bl.unsqueeze(2) * x.unsqueeze(-1)
    hs = pscan(deltaA, BX)
    return ((hs @ Cl.unsqueeze(-1)).squeeze(3) + D * x).transpose(1, 2)


def run_ours(u, delta, A, B, C, D):
    return selective_scan(u, delta, A, B, C, D, backend="chunked")


def run_loop_ref(u, delta, A, B, C, D):
    return selective_scan(u, delta, A, B, C, D, backend="loop")


RUN = {"loop": run_loop, "mambapy": run_mambapy, "ours": run_ours, "loop_ref": run_loop_ref}


def once(method: str, ts, backward: bool) -> float:
    t0 = time.perf_counter()
    if backward:
        y = RUN[method](*ts)
        y.backward(torch.ones_like(y))
        for t in ts:
            t.grad = None
    else:
        with torch.no_grad():
            RUN[method](*ts)
    return time.perf_counter() - t0


def _kib(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(field)


def child(method: str, L: int, d: int, backward: int, threads: int) -> None:
    torch.set_num_threads(threads)
    ts = inputs(L, d, grad=bool(backward))
    once(method, inputs(64, d, grad=bool(backward)), bool(backward))  # import/allocator warm-up on a tiny case
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
    base = _kib("VmRSS")
    once(method, ts, bool(backward))
    print(json.dumps({"peak_mib": (_kib("VmHWM") - base) / 1024}))


def peak_mib(method: str, L: int, d: int, backward: bool, threads: int) -> float:
    vals = []
    for _ in range(3):
        out = subprocess.run([sys.executable, __file__, "--child", method, str(L), str(d), str(int(backward)), str(threads)],
                             capture_output=True, text=True, check=True)
        vals.append(json.loads(out.stdout.strip().splitlines()[-1])["peak_mib"])
    return statistics.median(vals)


def check_agree(L: int, d: int) -> float:
    ts = inputs(L, d)
    with torch.no_grad():
        ys = [RUN[m](*ts) for m in METHODS]
    return max(float((y - ys[0]).abs().max() / ys[0].abs().max()) for y in ys[1:])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--lengths", type=int, nargs="+", default=[4096, 16384])
    ap.add_argument("--dims", type=int, nargs="+", default=[32, 64])
    ap.add_argument("--loop-repeats", type=int, default=2, help="the loop is slow: fewer repeats")
    ap.add_argument("--no-memory", action="store_true")
    ap.add_argument("--out", default="results/scan")
    ap.add_argument("--note", default="")
    ap.add_argument("--child", nargs=5)
    ap.add_argument("--with-ref", action="store_true", help="also time the per-step reference loop")
    a = ap.parse_args()
    methods = METHODS + (("loop_ref",) if a.with_ref else ())
    if a.child:
        m, L, d, b, t = a.child
        return child(m, int(L), int(d), int(b), int(t))
    torch.set_num_threads(a.threads)
    load = Path("/proc/loadavg").read_text().split()[:3]
    rows = []
    for L in a.lengths:
        for d in a.dims:
            rel = check_agree(L, d)
            for backward in (False, True):
                ts = inputs(L, d, grad=backward)
                for m in methods:
                    once(m, ts, backward)  # warm-up
                times: dict[str, list[float]] = {m: [] for m in methods}
                for r in range(a.repeats):  # interleaved A/B/C
                    for m in methods:
                        if m.startswith("loop") and r >= a.loop_repeats:
                            continue
                        times[m].append(once(m, ts, backward))
                med = {m: statistics.median(v) for m, v in times.items()}
                mem = {m: None if a.no_memory else peak_mib(m, L, d, backward, a.threads) for m in methods}
                row = {"L": L, "d_inner": d, "N": 16, "pass": "fwd+bwd" if backward else "fwd", "threads": a.threads,
                       **{f"{m}_s": round(med[m], 5) for m in methods}, **{f"{m}_mib": mem[m] for m in methods},
                       "x_vs_loop": round(med["loop"] / med["ours"], 2), "x_vs_mambapy": round(med["mambapy"] / med["ours"], 3),
                       **({"x_vs_loop_ref": round(med["loop_ref"] / med["ours"], 2)} if "loop_ref" in med else {}),
                       "max_rel_diff_fwd": rel, "repeats": {m: len(v) for m, v in times.items()}}
                rows.append(row)
                print(json.dumps(row), flush=True)
    import mambapy  # noqa: F401

    env = {"torch": torch.__version__, "python": platform.python_version(), "machine": platform.machine(),
           "threads": a.threads, "loadavg_at_start": load, "loadavg_at_end": Path("/proc/loadavg").read_text().split()[:3],
           "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "mambapy": _version("mambapy"), "note": a.note}
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    tag = f"scan_t{a.threads}" + ("_ref" if a.with_ref else "")
    (out / f"{tag}.json").write_text(json.dumps({"environment": env, "rows": rows}, indent=1))
    md = [f"# Selective scan, {a.threads} thread(s) — {env['date']}", "",
          f"torch {env['torch']}, mambapy {env['mambapy']}, load average at start {' '.join(load)}. {a.note}", "",
          "| L | d_inner | pass | loop s | mambapy s | ours s | ours vs loop | ours vs mambapy | peak MiB loop / mambapy / ours |",
          "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        mem = " / ".join("-" if r[f"{m}_mib"] is None else f"{r[f'{m}_mib']:.0f}" for m in METHODS)
        ref = f" (per-step reference loop {r['loop_ref_s']:.3f} s: {r['x_vs_loop_ref']:.1f}×)" if "loop_ref_s" in r else ""
        md.append(f"| {r['L']} | {r['d_inner']} | {r['pass']} | {r['loop_s']:.3f} | {r['mambapy_s']:.4f} | {r['ours_s']:.4f} | "
                  f"{r['x_vs_loop']:.1f}×{ref} | {r['x_vs_mambapy']:.2f}× | {mem} |")
    (out / f"{tag}.md").write_text("\n".join(md) + "\n")


def _version(pkg: str) -> str:
    from importlib.metadata import version

    return version(pkg)


if __name__ == "__main__":
    main()
