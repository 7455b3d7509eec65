"""Every recipe in recipes/ runs through the real entry point (`zoo fit`) on tiny fake data."""

from __future__ import annotations

from pathlib import Path

import pytest

from zoo.cli.main import main

RECIPES = Path(__file__).resolve().parents[1] / "recipes"


def _ordered(recipes: list[Path]) -> list[Path]:
    """Producers first: a recipe that reads ``runs/<X>/export/...`` runs after the recipe exporting to it."""
    import re

    def exports(p: Path) -> set[str]:
        return set(re.findall(r"dirpath:\s*(runs/[\w.-]+/export)", p.read_text()))

    def reads(p: Path) -> set[str]:
        return set(re.findall(r"(runs/[\w.-]+/export)/", p.read_text())) - exports(p)

    done: list[Path] = []
    todo = sorted(recipes)
    while todo:
        made = {e for p in done for e in exports(p)}
        ready = [p for p in todo if reads(p) <= made or not (reads(p) & {e for q in todo for e in exports(q)})]
        if not ready:
            raise AssertionError(f"recipes with circular weight dependencies: {[p.name for p in todo]}")
        done += ready
        todo = [p for p in todo if p not in ready]
    return done


ALL = _ordered(list(RECIPES.glob("*.yaml")))


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("recipes_cwd")


def test_there_are_recipes():
    assert ALL, "no recipes found"


@pytest.mark.parametrize("recipe", ALL, ids=[p.stem for p in ALL])
def test_recipe_fast_dev_run(recipe, fake_all_root, workdir, monkeypatch):
    from fakedata import small_patch_args

    monkeypatch.chdir(workdir)  # recipes write runs/<name>/ relative to the working directory
    monkeypatch.setenv("ZOO_DATA", str(fake_all_root))
    main(["fit", "--config", str(recipe), "--trainer.fast_dev_run=1", "--trainer.enable_progress_bar=false",
          f"--data.init_args.data_root={fake_all_root}", "--data.init_args.batch_size=2", "--trainer.accelerator=cpu",
          *small_patch_args(recipe)])
    exports = list((workdir / "runs").glob("*/export/model.safetensors"))
    assert exports, "the recipe's ExportWeights callback wrote no weights"
