"""Selective scan (Mamba S6) with explicit backends, and the IFBMamba block of LLEMamba.

The S6 recurrence, per channel ``d`` and state ``n`` (``u``, ``Δ`` (N, D, L); ``A`` (D, N);
``B``, ``C`` (N, S, L); ``D`` (D,))::

    h_t = exp(Δ_t A) ⊙ h_{t−1} + Δ_t B_t u_t          (h_0 = 0)
    y_t = C_t · h_t + D u_t

Backends (:func:`selective_scan`, chosen once per (device type, dtype) and logged once):

* ``"mamba_ssm"`` — ``mamba_ssm.ops.selective_scan_interface.selective_scan_fn`` when the package
  imports and the tensors are on CUDA;
* ``"chunked"`` — the default elsewhere: a pure-PyTorch chunked scan with a hand-written backward
  (:class:`_ChunkedScan`). The sequence is cut into chunks of ``T`` steps, laid out (T, L/T, N, D, S)
  so that one within-chunk step of *every chunk at once* is one contiguous in-place op; the state
  is then carried across chunks by ``L/T`` steps over (N, D, S) with each chunk's running decay
  ``Π_{s≤t} exp(Δ_s A) = exp(Σ_{s≤t} Δ_s A)`` (the within-chunk segment sum of the log-decays
  ``Δ A ≤ 0``). That decay lies in [0, 1] and is only ever *multiplied*, never divided by (a
  cumulative product underflows to 0 on long or strongly decaying sequences; dividing by it, as
  naive chunked scans do, gives Inf/NaN). Without autograd (inference on large images) the
  sequence is scanned in segments of ≈ 4 MB work tensors with the state carried between them,
  which keeps the cost linear in L (whole-image tensors fall out of the caches) and the memory bounded. Python steps: ``T + L/T``
  (``T ≈ √L``), not ``L``. The backward is the same scan run in reverse on the adjoint
  ``g_t = ∂y/∂h_t + exp(Δ_{t+1} A) g_{t+1}``; it saves ``exp(ΔA)`` and ``h`` (2 × N·D·L·S floats);
* ``"loop"`` — the plain sequential loop over ``t`` (autograd through it): the test reference.

Everything runs in float32 (float64 stays float64) with autocast disabled.

IFBMamba (illumination-guided, bidirectional; [ours] where arXiv 2406.01028 is not specific)::

    z  = LayerNorm(x)                                   x: (N, C, H, W) features, as tokens
    a, g = split(W_in z)                                (d_inner each)
    a  = SiLU(DWConv3×3(a))
    Δ_dir = softplus(W_Δ,dir a + W_ill,dir f_L + b_dir)  illumination features f_L modulate the step
    y  = Σ_{dir ∈ {→, ←}} S6_dir(a; Δ_dir, B_dir(a), C_dir(a))   raster order and its reverse
    x  = x + W_out(LayerNorm(y) ⊙ SiLU(g))
    x  = x + FFN(LayerNorm(x))                          1×1 → GELU(DWConv3×3) → 1×1

Only the two raster directions (row-major forward and reversed) are scanned, not the column
directions. timm is not used: its layers would bring DropPath (off for a network this small, trained
this briefly) and a ``trunc_normal_`` equal to torch's, while ``import timm.layers`` costs 2.5 s on
top of torch's 2.1 s (it imports torchvision; measured 2026-12-02) in every process that loads a
LLEMamba. The initialisation is torch's ``trunc_normal_`` and Mamba's Δ/A initialisation, written here.
"""

from __future__ import annotations

import logging
import math
from typing import Callable

import torch
import torch.nn as nn
import torch.nn.functional as F

from zoo.nn.pointwise import PointwiseConv2d
from zoo.utils.tracing import tracing

__all__ = ["selective_scan", "selective_scan_ref", "scan_backend", "available_backends", "IFBMamba"]

log = logging.getLogger(__name__)

try:  # the CUDA kernel; optional (pip install mamba-ssm needs nvcc)
    from mamba_ssm.ops.selective_scan_interface import selective_scan_fn as _mamba_ssm_fn
except ImportError:  # not installed / not built: the pure-PyTorch backends serve
    _mamba_ssm_fn = None

_CHOSEN: dict[tuple[str, torch.dtype], str] = {}


def available_backends(device: torch.device | str = "cpu") -> list[str]:
    """The backends that can run on ``device`` (``loop`` and ``chunked`` everywhere)."""
    dev = torch.device(device)
    return ["loop", "chunked"] + (["mamba_ssm"] if _mamba_ssm_fn is not None and dev.type == "cuda" else [])


