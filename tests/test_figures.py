"""The walk-through's figures: docs/figures/draw.py redraws every one of them from the
package's functions, and every figure the walk-through shows is one it draws."""
import importlib.util
import os
import re

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIGURES = os.path.join(ROOT, "docs", "figures")
DOC = os.path.join(ROOT, "docs", "walkthrough.md")


def load_script():
    spec = importlib.util.spec_from_file_location("draw_figures", os.path.join(FIGURES, "draw.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def shown_in_walkthrough():
    with open(DOC) as f:
        return re.findall(r"!\[[^\]]*\]\(figures/([^)]+)\)", f.read())


def test_the_walkthrough_shows_every_figure_and_only_those_drawn():
    script = load_script()
    shown = shown_in_walkthrough()
    assert sorted(shown) == sorted(script.FIGURES), (shown, list(script.FIGURES))
    for name in shown:
        assert os.path.isfile(os.path.join(FIGURES, name)), f"docs/figures/{name} is not checked in"


def test_the_script_redraws_every_figure(tmp_path):
    pytest.importorskip("matplotlib", reason="the figures need the `plot` extra (pip install -e '.[plot]')")
    from matplotlib.image import imread
    script = load_script()
    written = script.draw_all(str(tmp_path))
    assert sorted(os.path.basename(p) for p in written) == sorted(script.FIGURES)
    for path in written:
        image, shipped = imread(path), imread(os.path.join(FIGURES, os.path.basename(path)))
        assert image.shape == shipped.shape, f"{os.path.basename(path)}: {image.shape} against {shipped.shape}"
        assert image[..., :3].std() > 0.05, f"{os.path.basename(path)} is blank"
