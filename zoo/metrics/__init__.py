"""Quality metrics: :mod:`~zoo.metrics.image` (PSNR, SSIM), :mod:`~zoo.metrics.spectral` (SAM, ERGAS),
:mod:`~zoo.metrics.pansharpen` (Q2n, SCC, HQNR: Vivone et al.'s toolbox definitions)."""

from zoo.metrics.image import crop_border, psnr, rgb_to_y, ssim
from zoo.metrics.spectral import ergas, sam, sam_toolbox

__all__ = ["psnr", "ssim", "sam", "sam_toolbox", "ergas", "crop_border", "rgb_to_y"]