def scan_backend(u: torch.Tensor, requested: str = "auto") -> str:
    """The backend for tensors like ``u``: ``mamba_ssm`` on CUDA when it imports, else ``chunked``.

    The choice for a (device type, dtype) is logged once (INFO). An explicit ``requested`` backend
    that cannot run here is an error, never a silent fallback.
    """
    if requested != "auto":
        if requested not in ("loop", "chunked", "mamba_ssm"):
            raise ValueError(f"unknown scan backend {requested!r}: use auto, chunked, loop or mamba_ssm")
        if requested == "mamba_ssm" and requested not in available_backends(u.device):
            why = "mamba_ssm is not installed (pip install mamba-ssm; needs nvcc)" if _mamba_ssm_fn is None \
                else "mamba_ssm runs on CUDA tensors only"
            raise RuntimeError(f"scan backend mamba_ssm unavailable: {why}")
        return requested
    key = (u.device.type, u.dtype)
    if key not in _CHOSEN:
        _CHOSEN[key] = "mamba_ssm" if "mamba_ssm" in available_backends(u.device) else "chunked"
        log.info("selective scan backend for %s/%s: %s", *key, _CHOSEN[key])
    return _CHOSEN[key]


def _up(t: torch.Tensor | None) -> torch.Tensor | None:
    if t is None:
        return None
    return t if t.dtype in (torch.float32, torch.float64) else t.float()


