"""Read the data files a model config names (ISTA-Net Φ, a CASSI coded aperture) into tensors.

Builders take tensors and never open the data folder; a config that names a file
(``phi_init: ista``, ``mask_init: mat``) is turned into ``phi``/``qinit``/``mask`` here, by the
training module for recipes, or by you::

    >>> import zoo
    >>> from zoo.data import resolve_model_files
    >>> net = zoo.create("lorun-cs-r25", **resolve_model_files("lorun-cs-r25", {"phi_init": "ista"}))  # doctest: +SKIP
"""

from __future__ import annotations

from typing import Any, Mapping

from zoo.data.cassi import read_cassi_mask
from zoo.data.cs import find_ista_folder, load_ista_matrices
from zoo.data.paths import find_data
from zoo.registry import get_entry

__all__ = ["resolve_model_files"]


def resolve_model_files(name: str, config: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """``config`` with its file-backed options replaced by the tensors they name (others unchanged).

    ``data_root`` (optional) is where the files are looked for (default ``ZOO_DATA``).
    """
    cfg = dict(config or {})
    root = cfg.pop("data_root", None)
    full = {**get_entry(name).default_config, **cfg}
    if full.get("phi_init") == "ista" and cfg.get("phi") is None:
        phi, q = load_ista_matrices(find_ista_folder(root), full.get("ratio", 0.25))
        want = full.get("qinit")
        if want is True and q is None:
            raise FileNotFoundError(f"no Initialization_Matrix for ratio {full.get('ratio')} in "
                                    f"{find_ista_folder(root)}; set qinit=False")
        cfg.update(phi=phi, qinit=q if want is not False else None)
    if full.get("mask_init") == "mat" and cfg.get("mask") is None:
        mask_file = full.get("mask_file", "cassi/mask_256.mat")
        path = find_data(mask_file, root, layout=f"{mask_file} (key 'mask', 2-D)",
                         source="github.com/mengziyi64/TSA-Net (TSA_Net_simulation/Data/mask.mat, "
                                "TSA_Net_realdata/Data/mask.mat)")
        cfg["mask"] = read_cassi_mask(path)
    return cfg
