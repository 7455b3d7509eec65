"""Target-adaptive pansharpening: quality vs number of adaptation steps, from `zoo bench --adapt`.

    python experiments/studies/ta_curve.py                     # 50 100 200 400 steps, the three checkpoints
    python experiments/studies/ta_curve.py --steps 25 50 --models ssopga-pansharpen-4band

Runs ``zoo bench MODELS --adapt N --no-costs --no-grids --out results/pansharpen/ta/N`` per N (the
plain rows come from the first run) and gathers SAM / ERGAS / Q2n / PSNR (HQNR at full resolution)
into ``results/pansharpen/ta/curve.md``: one table per test set, one row per model and step count.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
MODELS = ["ssopga-pansharpen-wv", "pga-pansharpen-wv", "ssopga-pansharpen-4band"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--steps", type=int, nargs="+", default=[50, 100, 200, 400])
    ap.add_argument("--models", nargs="+", default=MODELS)
    ap.add_argument("--out", default="results/pansharpen/ta", help="a relative path is taken from the repository root")
    ap.add_argument("--data-root")
    ap.add_argument("--reuse", action="store_true", help="keep a step count's earlier run when its summary exists")
    a = ap.parse_args()
    runs = {}
    for n in a.steps:
        # zoo bench runs from the repository root, so the recorded command holds a relative --out
        out = Path(a.out) / str(n)
        cmd = ["zoo", "bench", *a.models, "--adapt", str(n), "--no-costs", "--no-grids", "--out", str(out), "--overwrite"]
        if a.data_root:
            cmd += ["--data-root", str(Path(a.data_root).resolve())]  # the bench runs from the root
        have = ROOT / out / "summary.json"
        if not (a.reuse and have.is_file() and set(a.models) <= set(json.loads(have.read_text())["models"])):
            print("$", " ".join(cmd), flush=True)
            subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, cwd=ROOT)
        runs[n] = json.loads(have.read_text())
    first = runs[a.steps[0]]
    lines = ["# Target-adaptive pansharpening: quality vs adaptation steps", "",
             f"Command: `python experiments/studies/ta_curve.py --steps {' '.join(map(str, a.steps))} --models {' '.join(a.models)}` "
             f"(one `zoo bench --adapt N` per N; {first['environment']['date']}; CPU threads: {first['environment']['threads']})  ",
             "Adaptation: " + "; ".join(f"{k}: {v}" for k, v in first["target_adaptive"].items() if k != "steps"), ""]
    dsets = sorted({d for m in first["models"].values() for d in m["datasets"] if "+TA" not in d})
    for d in dsets:
        ref = "hqnr" not in next(m["datasets"][d] for m in first["models"].values() if d in m["datasets"])
        keys = ["sam", "ergas", "q2n", "psnr"] if ref else ["d_lambda", "d_s", "hqnr"]
        lines += [f"## {d}", "", "| model | steps | " + " | ".join(keys) + " |", "|---|---|" + "---|" * len(keys)]
        for name in a.models:
            if d not in first["models"][name]["datasets"]:
                continue
            rows = [(0, first["models"][name]["datasets"][d])]
            rows += [(n, runs[n]["models"][name]["datasets"][f"{d}+TA{n}"]) for n in a.steps]
            for n, r in rows:
                lines.append(f"| {name} | {n} | " + " | ".join(f"{r[k]:.4f}" if k in ("q2n", "d_lambda", "d_s", "hqnr")
                                                             else f"{r[k]:.2f}" for k in keys) + " |")
        lines.append("")
    dst = ROOT / "results/pansharpen/ta/curve.md"
    dst.write_text("\n".join(lines))
    print(dst.read_text())


if __name__ == "__main__":
    sys.exit(main())
