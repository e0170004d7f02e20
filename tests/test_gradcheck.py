"""`python cli.py gradcheck`: the table of every backward against central differences."""
import re

import pytest
from click.testing import CliRunner

from tips_np.cli import main
from tips_np.method import losses
from tips_np.tools.gradcheck_table import BOUND

pytestmark = pytest.mark.gradcheck

ROW = re.compile(r"^(?P<section>.+?)\s{2,}(?P<name>.+?)\s+(?P<error>\d\.\de[-+]\d\d)\s+"
                 r"\((?P<worst>[^)]*)\)(?P<flag>.*)$")


def rows_of(output):
    return [m.groupdict() for m in map(ROW.match, output.splitlines()) if m]


def test_every_backward_is_within_the_bound_and_the_planted_bug_is_not():
    r = CliRunner().invoke(main, ["gradcheck"])
    assert r.exit_code == 0, r.output
    rows = rows_of(r.output)
    planted = [row for row in rows if row["section"] == "planted bug"]
    checked = [row for row in rows if row["section"] != "planted bug"]
    assert len(planted) == 1 and float(planted[0]["error"]) > 1e-3
    assert all(float(row["error"]) < BOUND for row in checked), r.output
    names = " | ".join(f"{row['section']}: {row['name']}" for row in checked)
    for part in ("linear", "batchnorm, training", "batchnorm, evaluation", "activation relu", "activation leaky_relu",
                 "activation tanh", "activation sigmoid", "dropout", "dense", "residual block", "MLP, training",
                 "MLP, evaluation", "MLP tangent", "MLP dual backward", "rotate", "project, orthographic",
                 "project, perspective", "unproject", "max_normalise", "generator torso", "generator legs",
                 "generator full", "discriminator, L_D"):
        assert part in names, f"no row checks {part!r}"
    # every loss of losses.py has its row
    for loss, row in (("reprojection_loss", "L2D"), ("ninety_degree_loss", "L90"), ("all_angle_loss", "L_inf"),
                      ("generator_adversarial_loss", "generators' adversarial, bce"),
                      ("discriminator_loss", "discriminator's, lsgan"), ("distillation_loss", "distillation")):
        assert hasattr(losses, loss) and f"loss: {row}" in names, loss
    assert {n for n in dir(losses) if n.endswith("_loss")} == {"reprojection_loss", "ninety_degree_loss",
                                                              "all_angle_loss", "generator_adversarial_loss",
                                                              "discriminator_loss", "distillation_loss"}


def test_a_wrong_backward_fails_the_command(monkeypatch):
    """The rotation's backward with R^T for R: its row rises above the bound, exit status 1."""
    monkeypatch.setattr("tips_np.method.geometry.rotate_backward", lambda d, R: d @ R.transpose(0, 2, 1))
    r = CliRunner().invoke(main, ["gradcheck"])
    assert r.exit_code == 1 and "relative error above" in r.output and "rotate" in r.output.splitlines()[-1]
    assert "ABOVE THE BOUND" in next(line for line in r.output.splitlines() if line.startswith("geometry")
                                     and "rotate" in line)
