"""Every layout detectors write, in small files these tests make in that layout (never
copies of anyone's files), read into the same 17 joints; and every failure of issue 31:
merged people, a nested idx, BODY_25B read as BODY_25, a COCO-17 array read as
Human3.6M's order, a side view, a folder of frames, an incomplete bystander, invented
ends, images interpolated across, 3D files."""
import json
import pickle
import zipfile

import h5py
import numpy as np
import pytest
from click.testing import CliRunner

from tips_np.cli import main
from tips_np.errors import TipsError
from tips_np.io import keypoints
from tips_np.io.lifting import read_poses
from tips_np.method.skeleton import JOINTS

J = {name: i for i, name in enumerate(JOINTS)}
# a person standing, facing the camera (Human3.6M's 17 joints, pixels)
STANDING = np.array([[500, 500], [470, 500], [465, 640], [460, 780], [530, 500], [535, 640], [540, 780],
                     [500, 420], [500, 340], [500, 310], [500, 270], [540, 350], [570, 420], [590, 490],
                     [460, 350], [430, 420], [410, 490]], float)


def person(shift=(0.0, 0.0), scale=1.0):
    """Named keypoints of the standing person, moved: every name any set uses."""
    p = (STANDING - 500) * scale + 500 + np.asarray(shift)
    across = p[J["left_shoulder"]] - p[J["right_shoulder"]]
    named = {name: p[J[name]] for name in JOINTS if name.split("_")[0] in ("left", "right")}
    head = p[J["head"]]
    named.update(nose=p[J["neck"]], left_eye=head + 0.12 * across, right_eye=head - 0.12 * across,
                 left_ear=head + 0.25 * across, right_ear=head - 0.25 * across,
                 neck=p[J["thorax"]], mid_hip=p[J["hip"]], hip=p[J["hip"]], upper_neck=p[J["thorax"]] - [0, 20],
                 head_top=head - [0, 30], head=head - [0, 30], pelvis=p[J["hip"]], thorax=p[J["thorax"]])
    for side in ("left", "right"):
        ankle = named[f"{side}_ankle"]
        named.update({f"{side}_big_toe": ankle + [0, 20], f"{side}_small_toe": ankle + [5, 20],
                      f"{side}_heel": ankle + [0, 5]})
    return named


def keypoint_array(named, kset, unseen=()):
    """((K, 2), (K,)) of a keypoint set, with some keypoints unseen (score 0 at (0, 0))."""
    names = keypoints.KEYPOINT_SETS[kset]
    xy = np.array([named[n] for n in names], float)
    score = np.full(len(names), 0.9)
    for n in unseen:
        xy[names.index(n)], score[names.index(n)] = 0, 0
    return xy, score


def triples(named, kset, unseen=()):
    xy, score = keypoint_array(named, kset, unseen)
    return np.round(np.concatenate([xy, score[:, None]], axis=1), 3).ravel().tolist()


def expected(named, kset="coco17"):
    xy, score = keypoint_array(named, kset)
    return keypoints.to_h36m(xy[None], score[None], kset, 0.3)[0][0]


def write(tmp_path, name, content):
    path = tmp_path / name
    if name.endswith(".npy"):
        np.save(path, content)
    else:
        path.write_text(json.dumps(content))
    return str(path)


def walk(n, speed=4.0):
    """n frames of one person walking right."""
    return [person((speed * t, 0)) for t in range(n)]


# --- each layout --------------------------------------------------------------------------
def openpose_frame(people, kset="body25", key="pose_keypoints_2d", ids=None):
    return {"version": 1.3, "people": [{"person_id": [-1 if ids is None else ids[i]], key: triples(p, kset),
                                        "face_keypoints_2d": []} for i, p in enumerate(people)]}


def save_npz(path, positions, metadata):
    """A VideoPose3D custom archive as its prepare_data_2d_custom.py writes one."""
    np.savez_compressed(path, positions_2d=np.array(positions, dtype=object), metadata=np.array(metadata, dtype=object))
    return str(path)


