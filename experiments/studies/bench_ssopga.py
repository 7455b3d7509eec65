"""SSO-PGA pansharpening study: missing-band robustness and the untrained (classical) unfolding.

Complements ``zoo bench`` (which already scores reduced- and full-resolution pansharpening and
flash denoising, with HQNR, global-MSE PSNR and the smallest iterate) with: the missing-band
robustness of SSO-PGA vs its PGA twin, rows for the non-learned unfolded iteration, run-folder
weights before export, and costs (params, GFLOPs, latency, peak memory; 1 CPU thread).

Models are given as ``NAME`` (a zoo checkpoint) or ``NAME=PATH`` (a run's export folder with
``model.safetensors`` + ``config.json``)::

    python experiments/studies/bench_ssopga.py --task pansharpen ssopga-pansharpen-wv=runs/ssopga-pansharpen-wv/export \\
        pga-pansharpen-wv=runs/pga-pansharpen-wv/export ssopga-pansharpen-4band=runs/ssopga-pansharpen-4band/export

``classical:NAME:STEP`` adds the untrained network (the non-learned unfolded SSO-PGA/PGA iteration).
``--adapt STEPS`` adds target-adaptive rows to the missing-band study (a copy fitted to each masked input;
for an untrained network, a zero-shot one fitted to the input alone).
Writes ``results/pansharpen/missing_bands/summary.{md,json}`` and ``per_image.csv``.
"""

from __future__ import annotations

import argparse
import csv
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

import zoo


def load_net(spec: str) -> tuple[str, torch.nn.Module, str]:
    if spec.startswith("classical:"):
        # "classical:NAME:STEP": the untrained network = the non-learned unfolded iteration (zero
        # prox tails: every prox is softplus_β ≈ identity), gradient scale STEP at every stage
        _, name, step = spec.split(":")
        # seeded: the prox bodies' random weights are what a zero-shot (+TA) row starts from
        torch.manual_seed(0)
        net = zoo.create(name, step_init=float(step))
        return f"{name} classical (no learning, η={step})", net.eval(), "untrained"
    name, _, path = spec.partition("=")
    if path:
        p = Path(path)
        cfg = json.loads((p / "config.json").read_text())
        if cfg["model"] != name:
            raise ValueError(f"{p} holds {cfg['model']}, not {name}")
        from safetensors.torch import load_file

        net = zoo.create(name, **cfg["config"])
        net.load_state_dict(load_file(str(p / "model.safetensors")), strict=True)
        return name, net.eval(), str(p)
    return name, zoo.load(name).eval(), "checkpoint"


def costs(name: str, net: torch.nn.Module, src: str, size: int = 256) -> dict:
    from zoo.bench import profile

    out = {"params": sum(p.numel() for p in net.parameters())}
    out["params_M"] = out["params"] / 2**20
    out["gflops"] = profile.flops(net, size) / 2**30
    out["latency_s"] = profile.latency(net, size, repeats=3)
    # extra resident memory of one forward in a fresh process, sampled every millisecond (the
    # ru_maxrss high-water mark is already set by the imports, so it cannot see small forwards)
    code = ("import json,os,sys,threading,time,torch;torch.set_num_threads(1);sys.path.insert(0,'experiments/studies');"
            "from bench_ssopga import load_net;n=load_net(sys.argv[1])[1];i=n.example_inputs(%d)\n"
            "pg=os.sysconf('SC_PAGE_SIZE');rss=lambda:int(open('/proc/self/statm').read().split()[1])*pg\n"
            "b=rss();pk=[b];run=[1]\n"
            "def samp():\n while run[0]: pk[0]=max(pk[0],rss());time.sleep(0.001)\n"
            "t=threading.Thread(target=samp);t.start()\nwith torch.no_grad(): n(**i)\n"
            "run[0]=0;t.join();print(json.dumps((pk[0]-b)/2**20))" % size)
    if src == "untrained":
        out["peak_mem_mib"] = None
        out["cost_protocol"] = "-"
        return out
    spec = name if src == "checkpoint" else f"{name}={src}"
    try:
        r = subprocess.run([sys.executable, "-c", code, spec], capture_output=True, text=True, check=True)
        out["peak_mem_mib"] = float(r.stdout.strip().splitlines()[-1])
    except Exception as e:  # noqa: BLE001 (a failed measurement must not sink the table)
        out["peak_mem_mib"] = None
        out["peak_mem_error"] = str(e)[:200]
    out["cost_protocol"] = f"{size}x{size} PAN-scale / image input, 1 CPU thread, median of 3 runs; peak = extra RSS of one forward (sampled every 1 ms)"
    return out


