"""Detector keypoints in (COCO-17, MMPose, COCO results, OpenPose, AlphaPose), the
17 Human3.6M joints out; missing keypoints; several people; outputs and pictures."""
import csv
import json
import os

import numpy as np
import pytest
from click.testing import CliRunner

from tips_np import draw, keypoints
from tips_np.cli import main
from tips_np.lifting import LiftError, read_poses
from tips_np.skeleton import JOINTS

EXAMPLE = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "examples",
                       "coco17_walking.json")
K = {name: i for i, name in enumerate(keypoints.COCO17)}
J = {name: i for i, name in enumerate(JOINTS)}


@pytest.fixture
def coco(rng):
    """Three poses of COCO-17 keypoints (pixels) and their scores."""
    return rng.uniform(100, 900, (3, 17, 2)), np.full((3, 17), 0.9)


def test_coco17_to_human36m_follows_mmpose_and_motionbert(coco):
    xy, score = coco
    h, s = keypoints.coco17_to_h36m(xy, score)
    mid = lambda a, b: (xy[:, K[a]] + xy[:, K[b]]) / 2  # noqa: E731
    np.testing.assert_allclose(h[:, J["hip"]], mid("left_hip", "right_hip"))
    np.testing.assert_allclose(h[:, J["thorax"]], mid("left_shoulder", "right_shoulder"))
    np.testing.assert_allclose(h[:, J["spine"]], (h[:, J["hip"]] + h[:, J["thorax"]]) / 2)
    np.testing.assert_allclose(h[:, J["head"]], mid("left_eye", "right_eye"))
    np.testing.assert_allclose(h[:, J["neck"]], xy[:, K["nose"]])
    for limb in ("hip", "knee", "ankle", "shoulder", "elbow", "wrist"):
        for side in ("left", "right"):
            np.testing.assert_array_equal(h[:, J[f"{side}_{limb}"]], xy[:, K[f"{side}_{limb}"]])
    score[0, K["left_eye"]] = 0.1
    assert keypoints.coco17_to_h36m(xy, score)[1][0, J["head"]] == 0.1   # made joints: the lowest score


def _write(tmp_path, name, content):
    path = tmp_path / name
    if name.endswith(".npy"):
        np.save(path, content)
    else:
        path.write_text(json.dumps(content))
    return str(path)


def openpose_person(xy, score, n):
    """One person's COCO-17 keypoints in OpenPose's BODY_25 (n = 25) or COCO-18 layout
    (the slots COCO-17 lacks, such as the neck, stay at (0, 0) with score 0)."""
    full = np.zeros((n, 3))
    full[keypoints.OPENPOSE_TO_COCO17[n]] = np.concatenate([xy, score[:, None]], axis=1)
    return {"pose_keypoints_2d": full.ravel().tolist()}


def layouts(tmp_path, xy, score):
    """The same three people (one per frame) in every layout lift reads."""
    triples = [np.concatenate([p, s[:, None]], axis=1).ravel().tolist() for p, s in zip(xy, score)]
    return {
        "mmpose": _write(tmp_path, "mm.json", [{"frame_id": f, "instances": [
            {"keypoints": xy[f].tolist(), "keypoint_scores": score[f].tolist()}]} for f in range(3)]),
        "coco-results": _write(tmp_path, "coco.json", [{"image_id": 7 + f, "category_id": 1, "keypoints": t,
                                                        "score": 1.0} for f, t in enumerate(triples)]),
        "alphapose": _write(tmp_path, "alpha.json", [{"image_id": f"{f}.jpg", "keypoints": t, "idx": 0}
                                                    for f, t in enumerate(triples)]),
        "coco17": _write(tmp_path, "c.npy", np.concatenate([xy, score[..., None]], axis=-1)),
        "openpose25": _write(tmp_path, "op25.json", {"people": [openpose_person(xy[0], score[0], 25)]}),
        "openpose18": _write(tmp_path, "op18.json", {"people": [openpose_person(xy[0], score[0], 18)]}),
    }


def test_every_layout_is_recognised_and_gives_the_same_joints(tmp_path, coco):
    xy, score = coco
    expected = keypoints.coco17_to_h36m(xy, score)[0]
    files = layouts(tmp_path, xy, score)
    for layout, path in files.items():
        poses = read_poses(path)
        n = 1 if layout.startswith("openpose") else 3
        np.testing.assert_allclose(poses.pixels, expected[:n], err_msg=layout)
        assert list(poses.frame) == list(range(n)) and not poses.filled.any(), layout
        fmt = "openpose" if layout.startswith("openpose") else layout
        np.testing.assert_allclose(read_poses(path, fmt).pixels, expected[:n], err_msg=layout)
    plain = _write(tmp_path, "plain.npy", xy)   # (N, 17, 2) is Human3.6M order unless told
    np.testing.assert_allclose(read_poses(plain, "coco17").pixels, expected)
    np.testing.assert_allclose(read_poses(plain).pixels, xy)