@pytest.mark.parametrize("layout", ["body25", "body25b", "coco18", "openpose1.0", "openpose-list", "alphapose17",
                                    "halpe26", "mmpose-image", "mmpose-frames", "mmpose-save-predictions",
                                    "coco-annotations", "coco-results", "videopose3d", "mpii-h5", "mpii-npy",
                                    "coco17-npy-scores", "coco17-npy-geometry", "h36m-npy"])
def test_every_layout_reads_into_the_same_joints(tmp_path, layout):
    people = walk(3)
    kset = {"body25b": "body25b", "halpe26": "halpe26", "mpii-h5": "mpii", "mpii-npy": "mpii"}.get(layout, "coco17")
    args = {}
    if layout in ("body25", "body25b", "coco18"):
        path = write(tmp_path, "op.json", openpose_frame(people[:1], layout))
        people = people[:1]
    elif layout == "openpose1.0":
        path = write(tmp_path, "op.json", openpose_frame(people[:1], "coco18", "pose_keypoints"))
        people = people[:1]
    elif layout == "openpose-list":
        path = write(tmp_path, "op.json", [openpose_frame([p]) for p in people])
    elif layout in ("alphapose17", "halpe26"):
        path = write(tmp_path, "alphapose-results.json", [
            {"image_id": f"{t}.jpg", "category_id": 1, "keypoints": triples(p, kset), "score": 2.9,
             "box": [400, 250, 200, 560], "idx": [[0.0], [0.0]]} for t, p in enumerate(people)])
    elif layout == "mmpose-image":
        path = write(tmp_path, "mm.json", [{"keypoints": keypoint_array(people[0], "coco17")[0].tolist(),
                                            "keypoint_scores": [0.9] * 17, "bbox": [[400, 250, 600, 810]],
                                            "bbox_score": 0.98}])
        people = people[:1]
    elif layout in ("mmpose-frames", "mmpose-save-predictions"):
        frames = [{"frame_id": t, "instances": [{"keypoints": keypoint_array(p, "coco17")[0].tolist(),
                                                 "keypoint_scores": [0.9] * 17, "bbox": [[0, 0, 1, 1]]}]}
                  for t, p in enumerate(people)]
        if layout == "mmpose-save-predictions":
            frames = {"meta_info": {"dataset_name": "coco", "num_keypoints": 17,
                                    "keypoint_id2name": dict(enumerate(keypoints.COCO17))}, "instance_info": frames}
        path = write(tmp_path, "mm.json", frames)
    elif layout == "coco-annotations":
        anns = [{"id": 100 + t, "image_id": 7 + t, "category_id": 1, "iscrowd": 0, "num_keypoints": 17,
                 "keypoints": [v if (i % 3) < 2 else 2 for i, v in enumerate(triples(p, "coco17"))]}
                for t, p in enumerate(people)]
        anns.append({"id": 999, "image_id": 7, "category_id": 1, "iscrowd": 1, "num_keypoints": 0,
                     "keypoints": [0] * 51})
        path = write(tmp_path, "person_keypoints_val.json", {
            "images": [{"id": 7 + t, "file_name": f"{7 + t:012d}.jpg"} for t in range(3)], "annotations": anns,
            "categories": [{"id": 1, "name": "person", "keypoints": keypoints.COCO17}]})
    elif layout == "coco-results":
        path = write(tmp_path, "results.json", [{"image_id": 7 + t, "category_id": 1, "keypoints": triples(p, "coco17"),
                                                 "score": 0.9} for t, p in enumerate(people)])
    elif layout == "videopose3d":
        arr = np.stack([keypoint_array(p, "coco17")[0] for p in people]).astype(np.float32)
        path = save_npz(tmp_path / "data_2d_custom_myvideos.npz", {"walk.mp4": {"custom": [arr]}},
                        {"layout_name": "coco", "num_joints": 17,
                         "keypoints_symmetry": [[1, 3, 5, 7, 9, 11, 13, 15], [2, 4, 6, 8, 10, 12, 14, 16]],
                         "video_metadata": {"walk.mp4": {"w": 1000, "h": 1000}}})
    elif layout == "mpii-h5":
        path = str(tmp_path / "Walking.54138969.h5")
        with h5py.File(path, "w") as f:
            f["poses"] = np.stack([keypoint_array(p, "mpii")[0] for p in people]).astype(np.float32)
    elif layout == "mpii-npy":
        path = write(tmp_path, "sh.npy", np.stack([keypoint_array(p, "mpii")[0] for p in people]))
        args = {"fmt": "mpii"}
    elif layout == "coco17-npy-scores":
        path = write(tmp_path, "c.npy", np.stack([np.concatenate([xy, s[:, None]], 1) for xy, s in
                                                  (keypoint_array(p, "coco17") for p in people)]))
    elif layout == "coco17-npy-geometry":       # no scores, no --format: its geometry decides
        path = write(tmp_path, "c.npy", np.stack([keypoint_array(p, "coco17")[0] for p in people]))
    else:
        path = write(tmp_path, "h.npy", np.stack([expected(p) for p in people]))
    poses = read_poses(path, **args)
    want = np.stack([expected(p, kset) for p in people])
    np.testing.assert_allclose(poses.pixels, want, atol=1e-3, err_msg=layout)
    assert not poses.filled.any() and not poses.skipped, layout
    if layout == "coco17-npy-geometry":
        assert any("read as coco17" in n for n in poses.notes)
    if layout in ("coco-annotations", "coco-results"):
        assert list(poses.frame) == [7, 8, 9] and "images, not a video" in poses.notes[-1]
    if layout == "alphapose17":
        assert list(poses.frame) == ["0.jpg", "1.jpg", "2.jpg"]
    if layout == "videopose3d":
        assert set(poses.person) == {"walk.mp4"}


