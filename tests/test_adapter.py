"""Detections in prepare-data, the floor of a 2D input, and the 2D adapter (adapter.py,
fit_adapter.py): its gradient, and that fitting it moves a detector's poses towards the
projections."""
import h5py
import numpy as np
import pytest

from test_data import _swap_yz, _tiny_tree
from tips_np.io import checkpoint, dataset, h36m, keypoints
from tips_np.method import adapter, geometry
from tips_np.method.losses import squared_error
from tips_np.method.model import init_networks
from tips_np.method.skeleton import CAMERA_IDS
from tips_np.nn.gradcheck import gradient_errors, relative_error
from tips_np.tools import evaluate, fit_adapter

from conftest import ROOT

HEAD_OFFSET = np.array([0.0, -40.0])   # the planted detector's head top sits 40 px too high


def _mpii_from_projections(uv):
    """(T, 17, 2) projections -> MPII's 16 keypoints as a detector would place them
    (the head top HEAD_OFFSET off), so that the mapping has something to learn."""
    j = {name: i for i, name in enumerate(["hip", "rhip", "rkne", "rank", "lhip", "lkne", "lank", "spine",
                                           "thorax", "neck", "head", "lsho", "lelb", "lwri", "rsho", "relb",
                                           "rwri"])}
    order = ["rank", "rkne", "rhip", "lhip", "lkne", "lank", "hip", "spine", "thorax", "head",
             "rwri", "relb", "rsho", "lsho", "lelb", "lwri"]
    det = uv[:, [j[k] for k in order]].copy()
    det[:, keypoints.MPII16.index("head_top")] += HEAD_OFFSET
    return np.round(det)


def _with_detections(root, frames=12):
    """Stacked Hourglass files beside the tiny tree's 3D: every take of subject 1 with 3D,
    and one take ('Sitting') that has detections only."""
    cams = h36m.read_cameras(str(root / "cameras.h5"), 1)
    folder = root / "S1" / "StackedHourglass"
    folder.mkdir()
    for take in ("Walking", "Photo 1"):
        X = h36m.read_sequence(str(root / "S1" / "MyPoses" / "3D_positions" / f"{take}.h5"))
        for cam, cid in zip(cams, CAMERA_IDS):
            with h5py.File(h36m.detection_path(str(root), 1, take, cid), "w") as f:
                f["poses"] = _mpii_from_projections(h36m.project(X, cam)[1]).astype(np.float32)
    for cid in CAMERA_IDS:
        with h5py.File(folder / f"Sitting.{cid}.h5", "w") as f:
            f["poses"] = np.random.default_rng(1).uniform(300, 700, (frames, 16, 2)).astype(np.float32)


def test_prepare_reads_detections_frame_by_frame(tmp_path):
    root = _tiny_tree(tmp_path)
    _swap_yz(root)
    _with_detections(root)
    out = tmp_path / "out.h5"
    h36m.prepare(str(root), str(out), every=3, subjects=[1, 9])
    with h5py.File(out, "r") as f:
        p2, det, has_3d, subject = f["pose_2d"][()], f["pose_2d_det"][()], f["has_3d"][()], f["subject"][()]
        takes = list(f.attrs["takes"])
    assert "S1/Sitting (2D only)" in takes
    # the 2D-only take: detections of subject 1, no projections or 3D
    only = ~has_3d
    assert only.sum() == 4 * 4 and np.all(subject[only] == 1)
    assert np.isnan(p2[only]).all() and np.isfinite(det[only]).all()
    # subject 9 has no detection files: NaN there; subject 1's are the mapping of its projections
    assert np.isnan(det[has_3d & (subject == 9)]).all()
    s1 = has_3d & (subject == 1)
    expected, _ = keypoints.mpii_to_h36m(_mpii_from_projections(p2[s1]), np.ones((s1.sum(), 16)))
    np.testing.assert_allclose(det[s1], expected, atol=1e-3)
    # the root, hips and limbs are the projections (rounded to whole pixels, as the detector's)
    np.testing.assert_allclose(det[s1][:, [1, 2, 3, 11, 16]], p2[s1][:, [1, 2, 3, 11, 16]], atol=0.51)

    # loading: projections leave the 2D-only rows out, detections keep them
    proj = dataset.load(str(out), "train")
    dets = dataset.load(str(out), "train", "detections")
    assert len(proj) == 2 * 4 * 4 and len(dets) == 3 * 4 * 4 and (~dets.has_3d).sum() == 16
    paired = proj.with_detections()
    assert len(paired) == len(proj)
    np.testing.assert_array_equal(paired.row, paired.paired.row)
    with pytest.raises(h36m.DataError, match="no 3D poses"):
        dets.select(~dets.has_3d).with_3d()


