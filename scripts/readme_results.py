"""Copy the bench tables (results/<task>/summary.md) into README.md between their markers.

    python scripts/readme_results.py      # after `zoo bench ... --out results/<task>`

Markers: ``<!-- results:<task> -->`` … ``<!-- /results:<task> -->``. Only tables written by
``zoo bench`` go in, so every number in the README comes from a bench run.
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    readme = ROOT / "README.md"
    text = readme.read_text()
    for m in re.finditer(r"<!-- results:([\w/-]+) -->", text):
        task = m.group(1)
        src = ROOT / "results" / task / "summary.md"
        if not src.is_file():
            continue
        body = src.read_text().split("\n", 1)[1].strip()  # drop the H1
        body = body.replace("\n## ", "\n#### ")
        block = f"<!-- results:{task} -->\n{body}\n<!-- /results:{task} -->"
        text = re.sub(rf"<!-- results:{re.escape(task)} -->.*?<!-- /results:{re.escape(task)} -->", lambda _: block, text,
                      flags=re.S)
    readme.write_text(text)


if __name__ == "__main__":
    main()
