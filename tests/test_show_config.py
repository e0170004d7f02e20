"""`train --show-config`: the configuration a fresh run takes, as JSON, and no run."""
import json

from click.testing import CliRunner

from tips_np.cli import main
from tips_np.tools.train import DEFAULTS, RECIPES


def show(*args):
    r = CliRunner().invoke(main, ["train", "--show-config", *args])
    assert r.exit_code == 0, r.output
    return json.loads(r.output)


def test_show_config_prints_defaults_then_the_recipe_then_the_options(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cpu = show()
    assert list(cpu) == list(DEFAULTS)
    assert {k: cpu[k] for k in RECIPES["cpu"]} == RECIPES["cpu"] and cpu["recipe"] == "cpu"
    assert cpu["epochs"] == DEFAULTS["epochs"] and cpu["parts"] == ["torso", "legs"]
    paper = show("--recipe", "paper", "--lr", "3e-4", "--width", "64", "--parts", "full", "--perspective", "0")
    assert paper["lr"] == 3e-4 and paper["width"] == 64 and paper["parts"] == ["full"]   # the options given
    assert paper["adv_scale"] == RECIPES["paper"]["adv_scale"] != cpu["adv_scale"]         # the recipe's
    assert paper["perspective"] is None                                                    # 0: orthographic
    assert not list(tmp_path.iterdir())                                                    # nothing trained


def test_show_config_refuses_resume():
    r = CliRunner().invoke(main, ["train", "--show-config", "--resume"])
    assert r.exit_code == 1 and "fresh run" in r.output