def test_body25b_is_not_read_as_body25_and_the_geometry_decides(tmp_path):
    """BODY_25B (Pose2Sim's default) has COCO's order then upper neck and head top;
    BODY_25 has the neck at 1: the same 25 keypoints, told apart by their geometry."""
    people = walk(2)
    for kset in ("body25b", "body25"):
        path = write(tmp_path, f"{kset}.json", [openpose_frame([p], kset) for p in people])
        poses = read_poses(path)
        np.testing.assert_allclose(poses.pixels, np.stack([expected(p) for p in people]), atol=1e-3)
        assert f"OpenPose {kset.upper().replace('BODY', 'BODY_')} " in poses.notes[0]
        wrong = "body25" if kset == "body25b" else "body25b"
        forced = read_poses(path, wrong)                                  # told wrong: unlike people
        assert keypoints.layout_cost(forced.pixels) > 2 * keypoints.layout_cost(poses.pixels) + 0.3
    rng = np.random.default_rng(1)
    path = write(tmp_path, "noise.json", {"people": [{"pose_keypoints_2d": np.concatenate(
        [rng.uniform(0, 900, (25, 2)), np.ones((25, 1))], 1).ravel().tolist()}]})
    with pytest.raises(TipsError, match="give --format body25 or --format body25b"):
        read_poses(path)


def test_a_coco17_array_is_not_read_as_human36m_order(tmp_path):
    """VideoPose3D writes COCO-17 (N, 17, 2) arrays: the shoulders at 5 and 6, not 11 and 14."""
    coco = np.stack([keypoint_array(p, "coco17")[0] for p in walk(4)])
    h36m = np.stack([expected(p) for p in walk(4)])
    np.testing.assert_allclose(read_poses(write(tmp_path, "c.npy", coco)).pixels, h36m, atol=1e-6)
    np.testing.assert_allclose(read_poses(write(tmp_path, "h.npy", h36m)).pixels, h36m)
    mpii = np.stack([keypoint_array(p, "mpii")[0] for p in walk(4)])   # 16 points: MPII's, not H36M's
    assert read_poses(write(tmp_path, "m.npy", mpii)).notes[0].startswith("read as mpii")
    np.testing.assert_allclose(read_poses(write(tmp_path, "h16.npy", h36m[:, 1:])).pixels, h36m)


