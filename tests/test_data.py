"""Human3.6M preparation, the shipped sample, and the loader."""
import os

import h5py
import numpy as np
import pytest
from click.testing import CliRunner

from tips_np.cli import main
from tips_np.io import dataset, h36m
from tips_np.method import skeleton


def test_sample_covers_every_subject_and_action_of_both_splits(sample_path):
    with h5py.File(sample_path, "r") as f:
        assert f.attrs["frame_step"] == 64 and not f.attrs["distortion"]
        subject, action = f["subject"][()], f["action"][()]
        takes = f["take"][()]
        assert len(f.attrs["takes"]) == 205  # every sequence that the data has
        assert set(np.unique(takes)) == set(range(205))
    for split in (skeleton.TRAIN_SUBJECTS, skeleton.TEST_SUBJECTS):
        assert set(action[np.isin(subject, split)]) == set(range(15)), f"{split} lacks an action"
    assert set(np.unique(subject)) == set(skeleton.SUBJECTS)
    assert os.path.getsize(sample_path) < 10e6


def test_camera_convention_on_the_sample(sample_path):
    """Every joint 2-8.5 m in front of its camera (docs/data.md: about 2.5-8 m) and
    (nearly all) inside the 1000x1000 image."""
    with h5py.File(sample_path, "r") as f:
        p2, p3 = f["pose_2d"][()], f["pose_3d"][()]
    assert p3[..., 2].min() > 2000 and p3[..., 2].max() < 8500
    inside = np.all((p2 >= 0) & (p2 <= 1000), axis=-1)
    assert inside.mean() > 0.999  # a few feet and hands leave the frame in the real data
    assert p2.min() > -100 and p2.max() < 1100


def test_joint_selection_root_and_sides(sample_path):
    with h5py.File(sample_path, "r") as f:
        p3 = f["pose_3d"][:2000]
    # the root is the hip midpoint
    np.testing.assert_allclose(p3[:, 0], (p3[:, 1] + p3[:, 4]) / 2, atol=0.5)
    # the head is above the hips (camera y points down) and the ankles below
    J = skeleton.JOINTS.index
    assert np.mean(p3[:, J("head"), 1] < p3[:, 0, 1]) > 0.95
    assert np.mean(p3[:, J("left_ankle"), 1] > p3[:, 0, 1]) > 0.95
    # left limbs hang off the left hip, right limbs off the right one
    for side in ("left", "right"):
        for a, b in (("hip", "knee"), ("shoulder", "elbow"), ("elbow", "wrist")):
            bone = np.linalg.norm(p3[:, J(f"{side}_{a}")] - p3[:, J(f"{side}_{b}")], axis=-1)
            assert 150 < np.median(bone) < 500, f"{side} {a}-{b}: {np.median(bone):.0f} mm"
    left_hip = np.linalg.norm(p3[:, J("left_hip")] - p3[:, J("left_knee")], axis=-1)
    cross = np.linalg.norm(p3[:, J("left_hip")] - p3[:, J("right_knee")], axis=-1)
    assert np.median(cross) > np.median(left_hip)


def test_normalisation_invariants(sample_path):
    train = dataset.load(sample_path, "train")
    assert train.pose_2d.dtype == np.float32
    np.testing.assert_array_equal(train.pose_2d[:, 0], 0)       # root-centred
    np.testing.assert_allclose(np.abs(train.pose_2d).max(axis=(1, 2)), 1.0, rtol=1e-6)  # max-normalised
    with h5py.File(sample_path, "r") as f:
        keep = np.isin(f["subject"][()], skeleton.TRAIN_SUBJECTS)
        raw = f["pose_2d"][()][keep]
    back = train.pose_2d * train.scale[:, None, None] + raw[:, :1]  # the scale is kept
    np.testing.assert_allclose(back, raw, atol=1e-3)
    test = dataset.load(sample_path, "test")
    assert set(np.unique(test.subject)) == {9, 11} and set(np.unique(train.subject)) == {1, 5, 6, 7, 8}
    np.testing.assert_array_equal(test.pose_3d[:, 0], 0)