def test_prepare_refuses_detections_of_other_frames(tmp_path):
    root = _tiny_tree(tmp_path)
    _swap_yz(root)
    _with_detections(root)
    path = h36m.detection_path(str(root), 1, "Walking", CAMERA_IDS[2])
    with h5py.File(path, "a") as f:
        short = f["poses"][:-1]
        del f["poses"]
        f["poses"] = short
    with pytest.raises(h36m.DataError, match="11 frames, but its 3D sequence"):
        h36m.prepare(str(root), str(tmp_path / "out.h5"), subjects=[1, 9])
    assert not (tmp_path / "out.h5").exists()


@pytest.mark.gradcheck
def test_adapter_gradient(rng):
    """d/dW of (1/N) sum |Y + A(Y) - P|^2, through the MLP's backward, in float64."""
    net = adapter.make_adapter("mpii", width=8, blocks=1)
    net.out_scale = 1.0   # a gradient check wants every layer to matter
    params, state = init_networks([net], rng, np.float64)
    x = rng.standard_normal((6, 34))
    target = x + 0.1 * rng.standard_normal(x.shape)

    def loss():
        correction, _ = net.forward(params, x, True)
        return squared_error(x + correction, target)[0]

    correction, cache = net.forward(params, x, True)
    _, d_out = squared_error(x + correction, target)
    grads = {}
    d_x = net.backward(d_out, cache, params, grads)
    errors = gradient_errors(loss, params, grads)
    assert max(errors.values()) < 1e-6, errors
    from tips_np.nn.gradcheck import numerical_gradient
    assert relative_error(d_x + d_out, numerical_gradient(loss, x)) < 1e-6


def test_floor_is_zero_for_exact_orthographic_input(rng):
    """The floor scores the input's x, y with the true depths: 0 mm when the input is
    the 3D pose's own x, y (any scale), more when the 2D is noisy."""
    pose_3d = rng.normal(0, 300, (20, 17, 3))
    pose_3d -= pose_3d[:, :1]
    pose_2d = pose_3d[..., :2] / 700.0
    pred = np.concatenate([pose_2d, evaluate.true_depths(pose_2d, pose_3d)[..., None]], axis=-1)
    assert evaluate.p_mpjpe(pred, pose_3d).max() < 1e-6
    noisy = pose_2d + rng.normal(0, 0.02, pose_2d.shape)
    pred = np.concatenate([noisy, evaluate.true_depths(noisy, pose_3d)[..., None]], axis=-1)
    assert evaluate.p_mpjpe(pred, pose_3d).mean() > 1.0


def test_noise_targets_are_the_clean_pose_in_the_noisy_frame(rng):
    clean, _ = geometry.normalise_2d(rng.uniform(-1, 1, (5, 17, 2)))
    scale = np.full(5, 120.0)
    noisy, target, noisy_scale = adapter.noisy_pairs(clean, scale, 10.0, rng)
    assert np.all(np.abs(noisy_scale / scale - 1) < 0.3)
    assert np.allclose(noisy[:, 0], 0) and np.allclose(np.abs(noisy).max(axis=(1, 2)), 1)
    # the noisy pose's own frame: its root at 0; the clean pose differs by noise only
    assert not np.allclose(target, noisy) and np.abs(target - noisy).max() < 0.6