def test_a_folder_of_openpose_frames_keeps_the_file_names_frame_numbers(tmp_path):
    folder = tmp_path / "json"
    folder.mkdir()
    people = walk(4)
    for t, p in zip((0, 1, 2, 4), people):                  # frame 3 missing from the folder
        (folder / f"clip_{t:012d}_keypoints.json").write_text(json.dumps(openpose_frame([p])))
    (folder / "clip_000000000003_keypoints.json").write_text(json.dumps({"version": 1.3, "people": []}))
    # a person with an empty list (as Pose2Sim rewrites OpenPose's frames) is nobody, not an error
    frame = openpose_frame([people[0]])
    frame["people"].append({"person_id": [-1], "pose_keypoints_2d": []})
    (folder / "clip_000000000000_keypoints.json").write_text(json.dumps(frame))
    out = tmp_path / "out.json"
    r = CliRunner().invoke(main, ["lift", "--input", str(folder), "--output", str(out)])
    assert r.exit_code == 0, r.output
    d = json.loads(out.read_text())
    assert d["frame"] == [0, 1, 2, 4] and d["person"] == [0] * 4
    r = CliRunner().invoke(main, ["lift", "--input", str(folder), "--output", str(folder / "x.json")])
    assert r.exit_code == 1 and "inside the input folder" in r.output


# --- people kept apart --------------------------------------------------------------------
def two_people_frames(n, swap_order=True):
    """Two people 300 px apart walking towards each other's side, listed in a varying order."""
    frames = []
    for t in range(n):
        a, b = person((5.0 * t, 0)), person((300 - 5.0 * t, 10), 0.9)
        frames.append([b, a] if swap_order and t % 2 else [a, b])
    return frames


def test_alphapose_idx_zero_for_everyone_does_not_merge_people(tmp_path):
    """AlphaPose without its tracker writes idx 0 (or [[0.0], [0.0]]) for everyone: those
    are not track ids. One person's wrist is unseen in one frame: filled from that
    person's own frames, never from the other's."""
    frames = two_people_frames(5)
    entries = []
    for t, people in enumerate(frames):
        for p in people:
            unseen = ("left_wrist",) if t == 2 and p["left_wrist"][0] < 700 else ()
            entries.append({"image_id": f"{t}.jpg", "keypoints": triples(p, "coco17", unseen),
                            "idx": [[0.0], [0.0]], "score": 2.0})
    poses = read_poses(write(tmp_path, "alpha.json", entries))
    assert "greedy tracker" in poses.notes[-1] and "given to two people" in poses.notes[-1]
    assert len(set(poses.person)) == 2 and len(poses.pixels) == 10
    for pid in set(poses.person):
        rows = np.flatnonzero(poses.person == pid)
        xs = poses.pixels[rows, J["hip"], 0]
        assert np.all(np.abs(np.diff(xs)) < 20), xs          # each track is one person, never swapped
    filled = np.flatnonzero(poses.filled.any(axis=1))
    assert len(filled) == 1 and poses.frame[filled[0]] == "2.jpg"
    want = person((10.0, 0))["left_wrist"]                     # its own frames 1 and 3: 5 px a frame
    np.testing.assert_allclose(poses.pixels[filled[0], J["left_wrist"]], want, atol=1e-3)


@pytest.mark.parametrize("idx,want", [(None, -1), (3, 3), (3.0, 3), ([2.0], 2), ([[0.0], [0.0]], 0), ("7", 7),
                                      ("runner", "runner"), ([], -1)])
def test_every_way_files_write_a_track_id(idx, want):
    from tips_np.io.formats import track_id
    assert track_id(idx) == want


def test_track_ids_are_kept_where_consistent(tmp_path):
    frames = two_people_frames(4)
    data = []
    for t, people in enumerate(frames):
        ids = [7 if p["left_hip"][0] < 700 else 3 for p in people]
        data.append(openpose_frame(people, ids=ids))
    poses = read_poses(write(tmp_path, "tracked.json", data))
    assert poses.notes[-1] == "tracks: the file's track ids" and set(poses.person) == {3, 7}
    bad = [openpose_frame(people, ids=[0, 1]) for people in frames]    # ids by place: swap every frame
    poses = read_poses(write(tmp_path, "by_place.json", bad))
    assert "greedy tracker" in poses.notes[-1] and "jumps" in poses.notes[-1]
    for pid in set(poses.person):
        assert np.all(np.abs(np.diff(poses.pixels[poses.person == pid, J["hip"], 0])) < 20)


