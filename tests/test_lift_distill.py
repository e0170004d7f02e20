"""Distillation end to end, lifting users' files, and every refusal of bad input."""
import json
import os

import h5py
import numpy as np
import pytest
from click.testing import CliRunner

from tips_np.cli import main
from tips_np.io import checkpoint, dataset
from tips_np.io.lifting import LiftError, check_poses
from tips_np.method.model import predict_depths


README_POSE = [[500, 500], [470, 500], [465, 640], [460, 780], [530, 500], [535, 640], [540, 780],
               [500, 420], [500, 340], [500, 310], [500, 270], [540, 350], [570, 420], [590, 490],
               [460, 350], [430, 420], [410, 490]]


@pytest.fixture(scope="module")
def teacher(tmp_path_factory, tiny_data):
    run = str(tmp_path_factory.mktemp("runs") / "torso+legs")
    # the papers' recipe: in two epochs at width 16 it settles the depth sign clearly
    r = CliRunner().invoke(main, ["train", "--recipe", "paper", "--width", "16", "--blocks", "1", "--epochs", "2",
                                  "--data", tiny_data, "--out", run])
    assert r.exit_code == 0, r.output
    return run


def test_distill_then_evaluate_side_by_side(tmp_path, teacher):
    import shutil
    # a two-epoch teacher still lifts nearly flat poses: give its depths some size first
    loud = str(tmp_path / "teacher")
    shutil.copytree(teacher, loud)
    with h5py.File(os.path.join(loud, "checkpoint.h5"), "a") as f:
        del f.attrs["checksum"]  # edited on purpose
        for part in ("torso", "legs"):
            for k in ("W", "b"):
                f[f"params/G/{part}/fc_out/{k}"][...] *= 20
    student = str(tmp_path / "student")
    r = CliRunner().invoke(main, ["distill", loud, "--out", student, "--epochs", "6", "--batch-size", "32",
                                  "--width", "64", "--lr", "1e-3"])
    assert r.exit_code == 0, r.output
    ckpt = checkpoint.load(student)
    assert ckpt["config"]["teacher"] == loud and ckpt["config"]["parts"] == ["full"]
    assert not any(k.startswith("D/") for k in ckpt["params"])
    with open(os.path.join(student, "log.csv")) as f:
        losses = [float(row.split(",")[2]) for row in f.read().splitlines()[1:]]
    assert losses[-1] < losses[0]  # the student moves towards its teachers
    train_2d = dataset.load(ckpt["config"]["data"], "train").pose_2d
    z_student, z_teacher = (predict_depths(*checkpoint.load_model(checkpoint.load(run)), train_2d)[:, 1:]
                            for run in (student, loud))
    relative = ((z_student - z_teacher) ** 2).mean() / (z_teacher ** 2).mean()
    assert relative < 0.2, relative  # its depths are the teachers' (TIPS eq. 7), up to a small error
    r = CliRunner().invoke(main, ["evaluate", teacher, student])
    assert r.exit_code == 0, r.output
    assert "torso+legs P-MPJPE" in r.output and "student P-MPJPE" in r.output
    assert r.output.count("z=0 on tiny.h5 P-MPJPE") == 2  # one baseline row (each half of the table)


def test_a_checkpoint_from_before_the_sign_decision_is_oriented_on_loading(tmp_path, teacher):
    import shutil
    old = str(tmp_path / "old.h5")
    shutil.copy(os.path.join(teacher, "checkpoint.h5"), old)
    with h5py.File(old, "a") as f:
        del f.attrs["oriented"], f.attrs["checksum"]  # as written before either existed
        f["params/G/legs/fc_out/W"][...] *= -1   # saved facing backwards
        f["params/G/legs/fc_out/b"][...] *= -1
    r = CliRunner().invoke(main, ["evaluate", old])
    assert r.exit_code == 0 and "predates the depth-sign decision" in r.output, r.output
    assert "legs" in r.output.split("oriented by anatomy:")[1].split("\n")[0]
    pose_file = tmp_path / "pose.json"
    pose_file.write_text(json.dumps(README_POSE))
    z = {}
    for name, path in (("new", teacher), ("old", old)):
        out = tmp_path / f"{name}.npy"
        assert CliRunner().invoke(main, ["lift", path, "--input", str(pose_file), "--output", str(out)]).exit_code == 0
        z[name] = np.load(out)[:, 0, :, 2]
    np.testing.assert_array_equal(z["old"], z["new"])   # flipped back to the trained sign


def test_distill_resume(tmp_path, teacher):
    student = str(tmp_path / "student")
    assert CliRunner().invoke(main, ["distill", teacher, "--out", student, "--epochs", "1"]).exit_code == 0
    r = CliRunner().invoke(main, ["distill", teacher, "--out", student, "--epochs", "2", "--resume"])
    assert r.exit_code == 0 and "resuming" in r.output and checkpoint.load(student)["epoch"] == 2