@pytest.fixture(scope="module")
def det_data(tmp_path_factory):
    """A tiny prepared file whose subject 1 (and 5, part of it renamed) has detections
    that differ from the projections by a planted head and neck offset only (the random
    points of the tiny tree are no skeleton, so the mapping's own rules would be noise)."""
    tmp_path = tmp_path_factory.mktemp("det")
    root = _tiny_tree(tmp_path, n=60)
    _swap_yz(root)
    _with_detections(root, frames=60)
    data = tmp_path / "data.h5"
    h36m.prepare(str(root), str(data), subjects=[1, 9])
    with h5py.File(data, "a") as f:
        subject = f["subject"][()]
        subject[(subject == 1) & (f["frame"][()] % 4 == 0)] = 5
        f["subject"][...] = subject
        f.attrs["train_subjects"] = [1, 5]
        det = f["pose_2d"][()]
        det[:, 9] += HEAD_OFFSET / 3
        det[:, 10] += 2 * HEAD_OFFSET / 3
        f["pose_2d_det"][...] = np.where(np.isnan(f["pose_2d_det"][()]), np.nan, det)
    return str(data)


@pytest.fixture(scope="module")
def bare_lifter(tmp_path_factory):
    """The pretrained lifter without its adapters."""
    ckpt = checkpoint.load(checkpoint.PRETRAINED)
    path = tmp_path_factory.mktemp("bare") / "bare.h5"
    config = {k: v for k, v in ckpt["config"].items() if k != "adapters"}
    bare = lambda arrays: {k: v for k, v in arrays.items() if not k.startswith("A/")}
    checkpoint.save_generator(str(path), config, bare(ckpt["params"]), bare(ckpt["state"]), ckpt["epoch"])
    return str(path)


@pytest.fixture(scope="module")
def fitted(det_data, bare_lifter, tmp_path_factory):
    out = tmp_path_factory.mktemp("lifter") / "lifter.h5"
    lines = []
    rows = fit_adapter.fit(bare_lifter, "mpii", det_data, str(out), val_subject=5, epochs=6,
                           width=32, batch_size=32, lr=3e-3, echo=lines.append)
    return str(out), rows, lines


def test_fit_learns_the_planted_head_offset_and_ships_with_the_lifter(fitted, bare_lifter):
    out, rows, lines = fitted
    before = float(lines[0].split("2D error ")[1].split(" px")[0])
    assert rows[-1]["px"] < 0.6 * before, (before, rows)
    ckpt = checkpoint.load(out)
    adapters = fit_adapter.load_adapters(ckpt)
    assert set(adapters) == {"mpii"} and ckpt["config"]["adapters"]["mpii"]["val_subject"] == 5
    # the lifter's own weights are the ones it was given, unchanged
    shipped = checkpoint.load(bare_lifter)
    for k, v in shipped["params"].items():
        np.testing.assert_array_equal(ckpt["params"][k], v)


def test_evaluate_scores_the_input_given_with_its_adapter_and_floor(fitted, det_data):
    """evaluate --inputs detections --subject 5: A/mpii applied (auto), the floor of the
    detections given and of the adapted ones, the files named by the input."""
    out, rows, _ = fitted
    lines = []
    table = evaluate.evaluate_runs([out], det_data, inputs="detections", subject=5, echo=lines.append)
    assert any("A/mpii applied" in line for line in lines)
    name = [k for k in table if k.startswith("floor (true depths) on")]
    assert name == ["floor (true depths) on data.h5 (S5.detections) P-MPJPE"]
    floor_given = table[name[0]]["Average"]
    floor_adapted = next(v for k, v in table.items() if k.endswith("floor, adapted"))["Average"]
    assert abs(floor_adapted - floor_given) > 0.1   # the adapted poses were scored, the given ones floored
    import os
    # (on data other than the lifter's own: evaluation.<data's name>, then the input)
    assert os.path.isfile(os.path.join(os.path.dirname(out), "lifter.evaluation.data.S5.detections.json"))
    # without the adapter the scores are the raw detections'; with noise, a file of its own
    raw = evaluate.evaluate_runs([out], det_data, inputs="detections", subject=5, adapter="none",
                                 overwrite=True, echo=lines.append)
    assert next(v for k, v in raw.items() if k.startswith("floor"))["Average"] == pytest.approx(floor_given)
    evaluate.evaluate_runs([out], det_data, noise=5.0, seed=3, echo=lines.append)
    assert os.path.isfile(os.path.join(os.path.dirname(out), "lifter.evaluation.data.noise5-seed3.json"))
    with pytest.raises(adapter.AdapterError, match="no 2D adapter 'noise'"):
        evaluate.evaluate_runs([out], det_data, adapter="noise", echo=lines.append)