def selective_scan(u: torch.Tensor, delta: torch.Tensor, A: torch.Tensor, B: torch.Tensor, C: torch.Tensor,
                   D: torch.Tensor | None = None, backend: str = "auto", chunk: int | None = None) -> torch.Tensor:
    """S6 scan (module docstring): ``u``, ``delta`` (N, D, L), ``A`` (D, S) with A < 0, ``B``, ``C`` (N, S, L),
    ``D`` (D,) or None → ``y`` (N, D, L), in float32 (or float64) with autocast off.

    ``delta`` is the step itself (softplus already applied). ``chunk`` sets the chunked backend's
    chunk length (default ≈ √L, at least 16).
    """
    if u.ndim != 3 or delta.shape != u.shape:
        raise ValueError(f"u and delta must be (N, D, L) of one shape, got {tuple(u.shape)} and {tuple(delta.shape)}")
    n, d, L = u.shape
    if A.shape[0] != d or B.shape != (n, A.shape[1], L) or C.shape != B.shape:
        raise ValueError(f"A must be (D={d}, S), B and C (N={n}, S, L={L}); got {tuple(A.shape)}, {tuple(B.shape)}, "
                         f"{tuple(C.shape)}")
    which = scan_backend(u, backend)
    with torch.autocast(device_type=u.device.type, enabled=False):
        u, delta, A, B, C, D = (_up(t) for t in (u, delta, A, B, C, D))
        if which == "mamba_ssm":
            return _mamba_ssm_fn(u.contiguous(), delta.contiguous(), A.contiguous(), B.contiguous(), C.contiguous(),
                                 None if D is None else D.contiguous(), None, None, False, False)
        if which == "loop":
            return selective_scan_ref(u, delta, A, B, C, D)
        seg = max(1024, 2**20 // max(1, n * d * A.shape[1]))  # ≈ 4 MB float32 work tensors
        if tracing():  # an exported graph: the chunked forward inline (no autograd.Function, one segment)
            y = _chunked_forward(u, delta, A, B, C, int(chunk) if chunk else max(16, int(math.isqrt(max(L, 1)))))[0]
        elif L > seg and not (torch.is_grad_enabled() and any(t.requires_grad for t in (u, delta, A, B, C))):
            y = _segmented_forward(u, delta, A, B, C, chunk, seg)
        else:
            T = int(chunk) if chunk else max(16, int(math.isqrt(max(L, 1))))
            y = _ChunkedScan.apply(u, delta, A, B, C, T)
        return y if D is None else y + D[:, None] * u


def selective_scan_ref(u: torch.Tensor, delta: torch.Tensor, A: torch.Tensor, B: torch.Tensor, C: torch.Tensor,
                       D: torch.Tensor | None = None) -> torch.Tensor:
    """The plain sequential loop (reference; autograd through it)."""
    n, d, L = u.shape
    h = u.new_zeros(n, d, A.shape[1])
    ys = []
    for u_t, dt, B_t, C_t in zip(u.unbind(2), delta.unbind(2), B.unbind(2), C.unbind(2)):
        dt = dt[..., None]
        h = torch.exp(dt * A) * h + dt * B_t[:, None] * u_t[..., None]
        ys.append((h * C_t[:, None]).sum(-1))
    y = torch.stack(ys, -1)
    return y if D is None else y + D[:, None] * u


def _scan_(la: torch.Tensor, b: torch.Tensor, reverse: bool = False, h0: torch.Tensor | None = None) -> torch.Tensor:
    """``h_t = exp(la_t) h_{t∓1} + b_t`` over positions ``l = c·T + t`` of (T, nc, M) tensors, in place into ``b``.

    ``la`` ≤ 0 are log-decays (−inf allowed: a hard reset), overwritten (a scratch buffer: the decays
    are exponentiated in place, which saves one allocation of the largest tensor); ``reverse`` runs
    from the last position to the first; ``h0`` (M,) is the state before the first position (forward
    only; default 0). Stable: decays in [0, 1] are only ever multiplied (their running product inside
    a chunk underflows harmlessly to 0), nothing is divided.
    """
    T, nc = b.shape[:2]
    a = la.exp_()
    steps = [(t, t + 1) for t in range(T - 2, -1, -1)] if reverse else [(t, t - 1) for t in range(1, T)]
    for t, p in steps:  # the recurrence inside every chunk at once, from a zero state at the chunk's entry
        b[t].addcmul_(a[t], b[p])
    if nc > 1 or h0 is not None:
        cum = a  # in place: Π of the decays from the chunk's entry to t (inclusive)
        for t, p in steps:
            cum[t].mul_(cum[p])
        edge = 0 if reverse else T - 1  # the chunk's exit position
        carry = b.new_zeros(b.shape[1:])
        h = b.new_zeros(b.shape[2:]) if h0 is None else h0
        carry[-1 if reverse else 0] = h
        for c in (range(nc - 1, 0, -1) if reverse else range(nc - 1)):  # the state entering each chunk
            h = torch.addcmul(b[edge, c], cum[edge, c], h)
            carry[c - 1 if reverse else c + 1] = h
        b.addcmul_(cum, carry[None])
    return b


def _to_chunks(x: torch.Tensor, T: int, nc: int) -> torch.Tensor:
    """(n, c, L) → (T, nc, n, c) with position ``l = c·T + t`` (zero-padded to nc·T)."""
    n, c, L = x.shape
    if nc * T != L:
        x = F.pad(x, (0, nc * T - L))
    return x.view(n, c, nc, T).permute(3, 2, 0, 1).contiguous()


def _from_chunks(x: torch.Tensor, L: int) -> torch.Tensor:
    T, nc, n, c = x.shape
    return x.permute(2, 3, 1, 0).reshape(n, c, nc * T)[..., :L]


def _shift(x: torch.Tensor, step: int, fill: float) -> torch.Tensor:
    """``x`` (T, nc, ...) moved by one position along ``l = c·T + t`` (``step`` = +1: x_{l−1}; −1: x_{l+1})."""
    out = torch.empty_like(x)
    if step > 0:
        out[1:], out[0, 1:], out[0, 0] = x[:-1], x[-1, :-1], fill
    else:
        out[:-1], out[-1, :-1], out[-1, -1] = x[1:], x[0, 1:], fill
    return out


def _chunked_forward(u, delta, A, B, C, T, h0=None, work=None):
    """→ (y, h in the chunk layout, T, nc); ``h0`` (n, d, S): the state before the first position;
    ``work``: a dict of scratch buffers reused between calls (inference segments: the two largest tensors
    are then not allocated, and page-faulted in, for every segment, which is most of a fresh tensor's cost)."""
    n, d, L = u.shape
    T = max(1, min(int(T), L))
    nc = -(-L // T)
    U, Dl, Bc, Cc = (_to_chunks(t, T, nc) for t in (u, delta, B, C))
    shape = (T, nc, n, d, A.shape[1])
    if work is not None and work.get("shape") == shape:
        la, h = work["la"], work["h"]
    else:
        la, h = torch.empty(shape, dtype=U.dtype, device=U.device), torch.empty(shape, dtype=U.dtype, device=U.device)
        if work is not None:
            work.update(shape=shape, la=la, h=h)
    torch.mul(Dl[..., None], A, out=la)  # log-decays ≤ 0
    torch.mul((Dl * U)[..., None], Bc[:, :, :, None, :], out=h)
    _scan_(la.view(T, nc, -1), h.view(T, nc, -1), h0=None if h0 is None else h0.reshape(-1))
    # contractions over S by einsum (a batched matmul): 2.5-3x faster than a broadcast product + sum
    y = _from_chunks(torch.einsum("tcnds,tcns->tcnd", h, Cc), L)
    return y, h, T, nc


def _segmented_forward(u, delta, A, B, C, chunk, seg):
    """Inference (no autograd): the chunked scan over segments of ``seg`` positions, the state carried between
    them, so the work tensors stay ≈ 4 MB (in cache) and the cost stays linear in L for large images."""
    n, d, L = u.shape
    ys, h0, work = [], None, {}
    for s0 in range(0, L, seg):
        sl = slice(s0, min(L, s0 + seg))
        Ls = sl.stop - sl.start
        T = int(chunk) if chunk else max(16, int(math.isqrt(Ls)))
        y, h, T, nc = _chunked_forward(u[..., sl], delta[..., sl], A, B[..., sl], C[..., sl], T, h0, work)
        last = (Ls - 1) % T, (Ls - 1) // T
        h0 = h[last[0], last[1]].clone()  # (n, d, S): the state after the segment's last position (h is reused)
        ys.append(y)
    return torch.cat(ys, -1)


class _ChunkedScan(torch.autograd.Function):
    """``y_t = C_t · h_t`` of the S6 recurrence (without ``D u``), chunked forward and backward.

    Work tensors live in the chunk layout (T, nc, n, d, S): the slice of one within-chunk step over
    all chunks is contiguous.
    """

    @staticmethod
    def forward(ctx, u, delta, A, B, C, T):  # noqa: D102
        y, h, T, nc = _chunked_forward(u, delta, A, B, C, T)
        ctx.save_for_backward(u, delta, A, B, C, h)
        ctx.T, ctx.nc = T, nc
        return y

    @staticmethod
    def backward(ctx, gy):  # noqa: D102
        u, delta, A, B, C, h = ctx.saved_tensors
        T, nc, L = ctx.T, ctx.nc, u.shape[-1]
        U, Dl, Bc, Cc, Gy = (_to_chunks(t, T, nc) for t in (u, delta, B, C, gy.contiguous()))
        la = Dl[..., None] * A
        # adjoint: g_l = C_l gy_l + exp(la_{l+1}) g_{l+1}, the same scan in reverse
        g = Gy[..., None] * Cc[:, :, :, None, :]
        _scan_(_shift(la, -1, -math.inf).view(T, nc, -1), g.view(T, nc, -1), reverse=True)
        gC = torch.einsum("tcnd,tcnds->tcns", Gy, h)
        gla = la.exp_().mul_(_shift(h, 1, 0.0)).mul_(g)  # ∂/∂(ΔA) = g_l exp(la_l) h_{l−1}
        gbu = torch.einsum("tcnds,tcns->tcnd", g, Bc)  # Σ_S g B (b = Δ u B)
        gA = (gla * Dl[..., None]).sum((0, 1, 2))  # (einsum is 10x slower for these two)
        gdelta = (gla * A).sum(-1) + gbu * U
        gB = torch.einsum("tcnds,tcnd->tcns", g, Dl * U)
        return (_from_chunks(gbu * Dl, L), _from_chunks(gdelta, L), gA, _from_chunks(gB, L), _from_chunks(gC, L),
                None)


# -----------------------------------------------------------------------------------------------
# the IFBMamba block


class _ChannelNorm(nn.Module):
    """LayerNorm over the channels of an (N, C, H, W) map."""

    def __init__(self, c: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(c)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)


class IFBMamba(nn.Module):
    """Illumination-guided bidirectional Mamba block (module docstring).

    Args:
        dim: feature channels ``C``.
        guide: channels of the illumination features ``f_L`` that modulate Δ (0: unguided).
        d_inner: channels of the scanned branch (default 2·dim).
        d_state: S6 state size ``S``.
        dt_rank: rank of the Δ projection (default ⌈dim/16⌉).
        ffn: hidden channels of the FFN (default 2·dim; 0: no FFN).
        backend: scan backend (``auto``, ``chunked``, ``loop``, ``mamba_ssm``).
    """

    def __init__(self, dim: int, guide: int = 0, d_inner: int | None = None, d_state: int = 8,
                 dt_rank: int | None = None, ffn: int | None = None, backend: str = "auto",
                 dt_min: float = 1e-3, dt_max: float = 1e-1) -> None:
        super().__init__()
        di = d_inner or 2 * dim
        self.dim, self.d_inner, self.d_state, self.guide = dim, di, d_state, guide
        self.dt_rank = dt_rank or max(1, math.ceil(dim / 16))
        self.backend = backend
        self.norm1 = _ChannelNorm(dim)
        self.in_proj = PointwiseConv2d(dim, 2 * di, bias=False)
        self.dwconv = nn.Conv2d(di, di, 3, padding=1, groups=di)
        r, s = self.dt_rank, d_state
        self.x_proj = nn.Conv1d(di, 2 * (r + 2 * s), 1, bias=False)  # both directions: (dt, B, C)
        self.dt_proj = nn.ModuleList([nn.Conv1d(r, di, 1) for _ in range(2)])
        self.ill_proj = nn.Conv1d(guide, 2 * di, 1, bias=False) if guide else None
        self.A_log = nn.Parameter(torch.log(torch.arange(1, s + 1, dtype=torch.float32)).repeat(2, di, 1))
        self.Ds = nn.Parameter(torch.ones(2, di))
        self.norm2 = _ChannelNorm(di)
        self.out_proj = PointwiseConv2d(di, dim, bias=False)
        hid = dim * 2 if ffn is None else ffn
        self.ffn = nn.Sequential(_ChannelNorm(dim), PointwiseConv2d(dim, hid), nn.Conv2d(hid, hid, 3, padding=1, groups=hid),
                                 nn.GELU(), PointwiseConv2d(hid, dim)) if hid else None
        self._init(dt_min, dt_max)

    def _init(self, dt_min: float, dt_max: float) -> None:
        for m in self.modules():
            if isinstance(m, (nn.Conv1d, nn.Conv2d)) and m.groups == 1:
                nn.init.trunc_normal_(m.weight, std=0.02 if m.kernel_size[0] == 1 else 0.05)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
        for p in self.dt_proj:  # Mamba: Δ = softplus(bias) log-uniform in [dt_min, dt_max]
            nn.init.uniform_(p.weight, -self.dt_rank ** -0.5, self.dt_rank ** -0.5)
            dt = torch.exp(torch.rand(self.d_inner) * (math.log(dt_max) - math.log(dt_min)) + math.log(dt_min))
            with torch.no_grad():
                p.bias.copy_(dt + torch.log(-torch.expm1(-dt)))
        if self.ill_proj is not None:
            nn.init.zeros_(self.ill_proj.weight)  # starts as plain Mamba; the light guidance is learned
        nn.init.zeros_(self.out_proj.weight)  # the block starts as the identity (residual)
        if self.ffn is not None:
            nn.init.zeros_(self.ffn[-1].weight)

    def forward(self, x: torch.Tensor, f_light: torch.Tensor | None = None) -> torch.Tensor:
        """``x`` (N, C, H, W), ``f_light`` (N, guide, H, W) illumination features → (N, C, H, W)."""
        n, _, hh, ww = x.shape
        L = hh * ww
        a, gate = self.in_proj(self.norm1(x)).chunk(2, 1)
        a = F.silu(self.dwconv(a)).flatten(2)  # (n, di, L), raster order
        ys = 0
        r, s = self.dt_rank, self.d_state
        proj = self.x_proj(a)
        ill = self.ill_proj(f_light.flatten(2)) if self.ill_proj is not None and f_light is not None else None
        for k in range(2):  # k = 0: raster order; k = 1: reversed
            dt_in, Bm, Cm = proj[:, k * (r + 2 * s):(k + 1) * (r + 2 * s)].split([r, s, s], 1)
            dt = self.dt_proj[k](dt_in)
            if ill is not None:
                dt = dt + ill[:, k * self.d_inner:(k + 1) * self.d_inner]
            dt = F.softplus(dt.float())
            A = -torch.exp(self.A_log[k].float())
            seq = (a, dt, Bm, Cm) if k == 0 else tuple(t.flip(-1) for t in (a, dt, Bm, Cm))
            y = selective_scan(seq[0], seq[1], A, seq[2], seq[3], self.Ds[k], backend=self.backend)
            ys = ys + (y if k == 0 else y.flip(-1))
        y = self.norm2(ys.view(n, self.d_inner, hh, ww).to(x.dtype)) * F.silu(gate)
        x = x + self.out_proj(y)
        return x + self.ffn(x) if self.ffn is not None else x