def test_a_missing_keypoint_is_filled_over_time_and_marked():
    poses = read_poses(EXAMPLE)
    wrist = J["left_wrist"]
    assert poses.filled.sum() == 1 and poses.filled[5, wrist]
    frames = poses.frame.astype(float)
    t = (frames[5] - frames[4]) / (frames[6] - frames[4])
    np.testing.assert_allclose(poses.pixels[5, wrist], (1 - t) * poses.pixels[4, wrist] + t * poses.pixels[6, wrist])
    kept = read_poses(EXAMPLE, min_score=0.05)          # a lower bar keeps the detector's point
    assert not kept.filled.any() and not np.allclose(kept.pixels[5, wrist], poses.pixels[5, wrist])


def test_a_single_pose_missing_a_joint_is_refused(tmp_path, coco):
    xy, score = coco
    score[1, K["right_knee"]] = 0.05
    xy[2, K["left_ankle"]] = 0                          # OpenPose's missing point: (0, 0)
    for frame, joint in ((1, "right_knee"), (2, "left_ankle")):
        path = _write(tmp_path, f"one{frame}.json", [{"image_id": 1, "keypoints": np.concatenate(
            [xy[frame], score[frame][:, None]], axis=1).ravel().tolist()}])
        with pytest.raises(LiftError, match=f"pose 0 .*: joint '{joint}' is missing"):
            read_poses(path)


def test_several_people_per_frame_keep_their_ids(tmp_path, coco):
    xy, score = coco
    frames = [{"people": [openpose_person(xy[p], score[p], 18) for p in (0, 1)]} for _ in range(2)]
    poses = read_poses(_write(tmp_path, "two.json", frames), "openpose")
    assert list(poses.frame) == [0, 0, 1, 1] and list(poses.person) == [0, 1, 0, 1]
    np.testing.assert_allclose(poses.pixels[1], keypoints.coco17_to_h36m(xy[1:2], score[1:2])[0][0])


@pytest.mark.parametrize("content,message", [
    ({"people": [{"pose_keypoints_2d": [1.0] * 30}]}, "frame 0, person 0 ('pose_keypoints_2d'): expected BODY_25"),
    ([{"image_id": 3, "keypoints": [1, 2]}], "entry 0 ('keypoints'): expected 51 numbers"),
    ([{"frame_id": 0, "instances": [{"keypoints": [[1, 2]] * 16, "keypoint_scores": [1] * 16}]}],
     "frame 0, instance 0: expected 17 COCO keypoints"),
    ({"people": []}, "no people"),
])
def test_bad_detector_files_are_refused_in_one_line(tmp_path, teacher_free_model, content, message):
    path = _write(tmp_path, "bad.json", content)
    out = tmp_path / "out.json"
    r = CliRunner().invoke(main, ["lift", teacher_free_model, "--input", path, "--output", str(out)])
    assert r.exit_code == 1 and message in r.output and path in r.output, r.output
    assert len(r.output.strip().splitlines()) == 1 and not out.exists()


@pytest.fixture(scope="module")
def teacher_free_model(tmp_path_factory, tiny_data):
    run = str(tmp_path_factory.mktemp("runs") / "full")
    r = CliRunner().invoke(main, ["train", "--parts", "full", "--width", "16", "--blocks", "1", "--epochs", "1",
                                  "--data", tiny_data, "--out", run])
    assert r.exit_code == 0, r.output
    return run


def test_lift_writes_csv_and_json_with_ids_units_and_axes(tmp_path, teacher_free_model):
    out_json, out_csv = tmp_path / "w.json", tmp_path / "w.csv"
    for out in (out_json, out_csv):
        r = CliRunner().invoke(main, ["lift", teacher_free_model, "--input", EXAMPLE, "--output", str(out)])
        assert r.exit_code == 0 and "1 with joints filled over time" in r.output, r.output
    d = json.loads(out_json.read_text())
    assert "z away from the camera" in d["axes"] and "pose_3d_pixels" in d["units"]
    assert len(d["pose_3d_pixels"]) == 12 and d["filled"][5] == ["left_wrist"] and d["person"] == [0] * 12
    with open(out_csv) as f:
        rows = list(csv.reader(f))
    assert rows[0][:3] == ["frame", "person", "hip_x"] and len(rows) == 13 and rows[6][-1] == "left_wrist"
    np.testing.assert_allclose(np.array(rows[1][2:-1], float).reshape(17, 3), d["pose_3d_pixels"][0], atol=1e-3)


def test_lift_draws_a_picture_or_says_how_to_get_matplotlib(tmp_path, teacher_free_model, monkeypatch):
    args = ["lift", teacher_free_model, "--input", EXAMPLE, "--output", str(tmp_path / "o.json")]
    if draw.plotting() is not None:
        for name in ("pose.png", "walk.gif"):
            r = CliRunner().invoke(main, args + ["--plot", str(tmp_path / name)])
            assert r.exit_code == 0 and f"drawn: {tmp_path / name}" in r.output, r.output
            assert (tmp_path / name).stat().st_size > 1000
    monkeypatch.setattr(draw, "plotting", lambda: None)
    r = CliRunner().invoke(main, args + ["--plot", str(tmp_path / "none.png")])
    assert r.exit_code == 0 and "pip install -e '.[plot]'" in r.output and not (tmp_path / "none.png").exists()
