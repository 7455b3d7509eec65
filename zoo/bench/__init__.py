"""Protocol-aware benchmarks: quality tables, costs, published rows, PNG grids."""

from zoo.bench.runner import render_markdown, run_bench

__all__ = ["run_bench", "render_markdown"]