def test_own_2d_poses_train_end_to_end_without_3d(tmp_path, sample_path):
    """prepare-data --keypoints -> train --data (no 3D: nothing evaluated, said in one
    line) -> lift with the result; evaluate and --val-subject refuse in one line."""
    import json
    import subprocess
    import sys
    with h5py.File(sample_path, "r") as f:
        pixels = f["pose_2d"][:600:2]
    (tmp_path / "mine.json").write_text(json.dumps({"poses": pixels.tolist()}))
    cli = [sys.executable, "cli.py"]
    run = lambda *args: subprocess.run(cli + list(args), capture_output=True, text=True, cwd=ROOT)
    r = run("prepare-data", "--keypoints", str(tmp_path / "mine.json"), "--out", str(tmp_path / "mine.h5"))
    assert r.returncode == 0, r.stderr
    assert "wrote 300 2D poses (no 3D)" in r.stdout
    with h5py.File(tmp_path / "mine.h5", "r") as f:
        assert "pose_3d" not in f and f["pose_2d"].shape == (300, 17, 2)
    r = run("train", "--parts", "torso,legs", "--data", str(tmp_path / "mine.h5"), "--epochs", "1",
            "--batch-size", "64", "--out", str(tmp_path / "run"))
    assert r.returncode == 0, r.stderr
    assert "no test poses" in r.stdout and "has no 3D poses (2D only): nothing evaluated" in r.stdout
    r = run("evaluate", str(tmp_path / "run"))
    assert r.returncode == 1 and r.stderr.count("\n") == 1 and "has no 3D poses" in r.stderr
    r = run("train", "--data", str(tmp_path / "mine.h5"), "--epochs", "1", "--val-subject", "8",
            "--out", str(tmp_path / "run2"))
    assert r.returncode == 1 and "has none (2D only)" in r.stderr
    r = run("lift", str(tmp_path / "run"), "--input", str(tmp_path / "mine.json"), "--output",
            str(tmp_path / "out.json"))
    assert r.returncode == 0, r.stderr
    assert len(json.loads((tmp_path / "out.json").read_text())["pose_3d_pixels"]) == 300


def test_lift_applies_the_adapter_of_the_files_keypoints(fitted, tmp_path):
    """An MPII file through a lifter with A/mpii: moved by it (said in one line), and
    --adapter none lifts it as read; Human3.6M-ordered poses are never adapted by auto."""
    import json
    from click.testing import CliRunner
    from tips_np.cli import main
    out, _, _ = fitted
    rng = np.random.default_rng(0)
    base = np.array([[0, 100], [-10, 50], [-12, 0], [-20, 100], [-22, 150], [-24, 200], [0, 100], [0, 0],
                     [0, -20], [0, -60], [30, 60], [28, 20], [25, -10], [-25, -10], [-28, 20], [-30, 60]], float)
    mpii = base[[5, 4, 3, 2, 1, 0, 6, 7, 8, 9, 15, 14, 13, 12, 11, 10]] * [1, -1] + 400
    poses = mpii + rng.normal(0, 2, (20, 16, 2))
    with h5py.File(tmp_path / "det.h5", "w") as f:
        f["poses"] = poses.astype(np.float32)
    runner = CliRunner()
    lifted = {}
    for choice in ("auto", "none"):
        r = runner.invoke(main, ["lift", out, "--input", str(tmp_path / "det.h5"), "--output",
                                 str(tmp_path / f"{choice}.json"), "--adapter", choice])
        assert r.exit_code == 0, r.output
        assert ("adapter A/mpii" in r.output) == (choice == "auto")
        lifted[choice] = np.array(json.loads((tmp_path / f"{choice}.json").read_text())["pose_3d_pixels"])
    assert lifted["auto"].shape == lifted["none"].shape == (20, 17, 3)
    assert np.abs(lifted["auto"][..., :2] - lifted["none"][..., :2]).max() > 0.5   # x, y moved by A/mpii
    r = runner.invoke(main, ["lift", out, "--input", str(tmp_path / "det.h5"), "--output",
                             str(tmp_path / "x.json"), "--adapter", "noise"])
    assert r.exit_code == 1 and "no 2D adapter 'noise'" in r.output


