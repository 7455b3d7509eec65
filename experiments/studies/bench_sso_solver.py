"""Classical SSO-PGA vs projected gradient (PGA): objective per iteration and step-size sensitivity.

Problems (procedural, seeded; no data files):

* NNLS: ``min ½‖A x − b‖², x ≥ 0`` with a 60×40 Gaussian ``A`` and a generic ``b`` (several
  constraints active); reference optimum from ``scipy.optimize.nnls``;
* non-negative ℓ1-NNLS: the same with ``+ 0.5·Σx``; reference from L-BFGS-B;
* non-negative TV deblurring of a 48×48 piecewise-constant card (Gaussian blur σ = 1.5, noise 0.01,
  Charbonnier TV λ = 0.01, ε = 0.05); reference = the best value any run reaches (+ a 20 000-step PGA run).

Outputs in ``results/solvers/sso/``: ``objective_vs_iteration.png``, ``step_sensitivity.png``,
``summary.md`` and ``summary.json``. Usage: ``python experiments/studies/bench_sso_solver.py [--iters 1500]``.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from zoo.solvers.sso import gaussian_blur_matrix, nnls_problem, pga, sso_pga, tv_deblur_problem


def problems() -> dict:
    from scipy.optimize import minimize, nnls

    g = torch.Generator().manual_seed(0)
    A = torch.randn(60, 40, generator=g, dtype=torch.float64)
    b = torch.randn(60, generator=g, dtype=torch.float64)
    out = {}
    p = nnls_problem(A, b)
    out["nnls"] = (p, float(p.f(torch.from_numpy(nnls(A.numpy(), b.numpy())[0]))), torch.ones(40, dtype=torch.float64))
    p1 = nnls_problem(A, b, l1=0.5)
    An, bn = A.numpy(), b.numpy()
    ref = minimize(lambda x: (0.5 * np.sum((An @ x - bn) ** 2) + 0.5 * x.sum(), An.T @ (An @ x - bn) + 0.5), np.ones(40),
                   jac=True, bounds=[(0, None)] * 40, method="L-BFGS-B", options={"ftol": 1e-16, "gtol": 1e-13, "maxiter": 20000})
    out["nnls_l1"] = (p1, float(ref.fun), torch.ones(40, dtype=torch.float64))
    x = torch.zeros(48, 48, dtype=torch.float64)
    x[6:26, 8:30], x[30:44, 4:20], x[20:40, 28:44] = 1.0, 0.5, 0.8
    k = gaussian_blur_matrix(9, 1.5)
    y = F.conv2d(F.conv2d(x[None, None], k.view(1, 1, 1, -1), padding=(0, 4)), k.view(1, 1, -1, 1), padding=(4, 0))[0, 0]
    y = y + 0.01 * torch.randn(y.shape, generator=g, dtype=torch.float64)
    pt = tv_deblur_problem(y, lam=0.01, eps=0.05)
    x0 = torch.full_like(y, 0.5)
    f_tv = pga(pt.grad, x0, 1.0 / pt.L, iters=20000).x
    out["tv_deblur"] = (pt, float(pt.f(f_tv)), x0)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--iters", type=int, default=1500)
    ap.add_argument("--out", default="results/solvers/sso")
    a = ap.parse_args()
    torch.set_num_threads(1)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    probs = problems()
    mults = [0.1, 0.3, 0.5, 1.0, 1.5, 1.9, 2.5, 4.0, 8.0, 16.0, 32.0, 100.0, 300.0]
    algos = {"PGA": lambda p, x0, s: pga(p.grad, x0, s, iters=a.iters, objective=p.f),
             "SSO-PGA α=0": lambda p, x0, s: sso_pga(p.grad, x0, s, 0.0, iters=a.iters, objective=p.f),
             "SSO-PGA α=0.5": lambda p, x0, s: sso_pga(p.grad, x0, s, 0.5, iters=a.iters, objective=p.f)}
    summary: dict = {"iters": a.iters, "step_multipliers_of_1_over_L": mults, "problems": {}}
    fig, axes = plt.subplots(1, len(probs), figsize=(5 * len(probs), 4))
    fig2, axes2 = plt.subplots(1, len(probs), figsize=(5 * len(probs), 4))
    for ax, ax2, (pname, (p, f_star, x0)) in zip(axes, axes2, probs.items()):
        rec: dict = {"f_star": f_star, "L": p.L, "description": p.description, "runs": {}}
        for alg, run in algos.items():
            gaps, mins = [], []
            for m in mults:
                r = run(p, x0, m / p.L)
                h = np.array(r.history, dtype=float)
                gap = (h - f_star) / max(abs(f_star), 1e-12)
                final = float(gap[-1]) if math.isfinite(gap[-1]) else float("inf")
                gaps.append(final)
                mins.append(r.min_value)
                if m in (1.0, 4.0) or (m == 1.9 and alg == "PGA"):
                    ax.semilogy(np.maximum(np.abs(gap), 1e-16), label=f"{alg}, η={m:g}/L")
            ok = [m for m, gp in zip(mults, gaps) if gp < 1e-6]
            rec["runs"][alg] = {"final_rel_gap": gaps, "min_iterate": mins,
                                "steps_converged_1e-6": ok}
            ax2.loglog(mults, np.clip(np.nan_to_num(np.abs(gaps), nan=1e3, posinf=1e3), 1e-16, 1e3), "o-", label=alg)
        ax.set(title=f"{pname}: relative objective gap", xlabel="iteration", ylabel="(f − f*)/|f*|")
        ax.set_ylim(1e-16, 1e3)
        ax.legend(fontsize=7)
        ax2.set(title=f"{pname}: gap after {a.iters} iterations", xlabel="step η·L", ylabel="(f − f*)/|f*| (10³ = diverged)")
        ax2.axhline(1e-6, color="grey", lw=0.5)
        ax2.legend(fontsize=7)
        summary["problems"][pname] = rec
    fig.tight_layout()
    fig.savefig(out / "objective_vs_iteration.png", dpi=110)
    fig2.tight_layout()
    fig2.savefig(out / "step_sensitivity.png", dpi=110)
    summary["wall_s"] = round(time.time() - t0, 1)
    (out / "summary.json").write_text(json.dumps(summary, indent=1))
    lines = ["# Classical SSO-PGA vs PGA", "", f"`python experiments/studies/bench_sso_solver.py --iters {a.iters}` "
             f"(1 CPU thread, {summary['wall_s']} s). Relative objective gap after {a.iters} iterations; "
             "'conv. steps' = the step multipliers η·L whose gap is < 1e-6.", ""]
    for pname, rec in summary["problems"].items():
        lines += [f"## {pname} ({rec['description']})", "",
                  "| algorithm | " + " | ".join(f"η={m:g}/L" for m in mults) + " | conv. steps | min iterate |",
                  "|---|" + "---|" * (len(mults) + 2)]
        for alg, r in rec["runs"].items():
            cells = ["div." if not math.isfinite(g) or g > 1e3 else f"{g:.1e}" for g in r["final_rel_gap"]]
            cv = r["steps_converged_1e-6"]
            rng = f"{min(cv):g}–{max(cv):g}" if cv else "none"
            mn = min(r["min_iterate"])
            lines.append(f"| {alg} | " + " | ".join(cells) + f" | {rng} | {mn:.1e} |")
        lines.append("")
    (out / "summary.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
