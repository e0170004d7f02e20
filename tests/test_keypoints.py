"""Detector keypoints in, the 17 Human3.6M joints out: the mappings and their fallbacks,
missing keypoints, several people, outputs and pictures. The files of each layout are
in tests/test_formats.py."""
import csv
import json
import os

import numpy as np
import pytest
from click.testing import CliRunner

from test_formats import write
from tips_np.cli import main
from tips_np.io import keypoints
from tips_np.io.lifting import LiftError, read_poses
from tips_np.method.skeleton import JOINTS
from tips_np.tools import draw

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


def test_a_side_view_still_has_a_head_and_a_missing_eye_is_named(coco):
    """A side view sees one eye and one ear: the head is their mean; with neither, the
    message names the unseen eyes and ears, not only 'head'."""
    xy, score = coco
    score[0, [K["right_eye"], K["right_ear"]]] = 0          # seen from the person's left
    h, _ = keypoints.coco17_to_h36m(xy, score, 0.3)
    np.testing.assert_allclose(h[0, J["head"]], (xy[0, K["left_eye"]] + xy[0, K["left_ear"]]) / 2)
    np.testing.assert_allclose(h[1, J["head"]], (xy[1, K["left_eye"]] + xy[1, K["right_eye"]]) / 2)
    score[0, [K["left_eye"], K["left_ear"], K["nose"]]] = 0
    h, _ = keypoints.coco17_to_h36m(xy, score, 0.3)
    assert np.isnan(h[0, J["head"]]).all() and np.isnan(h[0, J["neck"]]).all()
    why = keypoints.unseen_sources(score[0], keypoints.COCO17, keypoints.H36M_FROM_COCO17, J["head"], 0.3)
    assert set(why) == {"left_eye", "right_eye", "left_ear", "right_ear"}


def test_halpe26_uses_its_own_head_neck_and_hip_first(rng):
    xy, score = rng.uniform(100, 900, (2, 26, 2)), np.ones((2, 26))
    h, _ = keypoints.convert(xy, score, keypoints.HALPE26, keypoints.H36M_FROM_HALPE26)
    for joint, own in (("hip", "hip"), ("thorax", "neck"), ("head", "head")):
        np.testing.assert_allclose(h[:, J[joint]], xy[:, keypoints.HALPE26.index(own)])
    score[1, keypoints.HALPE26.index("head")] = 0                 # unseen: the COCO-17 rule
    h, _ = keypoints.convert(xy, score, keypoints.HALPE26, keypoints.H36M_FROM_HALPE26)
    np.testing.assert_allclose(h[1, J["head"]], (xy[1, K["left_eye"]] + xy[1, K["right_eye"]]) / 2)


def test_mpii_to_h36m_follows_its_table(rng):
    """mpii_to_h36m is H36M_FROM_MPII, whatever its entries: each joint the weighted sum."""
    xy, score = rng.uniform(100, 900, (4, 16, 2)), rng.uniform(0.5, 1, (4, 16))
    h, s = keypoints.mpii_to_h36m(xy, score)
    assert h.shape == (4, 17, 2) and s.shape == (4, 17)
    for j, weights in enumerate(keypoints.H36M_FROM_MPII):
        want = sum(w * xy[:, keypoints.MPII16.index(k)] for k, w in weights.items())
        np.testing.assert_allclose(h[:, j], want)
        np.testing.assert_allclose(s[:, j], np.min([score[:, keypoints.MPII16.index(k)] for k in weights], axis=0))


def test_a_missing_keypoint_is_filled_over_time_and_marked():
    poses = read_poses(EXAMPLE)
    wrist = J["left_wrist"]
    assert poses.filled.sum() == 1 and poses.filled[5, wrist]
    frames = poses.frame.astype(float)
    t = (frames[5] - frames[4]) / (frames[6] - frames[4])
    np.testing.assert_allclose(poses.pixels[5, wrist], (1 - t) * poses.pixels[4, wrist] + t * poses.pixels[6, wrist])
    kept = read_poses(EXAMPLE, min_score=0.05)          # a lower bar keeps the detector's point
    assert not kept.filled.any() and not np.allclose(kept.pixels[5, wrist], poses.pixels[5, wrist])


def test_a_single_image_missing_a_joint_has_nobody_to_lift(tmp_path, coco):
    xy, score = coco
    score[1, K["right_knee"]] = 0.05
    xy[2, K["left_ankle"]] = 0                          # OpenPose's missing point: (0, 0)
    for frame, joint in ((1, "right_knee"), (2, "left_ankle")):
        path = write(tmp_path, f"one{frame}.json", [{"image_id": 1, "keypoints": np.concatenate(
            [xy[frame], score[frame][:, None]], axis=1).ravel().tolist()}])
        with pytest.raises(LiftError, match=f"nobody to lift: .*frame 1, person 0: joint '{joint}' missing: {joint}"):
            read_poses(path)


