"""Smoothing tracks over time (smoothing.py, lift --smooth, evaluate --smooth) and the
mirror average of the depths (model.predict_depths, --mirror-average)."""
import json

import numpy as np
import pytest
from click.testing import CliRunner

from tips_np.cli import main
from tips_np.io import checkpoint, dataset
from tips_np.io.smoothing import SmoothingError, gaussian_weights, smooth_tracks
from tips_np.method.model import predict_depths
from tips_np.method.skeleton import JOINTS, MIRROR
from tips_np.tools.evaluate import scoring_set


def _walk(n, rng, jitter=3.0):
    """A pose walking right at 2 px a frame (n, 17, 2), and the same with jitter."""
    pose = rng.uniform(0, 200, (17, 2))
    path = pose + np.arange(n)[:, None, None] * np.array([2.0, 0.0])
    return path, path + rng.normal(0, jitter, path.shape)


def test_smoothing_takes_the_jitter_out_and_keeps_a_steady_motion(rng):
    truth, seen = _walk(200, rng)
    smoothed = smooth_tracks(seen, np.zeros(200), np.arange(200), 4)
    assert np.abs(smoothed - truth).mean() < 0.4 * np.abs(seen - truth).mean()
    # a motion at constant speed is its own weighted mean where the window is whole (a symmetric w)
    r = len(gaussian_weights(4)) // 2
    inner = slice(r, 200 - r)
    assert np.allclose(smooth_tracks(truth, np.zeros(200), np.arange(200), 4)[inner], truth[inner])


def test_people_are_smoothed_apart_and_nothing_is_invented(rng):
    _, a = _walk(30, rng)
    _, b = _walk(30, rng)
    b[10, 5] = np.nan   # a joint not seen stays not seen, and does not spoil its neighbours
    pixels = np.concatenate([a, b])
    person = np.repeat(["ann", "bob"], 30)
    frame = np.tile(np.arange(30), 2)
    order = rng.permutation(60)   # rows in any order: each keeps its own place
    out = smooth_tracks(pixels[order], person[order], frame[order], 2)[np.argsort(order)]
    assert np.allclose(out[:30], smooth_tracks(a, np.zeros(30), np.arange(30), 2))
    assert np.isnan(out[30 + 10, 5]).all() and np.isfinite(np.delete(out, 40, axis=0)).all()
    assert np.isfinite(out[40, np.arange(17) != 5]).all()


def test_a_pose_alone_and_frames_out_of_reach_keep_their_values(rng):
    _, seen = _walk(4, rng)
    # unrelated images (each its own frame far apart, or each its own person) are left as they are
    assert np.array_equal(smooth_tracks(seen, np.zeros(4), [0, 100, 200, 300], 2), seen)
    assert np.array_equal(smooth_tracks(seen, np.arange(4), np.zeros(4), 2), seen)
    assert not np.array_equal(smooth_tracks(seen, np.zeros(4), np.arange(4), 2), seen)
    assert np.array_equal(smooth_tracks(seen, np.zeros(4), np.arange(4), 0), seen)


def test_tracks_that_cannot_be_smoothed_are_refused_in_words(rng):
    _, seen = _walk(3, rng)
    with pytest.raises(SmoothingError, match="person 7 appears twice in frame 1"):
        smooth_tracks(seen, [7, 7, 7], [0, 1, 1], 2)
    with pytest.raises(SmoothingError, match="not numbered"):
        smooth_tracks(seen, [0, 0, 0], ["a.jpg", "b.jpg", "c.jpg"], 2)