@pytest.mark.parametrize("fmt", ["json", "json_one", "json_obj", "csv", "csv_header", "npy", "npy16"])
def test_lift_reads_every_format(tmp_path, teacher, rng, fmt):
    poses = rng.uniform(300, 700, (3, 17, 2))
    path = tmp_path / ("in." + next(e for e in ("json", "csv", "npy") if fmt.startswith(e)))
    if fmt == "json":
        path.write_text(json.dumps(poses.tolist()))
    elif fmt == "json_one":
        path.write_text(json.dumps(poses[0].tolist()))
        poses = poses[:1]
    elif fmt == "json_obj":
        path.write_text(json.dumps({"poses": poses.tolist()}))
    elif fmt.startswith("csv"):
        head = ",".join(f"{j}_{c}" for j in range(17) for c in "xy") + "\n" if fmt == "csv_header" else ""
        path.write_text(head + "\n".join(",".join(map(str, p.ravel())) for p in poses))
    elif fmt == "npy":
        np.save(path, poses)
    else:  # 16 keypoints: the root becomes the midpoint of the hips
        poses[:, 0] = (poses[:, 1] + poses[:, 4]) / 2
        np.save(path, poses[:, 1:])
    out = tmp_path / "out.json"
    r = CliRunner().invoke(main, ["lift", teacher, "--input", str(path), "--output", str(out)])
    assert r.exit_code == 0, r.output
    res = json.loads(out.read_text())
    norm, px = np.array(res["pose_3d_normalised"]), np.array(res["pose_3d_pixels"])
    assert norm.shape == px.shape == (len(poses), 17, 3)
    np.testing.assert_allclose(px[..., :2], poses, atol=1e-2)       # back at the input's pixels
    np.testing.assert_allclose(np.abs(norm[..., :2]).max(axis=(1, 2)), 1, atol=1e-5)
    assert np.all(np.abs(norm[..., 2]) <= 1)


def test_lift_writes_npy(tmp_path, teacher, rng):
    src, out = tmp_path / "in.npy", tmp_path / "out.npy"
    np.save(src, rng.uniform(300, 700, (2, 17, 2)))
    r = CliRunner().invoke(main, ["lift", teacher, "--input", str(src), "--output", str(out)])
    assert r.exit_code == 0, r.output
    assert np.load(out).shape == (2, 2, 17, 3)


def _bad_inputs(tmp_path, rng):
    good = rng.uniform(300, 700, (2, 17, 2))
    nan = good.copy()
    nan[1, 3, 0] = np.nan
    inf = good.copy()
    inf[0, 0, 1] = np.inf
    flat = np.full((1, 17, 2), 420.0)
    files = {
        "wrong joint count": ("a.npy", rng.uniform(0, 1, (2, 15, 2)), "17 joints"),
        "wrong shape": ("b.npy", rng.uniform(0, 1, (2, 17, 4)), "got shape (2, 17, 4)"),
        "nan": ("c.npy", nan, "pose 1 has NaN"),
        "inf": ("d.json", inf, "pose 0 has NaN or infinite"),
        "degenerate": ("e.npy", flat, "degenerate"),
        "empty": ("f.json", None, "empty"),
        "format": ("g.txt", good, "unknown input format '.txt'"),
        "junk json": ("h.json", "{not json", "cannot read json"),
        "ragged csv": ("i.csv", "1,2,3\n4,5", "cannot read csv"),
        "missing": ("nope.npy", "absent", "file not found"),
    }
    out = {}
    for name, (fname, data, message) in files.items():
        path = tmp_path / fname
        if isinstance(data, np.ndarray) and fname.endswith(".npy"):
            np.save(path, data)
        elif isinstance(data, np.ndarray):
            path.write_text(json.dumps(data.tolist()))  # Python's json writes Infinity
        elif data is None:
            path.write_text("")
        elif data != "absent":
            path.write_text(data)
        out[name] = (str(path), message)
    return out


def test_lift_refuses_bad_input_files(tmp_path, teacher, rng):
    for name, (path, message) in _bad_inputs(tmp_path, rng).items():
        out = tmp_path / "out.json"
        r = CliRunner().invoke(main, ["lift", teacher, "--input", path, "--output", str(out)])
        assert r.exit_code == 1, name
        assert message in r.output and path in r.output, (name, r.output)
        assert "Traceback" not in r.output and len(r.output.strip().splitlines()) == 1, name
        assert not out.exists() and not [p for p in os.listdir(tmp_path) if ".tmp" in p], name