@pytest.mark.parametrize("content,message", [
    ({"people": [{"pose_keypoints_2d": [1.0] * 30}]}, "frame 0, person 0 ('pose_keypoints_2d'): 10 keypoints"),
    ([{"image_id": 3, "keypoints": [1, 2]}], "entry 0 ('keypoints'): expected x, y, score per keypoint"),
    ([{"frame_id": 0, "instances": [{"keypoints": [[1, 2]] * 16, "keypoint_scores": [1] * 16}]}],
     "16 keypoints; expected 17 (coco17)"),
    ({"people": []}, "no people"),
])
def test_bad_detector_files_are_refused_in_one_line(tmp_path, content, message):
    path = write(tmp_path, "bad.json", content)
    out = tmp_path / "out.json"
    r = CliRunner().invoke(main, ["lift", "--input", path, "--output", str(out)])
    assert r.exit_code == 1 and message in r.output and path in r.output, r.output
    assert len(r.output.strip().splitlines()) == 1 and not out.exists()


def test_lift_writes_csv_and_json_with_ids_flags_units_and_axes(tmp_path):
    out_json, out_csv, out_npy = tmp_path / "w.json", tmp_path / "w.csv", tmp_path / "w.npy"
    for out in (out_json, out_csv, out_npy):
        r = CliRunner().invoke(main, ["lift", "--input", EXAMPLE, "--output", str(out)])
        assert r.exit_code == 0 and "1 with joints filled over time" in r.output, r.output
    text = out_json.read_text()
    assert "NaN" not in text and "Infinity" not in text
    d = json.loads(text)
    assert "z away from the camera" in d["axes"] and "pose_3d_pixels" in d["units"]
    assert len(d["pose_3d_pixels"]) == 12 and d["filled"][5] == ["left_wrist"] and d["person"] == [0] * 12
    assert d["flags"][5][0] == "filled: left_wrist" and len(d["flags"]) == 12
    frames = [f["frame_id"] for f in json.load(open(EXAMPLE))]
    assert d["frame"] == frames                         # the file's own frame ids
    with open(out_csv) as f:
        rows = list(csv.reader(f))
    assert rows[0][:3] == ["frame", "person", "hip_x"] and rows[0][-2:] == ["filled", "flags"] and len(rows) == 13
    assert rows[6][-2] == "left_wrist" and "filled: left_wrist" in rows[6][-1] and rows[6][0] == str(frames[5])
    np.testing.assert_allclose(np.array(rows[1][2:-2], float).reshape(17, 3), d["pose_3d_pixels"][0], atol=1e-3)
    ids = json.loads((tmp_path / "w.ids.json").read_text())
    assert ids["frame"] == frames and ids["flags"] == d["flags"] and np.load(out_npy).shape == (12, 2, 17, 3)


def test_lift_refuses_to_write_over_its_input(tmp_path):
    src = tmp_path / "in.json"
    src.write_text(open(EXAMPLE).read())
    before = src.read_text()
    r = CliRunner().invoke(main, ["lift", "--input", str(src), "--output", str(src)])
    assert r.exit_code == 1 and "is the input file" in r.output and src.read_text() == before, r.output


def test_lift_draws_the_chosen_pose_or_says_how_to_get_matplotlib(tmp_path, monkeypatch):
    args = ["lift", "--input", EXAMPLE, "--output", str(tmp_path / "o.json")]
    if draw.plotting() is not None:
        drawn = []
        real = draw.plot_pose
        monkeypatch.setattr(draw, "plot_pose",
                            lambda path, px, p3, title: drawn.append(title) or real(path, px, p3, title))
        r = CliRunner().invoke(main, args + ["--plot", str(tmp_path / "pose.png")])
        assert r.exit_code == 0 and f"drawn: {tmp_path / 'pose.png'}" in r.output, r.output
        frames = [f["frame_id"] for f in json.load(open(EXAMPLE))]
        assert drawn[-1].endswith(f"frame {frames[0]}, person 0")
        r = CliRunner().invoke(main, args + ["--plot", str(tmp_path / "p5.png"), "--plot-frame", str(frames[5])])
        assert r.exit_code == 0 and drawn[-1].endswith(f"frame {frames[5]}, person 0"), r.output
        r = CliRunner().invoke(main, args + ["--plot", str(tmp_path / "x.png"), "--plot-person", "7"])
        assert r.exit_code == 1 and "no lifted pose of person 7" in r.output
        r = CliRunner().invoke(main, args + ["--plot", str(tmp_path / "walk.gif"), "--every", "4"])
        assert r.exit_code == 0 and "drawing" in r.output and (tmp_path / "walk.gif").stat().st_size > 1000
        from PIL import Image
        assert Image.open(tmp_path / "walk.gif").n_frames == 3   # 12 poses, every 4th
        fig, axes, _ = draw._panels(draw.plotting(), np.zeros((17, 2)), np.zeros((17, 3)), "t")
        assert axes[0].get_legend() is None and fig.legends   # the legend sits below, off the skeletons
        draw.plotting().close(fig)
    monkeypatch.setattr(draw, "plotting", lambda: None)
    r = CliRunner().invoke(main, args + ["--plot", str(tmp_path / "none.png")])
    assert r.exit_code == 0 and "pip install -e '.[plot]'" in r.output and not (tmp_path / "none.png").exists()