def test_batches_are_seeded_and_cover_each_pose_once(sample_path):
    train = dataset.load(sample_path, "train")
    a = list(train.batches(1000, np.random.default_rng(3)))
    b = list(train.batches(1000, np.random.default_rng(3)))
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    seen = np.concatenate(a)
    assert len(seen) == len(train) // 1000 * 1000 and len(np.unique(seen)) == len(seen)
    assert len(list(train.batches(10 ** 6, np.random.default_rng(0)))[0]) == len(train)


def _tiny_tree(tmp_path, n=12):
    """A two-subject tree in the 3d-pose-baseline layout with crafted cameras."""
    rng = np.random.default_rng(0)
    root = tmp_path / "h36m"
    root.mkdir()
    with h5py.File(root / "cameras.h5", "w") as f:
        for s in (1, 9):
            for c in range(1, 5):
                R = np.eye(3)
                f[f"subject{s}/camera{c}/R"] = R
                f[f"subject{s}/camera{c}/T"] = np.array([[0.0], [-5000.0 - 100 * c], [0.0]])
                f[f"subject{s}/camera{c}/f"] = np.array([[1145.0], [1144.0]])
                f[f"subject{s}/camera{c}/c"] = np.array([[512.0], [515.0]])
                f[f"subject{s}/camera{c}/k"] = np.zeros((3, 1))
                f[f"subject{s}/camera{c}/p"] = np.zeros((2, 1))
    for s in (1, 9):
        d = root / f"S{s}" / "MyPoses" / "3D_positions"
        d.mkdir(parents=True)
        for name in ("Walking.h5", "Photo 1.h5"):
            # world points near (0, 0, 0) viewed along +y from y = -5 m: R = I maps y to depth
            pts = rng.normal(0, 300, (n, 32, 3))
            pts[:, :, 2] = rng.normal(0, 300, (n, 32))
            with h5py.File(d / name, "w") as f:
                f["3D_positions"] = pts.reshape(n, 96).T.astype(np.float64)
    return root


def _swap_yz(root):
    """Make the crafted cameras look along +y: R maps world y to camera depth."""
    with h5py.File(root / "cameras.h5", "a") as f:
        for key in list(f):
            for c in f[key]:
                del f[f"{key}/{c}/R"]
                # stored R is transposed on reading; store R^T
                R = np.array([[1.0, 0, 0], [0, 0, -1], [0, 1, 0]])
                f[f"{key}/{c}/R"] = R.T


def test_prepare_round_trip(tmp_path):
    root = _tiny_tree(tmp_path)
    _swap_yz(root)
    out = tmp_path / "out.h5"
    n = h36m.prepare(str(root), str(out), every=3, subjects=[1, 9])
    assert n == 2 * 2 * 4 * 4  # subjects x sequences x cameras x frames
    with h5py.File(out, "r") as f:
        p2, p3, frame = f["pose_2d"][()], f["pose_3d"][()], f["frame"][()]
        assert set(frame) == {0, 3, 6, 9}
        assert sorted(f.attrs["actions"][f["action"][()]]) .count("TakingPhoto") == n // 2
    # pinhole projection of the stored camera-frame pose gives the stored pixels
    np.testing.assert_allclose(p2, p3[..., :2] / p3[..., 2:] * [1145, 1144] + [512, 515], rtol=1e-5)
    assert not [p for p in os.listdir(tmp_path) if ".tmp" in p]