def _fmt(v, nd=3) -> str:
    return "–" if v is None else (f"{v:.{nd}f}" if isinstance(v, float) else str(v))


# -- pansharpening ------------------------------------------------------------------------------------


def _fuse(net, ms, pan, mask):
    with torch.no_grad():
        return net(ms=ms, pan=pan, ms_mask=mask)


def _missing_study(fuse, x, fracs, trials: int) -> dict:
    """Mean metrics over seeded band masks per missing rate; ``fuse(mask)`` → (output, smallest iterate)."""
    from zoo.metrics.pansharpen import reduced_metrics
    from zoo.physics.pansharpen import random_band_mask

    out = {}
    for frac in fracs:
        acc = []
        for trial in range(trials if frac else 1):
            y, lowest = fuse(random_band_mask(1, x.shape[1], frac, torch.Generator().manual_seed(trial)))
            acc.append(reduced_metrics(y, x) | {"min_iterate": lowest})
        out[f"{int(frac * 100)}%"] = {k: statistics.mean(a[k] for a in acc) for k in acc[0]} | {"trials": len(acc)}
    return out


def bench_pansharpen(nets, root, out: Path, full: bool, missing_trials: int, adapt: int = 0) -> dict:
    from zoo.tasks import get_task
    from zoo.data.pansharpen import read_pansharpen, resolve_pansharpen_file
    from zoo.metrics.pansharpen import hqnr, reduced_metrics
    from zoo.physics.pansharpen import sensor_gains
    from zoo.training.target_adaptive import wald_adapt

    proto = get_task("pansharpen")

    summary: dict = {"protocol": proto.description, "reduced": {}, "full": {}, "missing": {}, "costs": {}, "published": {}}
    rows = []
    untrained = {n for n, _, src in nets if src == "untrained"}
    for ds, rel in proto.datasets.items():
        s = read_pansharpen(resolve_pansharpen_file(rel, root))[0]
        if "gt" not in s:  # full-resolution files: HQNR below
            continue
        x, ms, pan = s["gt"][None], s["ms"][None], s["pan"][None]
        users = [(n, net) for n, net, _ in nets if net.channels == ms.shape[1]]
        if not users:
            continue
        summary["published"][ds] = proto.published_rows(ds, "x4")
        with torch.no_grad():
            exp = users[0][1].physics.A_dagger({"ms": ms, "pan": pan})
        res = {"EXP (23-tap interpolation)": reduced_metrics(exp, x)}
        for n, net in users:
            t = time.perf_counter()
            with torch.no_grad():
                y = net(ms=ms, pan=pan)
            m = reduced_metrics(y, x)
            m["min_iterate"] = net.last_min_iterate
            m["seconds"] = time.perf_counter() - t
            res[n] = m
            rows.append({"dataset": ds, "model": n, **m})
            # missing bands: the same masks for every model
            summary["missing"].setdefault(ds, {})[n] = _missing_study(
                lambda m, net=net, ms=ms, pan=pan: (_fuse(net, ms, pan, m), net.last_min_iterate), x, (0.25, 0.5),
                missing_trials)
            if adapt:
                # each image fused by a copy adapted to its own (masked) inputs; an untrained
                # network so adapted is a zero-shot one, fitted to the input alone
                def adapted(m, net=net, ms=ms, pan=pan):
                    ta = wald_adapt(net, ms, pan, ms_mask=m, steps=adapt)
                    return _fuse(ta, ms, pan, m), ta.last_min_iterate

                ta_name = (n.replace("classical (no learning", f"zero-shot (untrained + TA{adapt} on the input only")
                           if n in untrained else f"{n} +TA{adapt}")
                summary["missing"][ds][ta_name] = _missing_study(adapted, x, (0.0, 0.25, 0.5), missing_trials)
        summary["reduced"][ds] = res
    if full:
        for fname in ("imgWV2.mat", "WV3_example.mat", "imgGE1.mat"):
            try:
                s = read_pansharpen(resolve_pansharpen_file(f"pansharpen/full/{fname}", root))[0]
            except Exception:  # noqa: BLE001
                continue
            ms, pan = s["ms"][None], s["pan"][None]
            users = [(n, net) for n, net, _ in nets if net.channels == ms.shape[1]]
            if not users:
                continue
            net0 = users[0][1]
            pg = sensor_gains(net0.physics.sensor)[1]
            res = {}
            with torch.no_grad():
                exp = net0.physics.A_dagger({"ms": ms, "pan": pan})
            res["EXP (23-tap interpolation)"] = {k: float(v[0]) for k, v in hqnr(exp, ms, pan, net0.physics, pg).items()}
            for n, net in users:
                with torch.no_grad():
                    y = net(ms=ms, pan=pan)
                res[n] = {k: float(v[0]) for k, v in hqnr(y, ms, pan, net.physics, pg).items()} | {"min_iterate": net.last_min_iterate}
            summary["full"][fname] = res
    for n, net, src in nets:
        summary["costs"][n] = costs(n, net, src)
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "per_image.csv", "w", newline="") as f:
        keys = sorted({k for r in rows for k in r}, key=lambda k: (k not in ("dataset", "model"), k))
        w = csv.DictWriter(f, fieldnames=keys)
        w.writeheader()
        w.writerows(rows)
    lines = ["# SSO-PGA pansharpening benchmark", "", f"Command: `{' '.join(sys.argv)}`", "",
             "Protocol: " + "; ".join(f"{k}: {v}" for k, v in proto.description.items()), ""]
    for ds, res in summary["reduced"].items():
        lines += [f"## {ds} (reduced resolution, border 0)", "", "| method | SAM ↓ | ERGAS ↓ | Q2n ↑ | SCC ↑ | PSNR ↑ | min iterate | source |",
                  "|---|---|---|---|---|---|---|---|"]
        for n, m in res.items():
            lines.append(f"| {'**' + n + '**' if n in dict((a, 1) for a, _, _ in nets) else n} | {_fmt(m['sam'])} | {_fmt(m['ergas'])} | "
                         f"{_fmt(m['q2n'], 4)} | {_fmt(m['scc'], 4)} | {_fmt(m['psnr'], 2)} | {_fmt(m.get('min_iterate'), 4)} | this run |")
        for r in summary["published"].get(ds, []):
            lines.append(f"| {r['method']} | {_fmt(r.get('sam'))} | {_fmt(r.get('ergas'))} | {_fmt(r.get('q2n'), 4)} | – | – | – | published |")
        lines.append("")
    for ds, per in summary["missing"].items():
        lines += [f"## {ds} with missing MS bands (mean of {missing_trials} seeded masks per rate)", "",
                  "| model | missing | SAM | ERGAS | Q2n | PSNR | min iterate |", "|---|---|---|---|---|---|---|"]
        for n, d in per.items():
            if "0%" not in d:
                d = {"0%": summary["reduced"][ds][n], **d}
            for frac, m in d.items():
                lines.append(f"| {n} | {frac} | {_fmt(m['sam'])} | {_fmt(m['ergas'])} | {_fmt(m['q2n'], 4)} | {_fmt(m['psnr'], 2)} | {_fmt(m['min_iterate'], 4)} |")
        lines.append("")
    for fname, res in summary["full"].items():
        lines += [f"## {fname} (full resolution, no reference)", "", "| method | D_λ (Khan) ↓ | D_s ↓ | HQNR ↑ |", "|---|---|---|---|"]
        for n, m in res.items():
            lines.append(f"| {n} | {_fmt(m['d_lambda'], 4)} | {_fmt(m['d_s'], 4)} | {_fmt(m['hqnr'], 4)} |")
        lines.append("")
    lines += _cost_lines(summary["costs"])
    (out / "summary.md").write_text("\n".join(lines) + "\n")
    (out / "summary.json").write_text(json.dumps(summary, indent=1, default=float))
    return summary


