"""Write the generated parts of README.md: the checkpoint table and the bench tables, between their markers.

    python scripts/readme_results.py      # after `zoo bench ... --out results/<task>/<study> --record`

Markers: ``<!-- checkpoints -->`` … ``<!-- /checkpoints -->`` (one row per manifest checkpoint: task,
parameters, the task's headline number, the floor on the same test set, a published anchor) and
``<!-- results:<task>/<study> -->`` … ``<!-- /results:<task>/<study> -->`` (``results/<task>/<study>/summary.md``).
Only numbers written by ``zoo bench`` go in, so every number in the README comes from a bench run.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import zoo
from zoo.tasks import get_task

ROOT = Path(__file__).resolve().parents[1]


def _fmt(v: float | None, metric: str) -> str:
    if v is None:
        return "–"
    return f"{v:.4f}" if metric in ("ssim", "q2n") else f"{v:.2f}"


def checkpoint_table() -> str:
    manifest = json.loads((ROOT / "checkpoints_manifest.json").read_text())["checkpoints"]
    rows = ["| checkpoint | task | params (M = 2²⁰) | prior params | headline (this zoo) | floor | published anchor |",
            "|---|---|---|---|---|---|---|"]
    for name in sorted(manifest, key=lambda n: (manifest[n]["task"], n)):
        rec = manifest[name]
        task = get_task(rec["task"])
        bench = rec.get("bench") or {}
        res, params = bench.get("results", {}), bench.get("params") or {}
        ds = next((d for d in task.headline if d in res), None)
        metric = task.headline_metric
        head = f"{ds} {metric.upper()} {_fmt(res[ds].get(metric), metric)}" if ds else "not benched"
        floor = "–"
        summary = ROOT / "results" / task.name / "bench" / "summary.json"
        if ds and summary.is_file():
            s = json.loads(summary.read_text())
            setting = s["models"].get(name, {}).get("setting")
            fl = s.get("floor", {}).get(f"{ds}/{setting}")
            if fl:
                floor = f"{task.floor_name.split(' (')[0]} {_fmt(fl.get(metric), metric)}"
        pub = "–"
        if ds:
            setting = (json.loads(summary.read_text())["models"].get(name, {}).get("setting") if summary.is_file() else None)
            rows_pub = [r for r in task.published_rows(ds, setting or "") if r.get(metric) is not None]
            if rows_pub:
                r = rows_pub[0]
                pub = f"{r['method']}: {_fmt(r[metric], metric)}"
        total = f"{params['total_M']:.3f}" if params else "–"
        prior = f"{params['prior_M']:.3f}" if params else "–"
        rows.append(f"| `{name}` | {rec['task']} | {total} | {prior} | {head} | {floor} | {pub} |")
    return "\n".join(rows)


def main() -> None:
    readme = ROOT / "README.md"
    text = readme.read_text()
    table = checkpoint_table()
    text = re.sub(r"<!-- checkpoints -->.*?<!-- /checkpoints -->", lambda _: f"<!-- checkpoints -->\n{table}\n<!-- /checkpoints -->",
                  text, flags=re.S)
    for m in re.finditer(r"<!-- results:([\w/-]+) -->", text):
        study = m.group(1)
        src = ROOT / "results" / study / "summary.md"
        if not src.is_file():
            continue
        body = src.read_text().split("\n", 1)[1].strip()  # drop the H1
        body = body.replace("\n## ", "\n#### ")
        block = f"<!-- results:{study} -->\n{body}\n<!-- /results:{study} -->"
        text = re.sub(rf"<!-- results:{re.escape(study)} -->.*?<!-- /results:{re.escape(study)} -->", lambda _: block,
                      text, flags=re.S)
    readme.write_text(text)


if __name__ == "__main__":
    main()