@pytest.mark.parametrize("damage,message", [
    ("no_folder", "folder not found"),
    ("no_camera", "missing camera group"),
    ("bad_shape", "should have shape (96, T)"),
    ("nan", "non-finite"),
    ("behind", "puts joints"),
    ("not_hdf5", "not a readable HDF5"),
])
def test_prepare_refuses_bad_input_and_writes_nothing(tmp_path, damage, message):
    root = _tiny_tree(tmp_path)
    _swap_yz(root)
    seq = root / "S1" / "MyPoses" / "3D_positions" / "Walking.h5"
    if damage == "no_folder":
        os.rename(root / "S9", root / "S9_gone")
    elif damage == "no_camera":
        with h5py.File(root / "cameras.h5", "a") as f:
            del f["subject9/camera3"]
    elif damage in ("bad_shape", "nan"):
        with h5py.File(seq, "a") as f:
            data = f["3D_positions"][()]
            del f["3D_positions"]
            if damage == "nan":
                data[5, 2] = np.nan
            f["3D_positions"] = data if damage == "nan" else data[:90]
    elif damage == "behind":
        with h5py.File(root / "cameras.h5", "a") as f:
            f["subject1/camera2/T"][...] = np.array([[0.0], [5000.0], [0.0]])
    elif damage == "not_hdf5":
        seq.write_bytes(b"this is not an HDF5 file")
    out = tmp_path / "out.h5"
    result = CliRunner().invoke(main, ["prepare-data", "--h36m", str(root), "--out", str(out),
                                       "--subjects", "1,9"])
    assert result.exit_code == 1
    assert message in result.output and "Traceback" not in result.output
    assert not out.exists() and not [p for p in os.listdir(tmp_path) if ".tmp" in p]


def test_loader_refuses_a_file_that_is_not_prepared_data(tmp_path):
    bad = tmp_path / "bad.h5"
    with h5py.File(bad, "w") as f:
        f["pose_2d"] = np.zeros((3, 17, 2))
    with pytest.raises(h36m.DataError, match="missing dataset 'subject'"):   # (pose_3d may be absent: 2D only)
        dataset.load(str(bad))
    with pytest.raises(h36m.DataError, match="not found"):
        dataset.load(str(tmp_path / "absent.h5"))
    with h5py.File(bad, "a") as f:  # every field, but no record of which subjects are tested
        for name, shape in dataset.FIELDS.items():
            if name not in f:
                f[name] = np.zeros((3,) + shape)
    with pytest.raises(h36m.DataError, match="attribute 'test_subjects' is missing"):
        dataset.load(str(bad), "test")


def test_prepare_data_with_distortion_end_to_end(tmp_path):
    """--distortion applies the Brown-Conrady model to the stored camera-frame pose."""
    root = _tiny_tree(tmp_path)
    _swap_yz(root)
    k, p = np.array([-0.2, 0.1, -0.01]), np.array([0.003, -0.002])
    with h5py.File(root / "cameras.h5", "a") as f:
        for key in list(f):
            for c in f[key]:
                f[f"{key}/{c}/k"][...] = k[:, None]
                f[f"{key}/{c}/p"][...] = p[:, None]
    outs = {}
    for flag in ("--distortion", "--no-distortion"):
        outs[flag] = str(tmp_path / f"{flag}.h5")
        r = CliRunner().invoke(main, ["prepare-data", "--h36m", str(root), "--out", outs[flag], "--subjects", "1,9",
                                      flag])
        assert r.exit_code == 0, r.output
    with h5py.File(outs["--distortion"], "r") as f, h5py.File(outs["--no-distortion"], "r") as g:
        assert f.attrs["distortion"] and not g.attrs["distortion"]
        np.testing.assert_array_equal(f["pose_3d"][()], g["pose_3d"][()])
        x, y = (f["pose_3d"][..., i] / f["pose_3d"][..., 2] for i in (0, 1))
        r2 = x * x + y * y
        radial = 1 + k[0] * r2 + k[1] * r2 ** 2 + k[2] * r2 ** 3
        xd = x * radial + 2 * p[0] * x * y + p[1] * (r2 + 2 * x * x)
        yd = y * radial + p[0] * (r2 + 2 * y * y) + 2 * p[1] * x * y
        np.testing.assert_allclose(f["pose_2d"][()], np.stack([1145 * xd + 512, 1144 * yd + 515], -1), rtol=1e-5)
        assert np.abs(f["pose_2d"][()] - g["pose_2d"][()]).max() > 1   # pixels moved
