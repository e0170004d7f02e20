"""The stability and correlation studies."""
import csv
import os

import numpy as np
import pytest
from click.testing import CliRunner

from tips_np.cli import main
from tips_np.method.model import Generator, Group
from tips_np.method.skeleton import KEYPOINTS, PARTS
from tips_np.nn.mlp import MLP
from tips_np.tools import studies


def _log(path, epochs, errors, mirrored=None):
    os.makedirs(path, exist_ok=True)
    mirrored = mirrored or [200.0] * len(errors)
    with open(os.path.join(path, "log.csv"), "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["epoch", "D", "p_mpjpe", "p_mpjpe_mirrored"])
        for e, err, m in zip(epochs, errors, mirrored):
            w.writerow([e, 0.5, "" if err is None else err, m])


def test_stability_aggregation_on_synthetic_logs(tmp_path):
    epochs = list(range(1, 11))
    a = [100, 90, 80, 70, 60, 50, 52, 54, 56, 58]
    b = [110, 100, 90, 80, 70, 60, 58, 62, 66, 70]
    _log(tmp_path / "a", epochs, a)
    _log(tmp_path / "b", epochs, b[:3] + [None] + b[4:])  # epoch 4 was not evaluated
    ca, cb = studies.read_curve(tmp_path / "a" / "log.csv"), studies.read_curve(tmp_path / "b" / "log.csv")
    assert 4 not in cb[0]
    with pytest.raises(studies.StudyError, match="different epochs"):
        studies.summarise_stability([ca, cb])
    _log(tmp_path / "b", epochs, b)
    cb = studies.read_curve(tmp_path / "b" / "log.csv")
    s = studies.summarise_stability([ca, cb], window=0.4)
    np.testing.assert_allclose(s["mean"], (np.array(a) + b) / 2)
    np.testing.assert_allclose(s["std"], np.abs(np.array(a) - b) / 2)
    assert s["last"] == (64.0, 6.0)
    assert s["window_epochs"] == (7, 10)  # epochs after 60% of 10
    late = np.array(a[6:] + b[6:])
    assert np.isclose(s["window"][0], late.mean()) and np.isclose(s["window"][1], late.std())
    assert s["best"] == (54.0, 4.0)  # minima 50 and 58
    studies.write_stability_csv(tmp_path / "s.csv", {"x": s})
    assert "window_mean" in (tmp_path / "s.csv").read_text()


def test_sign_resolved_curve_takes_the_better_sign(tmp_path):
    _log(tmp_path, [1, 2, 3], [100, 180, 90], mirrored=[150, 80, 170])
    epochs, errors = studies.read_curve(tmp_path / "log.csv", sign_resolved=True)
    np.testing.assert_array_equal(errors, [100, 80, 90])
    np.testing.assert_array_equal(studies.read_curve(tmp_path / "log.csv")[1], [100, 180, 90])


def _one_net_per_keypoint(rng):
    """A generator whose depth j reads only keypoint j."""
    gen = Generator(["full"], width=8, blocks=1)
    gen.groups = [Group(f"k{j}", [j], MLP(f"G/k{j}", 2, 8, 1, 1, out_activation="tanh")) for j in KEYPOINTS]
    params, state = gen.init(rng)
    for k in state:
        state[k] += rng.random(state[k].shape).astype(np.float32)
    return gen, params, state


def _poses(rng, n=40):
    p = rng.uniform(-1, 1, (n, 17, 2)).astype(np.float32)
    p[:, 0] = 0
    return p


def test_sensitivity_of_a_model_with_known_dependencies(rng):
    gen, params, state = _one_net_per_keypoint(rng)
    matrix, curves = studies.sensitivity(gen, params, state, _poses(rng), factors=np.array([-0.5, 0.0, 0.5]))
    off = ~np.eye(16, dtype=bool)
    assert np.all(matrix[off] == 0)          # depth j never moves with keypoint i != j
    assert np.all(np.diag(matrix) > 0)       # and always with its own
    assert np.all(curves[:, 1] == 0)         # scaling by 1 changes nothing


def test_independent_parts_have_an_exactly_zero_cross_block(rng):
    gen = Generator(["torso", "legs"], width=8, blocks=1)
    params, state = gen.init(rng)
    for k in params:  # leave the flat start: make the outputs depend on the inputs
        params[k] += 0.3 * rng.standard_normal(params[k].shape).astype(np.float32)
    matrix, _ = studies.sensitivity(gen, params, state, _poses(rng), factors=np.array([-0.3, 0.4]))
    torso = [j - 1 for j in PARTS["torso"]]
    legs = [j - 1 for j in PARTS["legs"]]
    assert np.all(matrix[np.ix_(torso, legs)] == 0) and np.all(matrix[np.ix_(legs, torso)] == 0)
    assert np.all(matrix[np.ix_(torso, torso)].sum(0) > 0) and np.all(matrix[np.ix_(legs, legs)].sum(0) > 0)
    full = Generator(["full"], width=8, blocks=1)
    fp, fs = full.init(rng)
    for k in fp:
        fp[k] += 0.3 * rng.standard_normal(fp[k].shape).astype(np.float32)
    fmatrix, _ = studies.sensitivity(full, fp, fs, _poses(rng), factors=np.array([-0.3, 0.4]))
    assert np.all(fmatrix[np.ix_(torso, legs)] > 0)  # a full-pose model correlates everything


def test_cli_stability_reuses_finished_runs(tmp_path, tiny_data):
    args = ["study", "stability", "--parts", "full", "--parts", "torso,legs", "--seeds", "2",
            "--epochs", "2", "--width", "16", "--blocks", "1", "--data", tiny_data, "--out", str(tmp_path)]
    r = CliRunner().invoke(main, args)
    assert r.exit_code == 0, r.output
    assert (tmp_path / "stability.csv").exists() and "torso+legs" in r.output
    if studies.plotting() is None:
        assert "matplotlib is not installed" in r.output
    else:
        assert (tmp_path / "stability.png").exists()
    r = CliRunner().invoke(main, args)
    assert r.output.count("finished before, reused") == 4


def test_cli_correlations(tmp_path, tiny_data):
    run = str(tmp_path / "run")
    assert CliRunner().invoke(main, ["train", "--width", "16", "--blocks", "1", "--epochs", "1",
                                     "--data", tiny_data, "--out", run]).exit_code == 0
    r = CliRunner().invoke(main, ["study", "correlations", run, "--poses", "30"])
    assert r.exit_code == 0, r.output
    with open(os.path.join(run, "correlations.csv")) as f:
        rows = list(csv.reader(f))
    assert len(rows) == 17 and len(rows[0]) == 17
    m = np.array([[float(v) for v in row[1:]] for row in rows[1:]])
    torso, legs = [j - 1 for j in PARTS["torso"]], [j - 1 for j in PARTS["legs"]]
    assert np.all(m[np.ix_(torso, legs)] == 0)
    with open(os.path.join(run, "correlations_pair.csv")) as f:
        pair = list(csv.reader(f))
    assert len(pair) == 202 and pair[1][0] == "-95" and pair[-1][0] == "105"
    assert all(float(row[1]) == 0 for row in pair[1:])  # left elbow (torso) never moves a leg's depth
    r = CliRunner().invoke(main, ["study", "correlations", run, "--pair", "elbow,knee"])
    assert r.exit_code == 1 and "--pair" in r.output


def test_validation_curves_compare_runs_at_equal_minutes(tmp_path):
    """study curves reads each run's val.csv: the last validation within each mark,
    '-' for marks past the run's length, the last and the best value."""
    for name, rows in (("long", [(60, 90.0), (290, 80.0), (610, 70.0), (1190, 75.0)]), ("short", [(200, 85.0)])):
        os.makedirs(tmp_path / name)
        with open(tmp_path / name / "val.csv", "w") as f:
            f.write("epoch,step,seconds,lr,val_p_mpjpe\n")
            f.writelines(f"1,{i},{s},0.001,{v}\n" for i, (s, v) in enumerate(rows))
    r = CliRunner().invoke(main, ["study", "curves", str(tmp_path / "long"), str(tmp_path / "short")])
    assert r.exit_code == 0, r.output
    lines = r.output.splitlines()
    assert lines[1].split() == ["long", "80.0", "80.0", "75.0", "-", "-", "-", "75.0", "70.0", "19.8"]
    assert lines[2].split() == ["short", "-", "-", "-", "-", "-", "-", "85.0", "85.0", "3.3"]
    r = CliRunner().invoke(main, ["study", "curves", str(tmp_path)])
    assert r.exit_code != 0 and "val.csv: not found" in r.output
