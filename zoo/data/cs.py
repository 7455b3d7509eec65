"""Files of the CS protocol: the ISTA-Net sampling matrices (``$ZOO_DATA/cs/phi``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from zoo.data.paths import find_data

__all__ = ["load_ista_matrices", "find_ista_folder"]


def find_ista_folder(root: str | Path | None = None) -> Path:
    """``<data root>/cs/phi``, or a clear error naming the layout and the source."""
    return find_data("cs/phi", root, layout="cs/phi/phi_0_{r}_1089.mat + Initialization_Matrix_{r}.mat",
                     source="github.com/jianzhangcs/ISTA-Net-PyTorch")


def load_ista_matrices(root: str | Path, ratio: float, block: int = 33) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Read ``phi_0_{r}_1089.mat`` (key ``phi``) and ``Initialization_Matrix_{r}.mat`` (``Qinit``).

    ``root`` is the folder holding them (``$ZOO_DATA/cs/phi``). Qinit is ``None`` when its file is
    absent (the 50 % files were never published).
    """
    import scipy.io as sio

    root = Path(root)
    r = int(round(ratio * 100))
    n = block * block
    f_phi = root / f"phi_0_{r}_{n}.mat"
    if not f_phi.is_file():
        have = sorted(p.name for p in root.glob("phi_0_*_*.mat")) if root.is_dir() else []
        raise FileNotFoundError(
            f"no ISTA-Net sampling matrix for ratio {ratio} at {f_phi} (found: {have or 'nothing'}). "
            "The files come from github.com/jianzhangcs/ISTA-Net-PyTorch (sampling_matrix/); "
            "omit phi_path to use a seeded orthonormal Gaussian matrix instead."
        )
    phi = torch.from_numpy(np.asarray(sio.loadmat(f_phi)["phi"], dtype=np.float32))
    f_q = root / f"Initialization_Matrix_{r}.mat"
    q = torch.from_numpy(np.asarray(sio.loadmat(f_q)["Qinit"], dtype=np.float32)) if f_q.is_file() else None
    return phi, q