def test_own_2d_file_keeps_the_files_own_ids(tmp_path, rng):
    """Frame and person ids as a detector wrote them (image names, say) are kept."""
    from tips_np.io.lifting import Poses
    pixels = rng.uniform(0, 100, (3, 17, 2))
    poses = Poses(pixels, np.array(["a.jpg", "b.jpg", "b.jpg"], object), np.array([0, 0, 1], object),
                  np.zeros((3, 17), bool))
    assert dataset.prepare_2d(poses, str(tmp_path / "own.h5"), "src") == 3
    with h5py.File(tmp_path / "own.h5", "r") as f:
        assert [v.decode() for v in f["frame"][()]] == ["a.jpg", "b.jpg", "b.jpg"]
        assert f["person"][()].tolist() == [0, 0, 1]
    own = dataset.load(str(tmp_path / "own.h5"), "train")
    assert len(own) == 3 and not own.has_3d.any()


def test_fine_tuning_the_lifter_on_its_adapters_poses(fitted, det_data, tmp_path):
    """adapt --lifter: distillation from itself (the teacher sees the projections), the
    student seeing projections, adapted detections and adapted noisy projections; the
    adapters travel with it unchanged, and a lifter lacking one is refused."""
    out, _, _ = fitted
    with pytest.raises(checkpoint.CheckpointError, match="no 2D adapter 'noise'"):
        fit_adapter.fit_student(out, det_data, str(tmp_path / "x.h5"), val_subject=5, echo=lambda *a: None)
    both = tmp_path / "both.h5"
    fit_adapter.fit(out, "noise", det_data, str(both), val_subject=5, epochs=1, width=16, batch_size=32,
                    echo=lambda *a: None)
    robust = tmp_path / "robust.h5"
    rows = fit_adapter.fit_student(str(both), det_data, str(robust), val_subject=5, epochs=2, batch_size=32,
                                   lr=1e-4, echo=lambda *a: None)
    assert [r["step"] for r in rows][0] == 0 and set(rows[0]) >= {"projections", "detections", "noise 10 px"}
    before, after = checkpoint.load(str(both)), checkpoint.load(str(robust))
    kept = min(rows, key=lambda r: r["mean"])
    assert after["config"]["robust"]["step"] == kept["step"]
    for k, v in before["params"].items():   # the adapters as they were; the lifter fine-tuned unless step 0 won
        if k.startswith("A/"):
            np.testing.assert_array_equal(after["params"][k], v)
    changed = any(not np.array_equal(after["params"][k], v) for k, v in before["params"].items() if k.startswith("G/"))
    assert changed == (kept["step"] != 0)


def test_orthographic_inputs_have_a_floor_of_zero(tiny_data):
    """--inputs orthographic (the TIPS authors' protocol): the 2D is the 3D pose's x, y,
    so its x, y with the true depths is the 3D pose itself."""
    split, variant = evaluate.scoring_set(tiny_data, "orthographic")
    assert variant == "orthographic"
    assert evaluate.floor(split)["Average"] < 1e-3   # (float32 poses)
    clean, _ = evaluate.scoring_set(tiny_data)
    assert evaluate.floor(clean)["Average"] > 1.0   # pinhole views: not the 3D pose's x, y
