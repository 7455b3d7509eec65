"""LLEMamba: a Retinex deep-unfolding network with Mamba priors for low-light enhancement (arXiv 2406.01028).

Model ([2nd] METHODS.md §3): a low-light sRGB image ``I`` (N, 3, H, W) is ``I = R ⊙ L`` with the
reflectance ``R`` (3 channels) and a grey illumination ``L`` (1 channel, broadcast over RGB)::

    min_{R,L} ‖R ⊙ L − I‖² + λ f(R) + γ g(L)      split with P = R, Q = L (ADMM, penalty μ_k)

K unfolded stages, k = 1..K, each exactly these updates (element-wise; Σ_c over R, G, B)::

    R ← (2 I ⊙ L + μ_k P − Y1) / (2 L ⊙ L + μ_k)                  closed form of the R sub-problem
    L ← (2 Σ_c I_c R_c + μ_k Q − Y2) / (2 Σ_c R_c² + μ_k)          closed form of the L sub-problem
    P ← Prox_f(R + Y1/μ_k ; L)     IFBMamba reflectance prior, guided by the illumination L
    Q ← Prox_g(L + Y2/μ_k ; R)     light CNN illumination prior (output ≥ ε)
    Y1 ← Y1 + μ_k (R − P),  Y2 ← Y2 + μ_k (L − Q)                  multiplier updates

with a learnable ``μ_k = softplus(m_k)`` per stage. Initialisation (Retinex/LIME):
``L_0 = Q_0 = max_c I_c`` (floored at ε = 1/255), ``R_0 = P_0 = I / L_0`` ∈ [0, 1], ``Y1 = Y2 = 0``.

Relit output ``Î = P_K ⊙ φ(Q_K) ⊙ c`` — [ours]: the prior outputs ``P_K, Q_K`` (equal to R, L at an
ADMM fixed point; denoised after K stages) and a learned illumination adjustment::

    φ(L) = ρ(L) · exp(0.5 tanh(h([L, ρ(L)])))     ρ(L) = g · L^γ, a small CNN h refines it locally
    log g = log 0.45 − ⟨log L_0⟩ + a_1(s),  log γ = a_2(s),  log c = a_{3..5}(s)

``s`` are *global* statistics of the input (:func:`~zoo.physics.lowlight.global_stats`: mean and
standard deviation of ``log L_0``, the log-ratios of the R, G, B means to their average, and six
quantiles of ``log L_0`` about its mean — the brightness histogram that auto-exposure reads — when
``exposure_quantiles`` is set; the published network reads the first five) and ``a`` a small MLP
(zero-initialised: the network starts from the geometric-mean auto-exposure ``L · 0.45 / exp⟨log L⟩``);
``c`` corrects a colour cast. Tiled inference computes ``s`` once on the whole image and passes it to every tile
(``stats=``), so exposure and colour are the same in every tile (no seams in brightness).

IFBMamba (:class:`zoo.nn.mamba.IFBMamba`): LayerNorm → in-projection → depthwise 3×3 → SiLU →
selective scans in both raster directions whose Δ is modulated by illumination features
``f_L = Conv([L, log L])`` → LayerNorm → SiLU gate → out-projection, then a small FFN.
``Prox_f(z; L) = z + Conv3×3(IFBMamba(Conv3×3([z, L]), f_L))``; ``Prox_g(z; R) = max(ε, z +
CNN([z, R]))`` (3 conv layers). The scan runs in float32 under autocast.

Example:
    >>> import torch, zoo
    >>> net = zoo.create("llemamba-lowlight", stages=1, dim=8, d_inner=8, d_state=4)
    >>> low = torch.rand(1, 3, 32, 32) * 0.2
    >>> tuple(net(low=low).shape)
    (1, 3, 32, 32)
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F

from zoo.models.base import Restorer
from zoo.nn.mamba import IFBMamba
from zoo.physics.lowlight import N_MOMENTS, N_STATS, LowLight, LowLightDegradation, global_stats
from zoo.registry import ModelEntry, register_model

__all__ = ["LLEMamba", "llemamba", "global_stats", "N_STATS"]

PAPER = "LLEMamba: low-light enhancement via relighting-guided Mamba with deep unfolding network, arXiv 2406.01028"
EPS = 1.0 / 255


def _inv_softplus(v: float) -> float:
    return math.log(math.expm1(v))


class ReflectancePrior(nn.Module):
    """``Prox_f(z; L) = z + Conv(IFBMamba(Conv([z, L]), f_L))``."""

    def __init__(self, dim: int, light: int, d_inner: int, d_state: int, backend: str) -> None:
        super().__init__()
        self.embed = nn.Conv2d(4, dim, 3, padding=1)
        self.light = nn.Sequential(nn.Conv2d(2, light, 3, padding=1), nn.GELU())
        self.block = IFBMamba(dim, guide=light, d_inner=d_inner, d_state=d_state, backend=backend)
        self.out = nn.Conv2d(dim, 3, 3, padding=1)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def forward(self, z: torch.Tensor, L: torch.Tensor) -> torch.Tensor:
        f_l = self.light(torch.cat([L, torch.log(L.clamp_min(EPS))], 1))
        return z + self.out(self.block(self.embed(torch.cat([z, L], 1)), f_l))


class IlluminationPrior(nn.Module):
    """``Prox_g(z; R) = max(ε, z + CNN([z, R]))``."""

    def __init__(self, width: int) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Conv2d(4, width, 3, padding=1), nn.GELU(), nn.Conv2d(width, width, 3, padding=1),
                                 nn.GELU(), nn.Conv2d(width, 1, 3, padding=1))
        nn.init.zeros_(self.net[-1].weight)
        nn.init.zeros_(self.net[-1].bias)

    def forward(self, z: torch.Tensor, R: torch.Tensor) -> torch.Tensor:
        return (z + self.net(torch.cat([z, R], 1))).clamp_min(EPS)


class Relight(nn.Module):
    """``φ(L) ⊙ c`` from the illumination and the global statistics (module docstring)."""

    def __init__(self, width: int = 8, hidden: int = 32, n_stats: int = N_STATS) -> None:
        super().__init__()
        self.n_stats = int(n_stats)  # the leading statistics it reads (N_MOMENTS: no histogram quantiles)
        self.mlp = nn.Sequential(nn.Linear(self.n_stats, hidden), nn.GELU(), nn.Linear(hidden, 5))
        nn.init.zeros_(self.mlp[-1].weight)
        nn.init.zeros_(self.mlp[-1].bias)
        self.refine = nn.Sequential(nn.Conv2d(2, width, 3, padding=1), nn.GELU(), nn.Conv2d(width, 1, 3, padding=1))
        nn.init.zeros_(self.refine[-1].weight)
        nn.init.zeros_(self.refine[-1].bias)

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):  # noqa: ANN001, D102
        # weights of a relighting that read fewer statistics (the moments only, llemamba-lowlight v1): the new
        # inputs get zero weights, so the loaded network computes exactly what it did (timm's checkpoint filter idea)
        key = prefix + "mlp.0.weight"
        w = state_dict.get(key)
        if w is not None and w.ndim == 2 and w.shape[1] < self.n_stats and w.shape[0] == self.mlp[0].out_features:
            state_dict[key] = torch.cat([w, w.new_zeros(w.shape[0], self.n_stats - w.shape[1])], 1)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def forward(self, L: torch.Tensor, s: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        a = self.mlp(s[:, : self.n_stats])
        log_g = (math.log(0.45) - s[:, 0] + a[:, 0])[:, None, None, None]
        gamma = torch.exp(a[:, 1])[:, None, None, None]
        rho = torch.exp(log_g + gamma * torch.log(L.clamp_min(EPS)))
        phi = rho * torch.exp(0.5 * torch.tanh(self.refine(torch.cat([L, rho], 1))))
        return phi, torch.exp(a[:, 2:5])[:, :, None, None]


class LLEMamba(Restorer):
    """K-stage ADMM-unfolded Retinex network (module docstring).

    Args:
        stages: K.
        dim: feature channels of the reflectance prior.
        d_inner, d_state: channels and state size of the IFBMamba scan.
        light: channels of the illumination features that modulate the scan's Δ.
        light_width: width of the illumination prior CNN.
        mu_init: initial μ_k.
        exposure_quantiles: the relighting MLP also reads the quantiles of ``log L_0`` (all
            :data:`~zoo.physics.lowlight.N_STATS` statistics; False, the published network: the first five
            only). With them a fine-tune gained 3.5 dB on synthetic validation but no longer brightens real
            night photos with light sources (experiments/lineage/_not_adopted.yaml), so it is off by default.
        backend: selective-scan backend (``auto``: mamba_ssm on CUDA when it imports, else chunked).
    """

    # torch.export unrolls the chunked scan's in-place recurrences into ~10^4 graph nodes (the exporter ran
    # > 15 min without finishing for one 64x64 graph); TorchScript tracing records the same ops in seconds
    onnx_blocker = ("the selective scan (zoo.nn.mamba.selective_scan) is a recurrence that the ONNX exporter "
                    "unrolls into a graph too large to build")
    channels = 3

    def __init__(self, stages: int = 3, dim: int = 16, d_inner: int = 16, d_state: int = 8, light: int = 8,
                 light_width: int = 8, mu_init: float = 0.05, backend: str = "auto",
                 exposure_quantiles: bool = False) -> None:
        super().__init__()
        if stages < 1:
            raise ValueError(f"stages must be >= 1, got {stages}")
        self.stages = int(stages)
        self.physics = LowLight(3)
        self.degradation = LowLightDegradation()
        self.mu_raw = nn.Parameter(torch.full((stages,), _inv_softplus(mu_init)))
        self.prior_r = nn.ModuleList([ReflectancePrior(dim, light, d_inner, d_state, backend) for _ in range(stages)])
        self.prior_l = nn.ModuleList([IlluminationPrior(light_width) for _ in range(stages)])
        self.relight = Relight(n_stats=N_STATS if exposure_quantiles else N_MOMENTS)

    @property
    def mu(self) -> torch.Tensor:
        return F.softplus(self.mu_raw)

    # -- contract --------------------------------------------------------------------------------
    def measure(self, x: torch.Tensor, generator: torch.Generator | None = None, **kw: Any) -> dict[str, Any]:
        """``{"low": synthetic low-light image}`` of normal-light images ``x`` (:class:`LowLightDegradation`)."""
        return {"low": self.degradation(x, generator=generator, **kw)}

    def example_inputs(self, size: int) -> dict[str, Any]:
        return {"low": torch.rand(1, 3, size, size) * 0.25}

    def parameter_roles(self) -> dict[str, str]:
        return {n: "stage" if n == "mu_raw" else "prior_base" for n, _ in self.named_parameters()}

    def forward(self, low: torch.Tensor, stats: torch.Tensor | None = None,
                return_all: bool = False) -> torch.Tensor | list[torch.Tensor]:
        """Enhance ``low`` (N, 3, H, W) sRGB in [0, 1]; ``stats`` (N, N_STATS): :func:`global_stats` of the whole
        image (default: of ``low``; tiled inference passes the whole image's)."""
        self.physics.check_inputs(low)
        I = low.float()
        s = global_stats(I) if stats is None else torch.as_tensor(stats, dtype=I.dtype, device=I.device)
        if s.ndim == 1:
            s = s[None]
        if s.shape != (I.shape[0], N_STATS):
            raise ValueError(f"stats must be (N={I.shape[0]}, {N_STATS}): zoo.physics.lowlight.global_stats of the "
                             f"whole image; got {tuple(s.shape)}")
        L = I.amax(1, keepdim=True).clamp_min(EPS)
        R = I / L
        P, Q = R, L
        Y1, Y2 = torch.zeros_like(R), torch.zeros_like(L)
        mu = self.mu
        outs = []
        for k in range(self.stages):
            m = mu[k]
            R = (2 * I * L + m * P - Y1) / (2 * L * L + m)
            L = (2 * (I * R).sum(1, keepdim=True) + m * Q - Y2) / (2 * (R * R).sum(1, keepdim=True) + m)
            P = self.prior_r[k](R + Y1 / m, L)
            Q = self.prior_l[k](L + Y2 / m, R)
            Y1 = Y1 + m * (R - P)
            Y2 = Y2 + m * (L - Q)
            if return_all or k == self.stages - 1:
                phi, c = self.relight(Q, s)
                outs.append(P * phi * c)
        return outs if return_all else outs[-1]


def llemamba(stages: int = 3, dim: int = 16, d_inner: int = 16, d_state: int = 8, light: int = 8,
             light_width: int = 8, mu_init: float = 0.05, backend: str = "auto",
             exposure_quantiles: bool = False) -> LLEMamba:
    """LLEMamba for sRGB low-light enhancement (module docstring)."""
    return LLEMamba(stages, dim, d_inner, d_state, light, light_width, mu_init, backend, exposure_quantiles)


register_model(ModelEntry(
    name="llemamba-lowlight", architecture="llemamba", task="lowlight", builder=llemamba, paper=PAPER,
    default_config={}, test_config={"stages": 2, "dim": 8, "d_inner": 8, "d_state": 4, "light": 4, "light_width": 4},
    description="LLEMamba low-light enhancement (Retinex ADMM unfolding, IFBMamba prior), trained on synthetic pairs",
    lightning_module="zoo.training.RestorationModule"))
