"""Classical reconstruction algorithms (no learning): the floors and the non-learned solvers.

* :func:`gap_tv` — GAP-TV for SD-CASSI (Yuan 2016); :func:`pnp_gap` — GAP with a plug-in denoiser
  (Yuan et al. 2020), :func:`sstv_denoise` a spatial–spectral TV one;
* :func:`sso_pga` / :func:`pga` — multiplicative sliding-sigmoid and additive projected gradient
  solvers of ``min f(x), x ≥ 0`` with test problems (:func:`nnls_problem`, :func:`tv_deblur_problem`);
  :func:`sso` is the sliding-sigmoid operator itself (also the SSO-PGA networks' step);
* :func:`guided_filter` — He et al.'s guided filter (the flash/no-flash floor);
* :func:`lime`, :func:`gamma_correction`, :func:`histogram_equalisation` — low-light floors (LIME: Guo et al. 2017).

Like deepinv's ``optim`` beside its ``physics``: operators live in :mod:`zoo.physics`, algorithms here.
"""

from zoo.solvers.gap_tv import gap_tv, tv_denoise
from zoo.solvers.guided_filter import guided_filter
from zoo.solvers.lime import gamma_correction, histogram_equalisation, lime
from zoo.solvers.pnp_gap import geometric_schedule, pnp_gap, sstv_denoise
from zoo.solvers.sso import nnls_problem, pga, sso, sso_pga, sso_slope, tv_deblur_problem

__all__ = ["gap_tv", "tv_denoise", "pnp_gap", "sstv_denoise", "geometric_schedule", "guided_filter", "sso", "sso_slope", "sso_pga", "pga", "nnls_problem",
           "tv_deblur_problem", "lime", "gamma_correction", "histogram_equalisation"]