def test_lift_refuses_bad_checkpoints_and_outputs(tmp_path, teacher, rng):
    src = tmp_path / "in.npy"
    np.save(src, rng.uniform(300, 700, (2, 17, 2)))
    truncated = tmp_path / "truncated.h5"
    data = open(os.path.join(teacher, "checkpoint.h5"), "rb").read()
    truncated.write_bytes(data[: len(data) // 3])
    plain = tmp_path / "plain.h5"
    with h5py.File(plain, "w") as f:
        f["x"] = 1
    other = tmp_path / "other.h5"  # a checkpoint that claims another representation
    ck = checkpoint.load(teacher)
    checkpoint.save(str(other), {**ck["config"], "parts": ["full"]}, ck["params"], ck["state"])
    extra = tmp_path / "extra.h5"  # one parameter more than the model has
    checkpoint.save(str(extra), ck["config"], {**ck["params"], "G/legs/fc_in/b": np.zeros(16)}, ck["state"])
    cases = [
        (str(truncated), str(tmp_path / "o.json"), "not a readable HDF5 file"),
        (str(plain), str(tmp_path / "o.json"), "not a tips-np checkpoint"),
        (str(other), str(tmp_path / "o.json"), "is missing (a checkpoint of another representation?)"),
        (str(extra), str(tmp_path / "o.json"), "unexpected parameter 'G/legs/fc_in/b'"),
        (str(tmp_path / "none"), str(tmp_path / "o.json"), "checkpoint not found"),
        (teacher, str(tmp_path / "o.txt"), "unknown output format '.txt'"),
        (teacher, str(tmp_path / "no" / "o.json"), "output folder does not exist"),
    ]
    for model, out, message in cases:
        r = CliRunner().invoke(main, ["lift", model, "--input", str(src), "--output", out])
        assert r.exit_code == 1 and message in r.output, (message, r.output)
        assert "Traceback" not in r.output and not os.path.exists(out)


def test_option_out_of_range(teacher):
    r = CliRunner().invoke(main, ["distill", teacher, "--out", "x", "--epochs", "0"])
    assert r.exit_code == 2 and "--epochs" in r.output


def test_check_poses_accepts_flat_rows(rng):
    flat = rng.uniform(0, 500, (4, 34))
    assert check_poses(flat, "x").shape == (4, 17, 2)
    with pytest.raises(LiftError, match="no poses"):
        check_poses(np.zeros((0, 17, 2)), "x")


def test_an_exported_model_lifts_like_its_run_and_is_the_default_of_lift(tmp_path, teacher, rng, monkeypatch):
    """export keeps the generator alone (float32, no optimiser or discriminator);
    lift and evaluate take the file like a run, and lift without a model uses
    checkpoint.PRETRAINED."""
    model = str(tmp_path / "model.h5")
    r = CliRunner().invoke(main, ["export", teacher, "--out", model])
    assert r.exit_code == 0, r.output
    exported, run = checkpoint.load(model), checkpoint.load(teacher)
    assert not exported["adam"] and exported["rng_state"] is None
    assert set(exported["params"]) == {k for k in run["params"] if k.startswith("G/")}
    assert all(v.dtype == np.float32 for v in exported["params"].values())
    assert exported["config"]["data"] is None and json.loads(exported["attrs"]["trained_on"]) == run["config"]["data"]
    src = tmp_path / "in.npy"
    np.save(src, rng.uniform(300, 700, (3, 17, 2)))
    outputs = {}
    monkeypatch.setattr(checkpoint, "PRETRAINED", model)
    for name, args in (("run", [teacher]), ("default", [])):
        out = str(tmp_path / f"{name}.npy")
        r = CliRunner().invoke(main, ["lift", *args, "--input", str(src), "--output", out])
        assert r.exit_code == 0, r.output
        outputs[name] = np.load(out)
    np.testing.assert_allclose(outputs["default"], outputs["run"], rtol=1e-5, atol=1e-5)
    r = CliRunner().invoke(main, ["evaluate", model, "--data", run["config"]["data"]])
    assert r.exit_code == 0 and f"{tmp_path.name}/model P-MPJPE" in r.output, r.output
    assert os.path.exists(tmp_path / "model.evaluation.csv")


def test_the_shipped_lifter_faces_the_right_way_and_beats_flat_poses():
    """The pretrained student in data/ (docs/results.md): small, and on
    the shipped sample's test split better than z_hat = 0 and than its mirror."""
    assert os.path.getsize(checkpoint.PRETRAINED) <= 5e6
    ckpt = checkpoint.load(checkpoint.PRETRAINED)
    assert not ckpt["adam"] and not any(k.startswith("D/") for k in ckpt["params"])
    # the 2D adapters lift uses for a detector's keypoints (docs/results.md), chosen on subject 8
    from tips_np.tools.fit_adapter import load_adapters
    assert set(load_adapters(ckpt)) == {"mpii", "noise"}
    assert all(a["val_subject"] == 8 for a in ckpt["config"]["adapters"].values())
    from tips_np.tools.evaluate import evaluate_depths
    test = dataset.load(None, "test")
    result = evaluate_depths(predict_depths(*checkpoint.load_model(ckpt), test.pose_2d), test,
                             ckpt["config"].get("perspective"))
    mm = {k: v["Average"] for k, v in result.items()}
    assert mm["P-MPJPE"] < mm["P-MPJPE z=0"] - 20 and mm["P-MPJPE"] < mm["P-MPJPE mirrored"] - 40, mm
