"""Write ``zoo/catalog.json`` (what ``zoo list`` / ``zoo info`` read without importing torch) from the registry.

    python scripts/write_catalog.py          # after registering or changing a model
"""

from __future__ import annotations

import json

from zoo.cli.catalog import CATALOG, build_catalog
from zoo.utils.files import atomic_write

if __name__ == "__main__":
    text = json.dumps({"note": "written by scripts/write_catalog.py from the registry; do not edit",
                       "models": build_catalog()}, indent=1, sort_keys=True) + "\n"
    with atomic_write(CATALOG, overwrite=True) as tmp:
        tmp.write_text(text)
    print(f"wrote {CATALOG} ({len(json.loads(text)['models'])} models)")