def _cost_lines(c: dict) -> list[str]:
    lines = ["## Costs", "", "| model | params | params (M=2²⁰) | GFLOPs (2³⁰) | latency (s) | peak mem (MiB) |", "|---|---|---|---|---|---|"]
    for n, m in c.items():
        lines.append(f"| {n} | {m['params']:,} | {m['params_M']:.3f} | {_fmt(m['gflops'], 2)} | {_fmt(m['latency_s'], 3)} | {_fmt(m.get('peak_mem_mib'), 1)} |")
    if c:
        lines += ["", f"Cost protocol: {next(iter(c.values()))['cost_protocol']}", ""]
    return lines


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("models", nargs="+", help="NAME or NAME=EXPORT_DIR")
    ap.add_argument("--task", choices=["pansharpen"], default="pansharpen")
    ap.add_argument("--data-root")
    ap.add_argument("--out")
    ap.add_argument("--no-full", action="store_true", help="skip full-resolution HQNR")
    ap.add_argument("--missing-trials", type=int, default=3)
    ap.add_argument("--adapt", type=int, default=0, metavar="STEPS",
                    help="add target-adaptive rows (STEPS per image and mask) to the missing-band study")
    a = ap.parse_args()
    torch.set_num_threads(1)
    nets = [load_net(s) for s in a.models]
    out = Path(a.out or f"results/{a.task}/missing_bands")
    bench_pansharpen(nets, a.data_root, out, not a.no_full, a.missing_trials, a.adapt)
    print((out / "summary.md").read_text())


if __name__ == "__main__":
    main()