def test_mirror_average_treats_a_pose_and_its_mirror_image_alike(rng):
    assert [JOINTS[m] for m in MIRROR][1:4] == ["left_hip", "left_knee", "left_ankle"]
    assert [MIRROR[m] for m in MIRROR] == list(range(17))
    ckpt = checkpoint.load(checkpoint.PRETRAINED)
    gen, params, state = checkpoint.load_model(ckpt)
    pose_2d = dataset.load(None, "test").pose_2d[:64]
    mirrored = pose_2d[:, MIRROR] * np.array([-1, 1], np.float32)
    z = predict_depths(gen, params, state, pose_2d, mirror_average=True)
    # the mirror image's averaged depths are the pose's, joints swapped (the same two terms added)
    assert np.array_equal(predict_depths(gen, params, state, mirrored, mirror_average=True), z[:, MIRROR])
    plain = predict_depths(gen, params, state, pose_2d)
    assert np.array_equal(z, (plain + predict_depths(gen, params, state, mirrored)[:, MIRROR]) / 2)
    assert not np.allclose(z, plain)


def test_lift_smooths_a_video_and_says_so(tmp_path, rng):
    test = dataset.load(None, "test")
    pose = test.pose_2d[0].astype(np.float64) * test.scale[0] + test.root[0]   # a person in pixels
    seen = pose + np.arange(40)[:, None, None] * np.array([2.0, 0]) + rng.normal(0, 3, (40, 17, 2))
    np.save(tmp_path / "video.npy", seen)
    runner = CliRunner()
    outs = {}
    for name, extra in (("plain", []), ("smooth", ["--smooth", "3", "--mirror-average"])):
        out = tmp_path / f"{name}.json"
        r = runner.invoke(main, ["lift", "--input", str(tmp_path / "video.npy"), "--output", str(out), *extra])
        assert r.exit_code == 0, r.output
        outs[name] = json.loads(out.read_text())
        assert ("smoothed over time" in r.output) == (name == "smooth")
    assert outs["smooth"]["frame"] == outs["plain"]["frame"] == list(range(40))
    assert not np.allclose(outs["smooth"]["pose_3d_pixels"], outs["plain"]["pose_3d_pixels"])
    r = runner.invoke(main, ["lift", "--input", str(tmp_path / "video.npy"), "--output", str(tmp_path / "x.json"),
                             "--smooth", "-1"])
    assert r.exit_code == 2 and "--smooth" in r.output


def test_evaluate_smooths_each_video_of_the_scored_subject(tmp_path):
    """A prepared file whose people stand still for 5 frames: noise smoothed over them
    comes closer to the clean 2D, and the scored rows are those scored without --smooth."""
    import h5py
    path = tmp_path / "still.h5"
    with h5py.File(dataset.DEFAULT_DATA) as f, h5py.File(path, "w") as g:
        g.attrs.update(f.attrs)
        for name in f:
            g[name] = np.repeat(f[name][()], 5, axis=0)
        g["frame"][...] = np.repeat(f["frame"][()], 5) + np.tile(np.arange(5), len(f["frame"]))
    clean, _ = scoring_set(str(path), subject=1)
    smoothed, variant = scoring_set(str(path), subject=1, smooth=2, noise=10)
    noisy, _ = scoring_set(str(path), subject=1, noise=10)
    assert variant == "S1.noise10-seed0.smooth2" and np.array_equal(smoothed.row, clean.row)
    assert np.abs(smoothed.pose_2d - clean.pose_2d).mean() < 0.6 * np.abs(noisy.pose_2d - clean.pose_2d).mean()


def test_lift_refuses_to_smooth_single_images(tmp_path):
    """COCO results of unrelated images: consecutive image ids are not a video, and
    smoothing would blend one image's person into the next's."""
    from test_formats import triples, walk, write
    path = write(tmp_path, "results.json", [{"image_id": 7 + t, "category_id": 1, "keypoints": triples(p, "coco17"),
                                             "score": 0.9} for t, p in enumerate(walk(3))])
    r = CliRunner().invoke(main, ["lift", "--input", path, "--output", str(tmp_path / "out.json"), "--smooth", "2"])
    assert r.exit_code == 1 and "single images" in r.output and not (tmp_path / "out.json").exists()
    r = CliRunner().invoke(main, ["lift", "--input", path, "--output", str(tmp_path / "out.json")])
    assert r.exit_code == 0, r.output
