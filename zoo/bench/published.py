"""Published numbers shown beside ours (cited, never recomputed). Source: ``shared/docs/METHODS.md`` §4."""

from __future__ import annotations

__all__ = ["PUBLISHED", "published_rows"]

# (task, dataset, setting) -> rows of {"method", metrics..., "note"}
PUBLISHED: dict[tuple[str, str, str], list[dict]] = {
    ("cs", "Set11", "r50"): [
        {"method": "ISTA-Net+ (official log)", "psnr": 38.07, "ssim": 0.9706},
        {"method": "ISTA-Net", "psnr": 37.42},
    ],
    ("cs", "Set11", "r25"): [{"method": "NesTD-Net (official results)", "psnr": 36.27, "ssim": 0.962}],
    ("cs", "Set11", "r10"): [{"method": "NesTD-Net (official results)", "psnr": 30.91, "ssim": 0.910}],
    ("cs", "Set11", "r4"): [{"method": "NesTD-Net (official results)", "psnr": 26.73, "ssim": 0.824}],
    ("cs", "Set11", "r1"): [{"method": "NesTD-Net (official results)", "psnr": 21.40, "ssim": 0.589}],
}


def published_rows(task: str, dataset: str, setting: str) -> list[dict]:
    return [dict(r) for r in PUBLISHED.get((task, dataset, setting), [])]