def test_people_enter_and_leave(tmp_path):
    a = [person((5.0 * t, 0)) for t in range(6)]
    b = person((320, 0))
    frames = [openpose_frame([a[t]] + ([b] if 2 <= t < 4 else [])) for t in range(6)]
    poses = read_poses(write(tmp_path, "enter.json", frames))
    counts = {pid: int(np.sum(poses.person == pid)) for pid in set(poses.person)}
    assert sorted(counts.values()) == [2, 6]


def test_an_incomplete_bystander_is_skipped_and_the_rest_lifted(tmp_path):
    """A bystander never shows a wrist: skipped with a warning naming frame, person and
    joint; the summary counts them; --strict refuses instead."""
    frames = [openpose_frame([p]) for p in walk(4)]
    for t, f in enumerate(frames):
        bystander = triples(person((350, 0)), "body25", ("right_wrist",))
        f["people"].append({"person_id": [-1], "pose_keypoints_2d": bystander})
    path = write(tmp_path, "bystander.json", frames)
    out = tmp_path / "out.json"
    r = CliRunner().invoke(main, ["lift", "--input", path, "--output", str(out)])
    assert r.exit_code == 0, r.output
    assert "frame 0, person 1: joint 'right_wrist' missing: right_wrist unseen" in r.output
    assert "lifted 4 pose(s) of 1 person/people" in r.output
    assert "skipped 4 pose(s) that could not be completed" in r.output
    r = CliRunner().invoke(main, ["lift", "--input", path, "--output", str(tmp_path / "s.json"), "--strict"])
    assert r.exit_code == 1 and "--strict" in r.output and len(r.output.strip().splitlines()) == 1


def test_gaps_are_filled_only_inside_a_track_and_ends_never_held(tmp_path):
    people = walk(10)
    unseen = {0: ("left_knee",), 4: ("left_knee",), 5: ("left_knee",), 9: ("left_knee",)}
    frames = [openpose_frame([]) for _ in people]
    for t, p in enumerate(people):
        frames[t]["people"] = [{"person_id": [-1], "pose_keypoints_2d": triples(p, "body25", unseen.get(t, ()))}]
    path = write(tmp_path, "gaps.json", frames)
    poses = read_poses(path, max_gap=2)
    assert list(poses.frame) == [1, 2, 3, 4, 5, 6, 7, 8]        # the ends are skipped, not held
    assert [poses.frame[i] for i in np.flatnonzero(poses.filled.any(1))] == [4, 5]
    np.testing.assert_allclose(poses.pixels[poses.frame == 5][0, J["left_knee"]], people[5]["left_knee"])
    assert list(read_poses(path, max_gap=1).frame) == [1, 2, 3, 6, 7, 8]   # a gap of 2 frames is too long


def test_images_are_never_interpolated_across(tmp_path):
    """COCO results of unrelated images: a missing elbow is not copied from another image."""
    entries = [{"image_id": 10 + i, "keypoints": triples(p, "coco17", ("right_elbow",) if i == 1 else ()),
                "score": 0.9} for i, p in enumerate(walk(3))]
    poses = read_poses(write(tmp_path, "r.json", entries))
    assert list(poses.frame) == [10, 12] and "image 11" not in poses.skipped[0]
    assert "frame 11, person 0: joint 'right_elbow' missing" in poses.skipped[0]
    assert "not filled from others" in poses.skipped[0]


def test_side_view_is_lifted(tmp_path):
    """One eye and one ear: the head is built, nobody refused."""
    entries = [{"image_id": f"{t}.jpg", "keypoints": triples(p, "coco17", ("right_eye", "right_ear")), "score": 1}
               for t, p in enumerate(walk(3))]
    poses = read_poses(write(tmp_path, "side.json", entries))
    assert len(poses.pixels) == 3 and not poses.skipped and not poses.filled.any()


# --- refusals and flags -------------------------------------------------------------------
@pytest.mark.parametrize("case", ["npy", "openpose", "mmpose", "videopose3d", "h5"])
def test_3d_files_are_refused_as_3d(tmp_path, case):
    if case == "npy":
        path = write(tmp_path, "p3d.npy", np.random.default_rng(0).normal(0, 300, (5, 17, 3)))
    elif case == "openpose":
        path = write(tmp_path, "o.json", {"people": [{"pose_keypoints_3d": [1.0] * 100}]})
    elif case == "mmpose":
        path = write(tmp_path, "m.json", [{"frame_id": 0, "instances": [{"keypoints": [[0.1, 0.2, 0.3]] * 17,
                                                                          "keypoint_scores": [1] * 17}]}])
    elif case == "videopose3d":
        path = str(tmp_path / "d3.npz")
        np.savez(path, positions_3d=np.array({"S1": {"Walk": np.zeros((3, 17, 3))}}, dtype=object))
    else:
        path = str(tmp_path / "Walking.h5")
        with h5py.File(path, "w") as f:
            f["3D_positions"] = np.zeros((96, 10))
    with pytest.raises(TipsError, match="holds 3D keypoints"):
        read_poses(path)


def test_mmpose_without_keypoint_scores_says_so(tmp_path):
    inst = {"keypoints": keypoint_array(person(), "coco17")[0].tolist(), "bbox": [[0, 0, 1, 1]]}
    poses = read_poses(write(tmp_path, "noscore.json", [inst]))
    assert "no keypoint_scores in the file: every keypoint taken as seen" in poses.notes
    mixed = [{"frame_id": 0, "instances": [inst, {**inst, "keypoint_scores": [0.9] * 17}]}]
    with pytest.raises(TipsError, match="instance 0: no 'keypoint_scores' where other instances have them"):
        read_poses(write(tmp_path, "mixed.json", mixed))


def test_people_of_one_image_without_track_ids_are_told_apart(tmp_path):
    """MMPose's output for one image gives no track ids: its people are numbered by their
    place in the image, so each can be found (--plot-person) and counted."""
    people = [keypoint_array(person((shift, 0)), "coco17")[0].tolist() for shift in (0, 300, 600)]
    instances = [{"keypoints": xy, "keypoint_scores": [0.9] * 17} for xy in people]
    poses = read_poses(write(tmp_path, "one_image.json", instances))
    assert list(poses.frame) == [0, 0, 0] and list(poses.person) == [0, 1, 2]


def test_videopose3d_archives_are_unpickled_without_running_code(tmp_path):
    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))
    path = str(tmp_path / "evil.npz")
    with zipfile.ZipFile(path, "w") as zf:
        with zf.open("positions_2d.npy", "w") as f:
            np.lib.format.write_array_header_1_0(f, {"descr": "|O", "fortran_order": False, "shape": ()})
            pickle.dump(Evil(), f)
    with pytest.raises(TipsError, match="refusing to unpickle builtins.print"):
        read_poses(path)


def test_collapsed_or_lopsided_skeletons_are_flagged_in_the_output(tmp_path):
    people = walk(7)
    people[1]["left_elbow"] = people[1]["left_wrist"].copy()          # collapsed forearm
    people[2]["right_knee"] = people[2]["right_hip"] + [0, 600]       # a right leg four times too long
    people[2]["right_ankle"] = people[2]["right_knee"] + [0, 600]
    path = write(tmp_path, "odd.json", [openpose_frame([p]) for p in people])
    out = tmp_path / "o.json"
    r = CliRunner().invoke(main, ["lift", "--input", path, "--output", str(out)])
    assert r.exit_code == 0 and "2 with an implausible 2D skeleton" in r.output, r.output
    flags = json.loads(out.read_text())["flags"]
    assert not any(f.startswith("implausible") for f in flags[0])
    assert "implausible 2D: collapsed left_elbow-left_wrist" in flags[1]
    assert any("right/left leg length" in f for f in flags[2])
