"""Lifting 2D poses that a user brings: Human3.6M-ordered poses, or the files 2D
detectors write (formats.py, docs/formats.md), from JSON, CSV, .npy, .npz, .h5 or a
folder of OpenPose's per-frame files.

Human3.6M order: pixel coordinates of the 17 joints in skeleton.JOINTS order, or of
the 16 keypoints without the root (the root is then the midpoint of the hips), one
pose or many:
    .json   [[x, y], ...] for one pose, a list of such poses, or {"poses": ...}
    .csv    one pose per row: x0,y0,x1,y1,... (34 or 32 numbers); a header row is allowed
    .npy    (17, 2), (16, 2), (N, 17, 2), (N, 16, 2), (N, 34) or (N, 32)
An array of 17 (or 16) points could also be COCO-17 (or MPII) keypoints: its geometry
decides (keypoints.choose_by_geometry), else it is Human3.6M's order, or, where both
look like people, it is refused with the --format to give.
Detector keypoints carry scores: a keypoint scored below min_score, or at (0, 0), is
unseen. People are tracked (tracking.py); within a track a joint missing for at most
max_gap frames is filled over time (and marked); a pose still missing a joint is
skipped with a warning (strict: refused).
Output, root-relative, x right, y down, z away from the camera, in normalised
units and in the input's pixel scale (depth relative to the root in pixels), with
the file's own frame and person ids and each pose's flags (plausibility.py):
    .json   {"joints", "units", "axes", "frame", "person", "filled", "flags",
             "pose_3d_normalised", "pose_3d_pixels"}
    .npy    (N, 2, 17, 3): [:, 0] normalised, [:, 1] pixels; ids and flags beside it
            in <name>.ids.json
    .csv    one row per pose: frame, person, x, y, z of each joint in pixels, filled
            joints, flags
Human3.6M-ordered .npy and .csv files stream (open_stream, lift_stream): read, lifted
and written CHUNK poses at a time, in memory flat in the number of poses, to the same
bytes as the whole file at once (write_poses is the same writer, given one chunk).
Detectors' files are read whole: they are JSON (or .npz, .h5) read whole anyway, and
tracking and filling gaps need every frame.
"""
import csv
import json
import os
import shutil
import tempfile
from contextlib import contextmanager, nullcontext
from typing import NamedTuple

import numpy as np

from ..atomic import atomic_write
from ..errors import TipsError
from ..method.adapter import adapt
from ..method.geometry import normalise_2d, unproject_view
from ..method.model import predict_depths
from ..method.orientation import per_pose_correction
from ..method.skeleton import JOINTS
from . import formats, keypoints, tracking
from .plausibility import handedness_failures, implausible_2d

INPUTS, OUTPUTS = (".json", ".csv", ".npy", ".npz", ".h5"), (".json", ".npy", ".csv")
AXES = "root-relative; x right, y down (image axes), z away from the camera"
GEOMETRY_SAMPLE = 100_000   # an array's first poses, whose geometry decides its keypoint set
CHUNK = 65_536       # poses a stream reads, lifts and writes at a time: 8 of predict_depths' (and adapt's)
                     # batches of 8192, so a stream lifts through the very batches of the whole file: same bytes
PROGRESS_BYTES = 20_000_000   # a stream this large shows a progress bar
MAX_GAP = 5          # frames a missing joint may be filled across (a tenth to a fifth of a second)
SHOWN = 10           # warnings printed one by one; the rest are counted


class Poses(NamedTuple):
    """A user's 2D poses in Human3.6M order: pixels (N, 17, 2); each pose's frame and
    person ids (N,) as the file gives them (or the tracker's person ids); filled
    (N, 17), True where a joint was filled over time; implausible: each pose's reasons
    (plausibility.py); skipped: one warning per pose left out; notes: what was read;
    video: whether the frames are a video's (False: single images, unrelated)."""
    pixels: np.ndarray
    frame: np.ndarray
    person: np.ndarray
    filled: np.ndarray
    implausible: list = []
    skipped: list = []
    notes: list = []
    keypoints: str = "h36m"   # the keypoint set the file held (keypoints.KEYPOINT_SETS), for the adapter
    video: bool = True


class LiftError(TipsError):
    """Bad user input; the message names the file and what was expected."""


def _format(path, what, allowed):
    ext = os.path.splitext(path)[1].lower()
    if ext not in allowed:
        raise LiftError(f"{path}: unknown {what} format {ext or '(no extension)'!r}: expected "
                        f"{' or '.join(allowed)}")
    return ext


def read_poses(path, fmt="auto", min_score=0.3, max_gap=MAX_GAP, strict=False):
    """The Poses of a user's file or OpenPose folder (see the module's docstring), checked."""
    if fmt not in keypoints.FORMATS:
        raise LiftError(f"unknown --format {fmt!r}: expected one of {', '.join(keypoints.FORMATS)}")
    if os.path.isdir(path):
        if fmt not in ("auto", "openpose", "body25", "body25b", "coco18"):
            raise LiftError(f"{path}: a folder is read as OpenPose's per-frame files, not --format {fmt}")
        det = formats.read_openpose_folder(path, None if fmt in ("auto", "openpose") else fmt)
        return detections_to_poses(det, path, min_score, max_gap, strict)
    ext = _format(path, "input", INPUTS)
    if not os.path.isfile(path):
        raise LiftError(f"{path}: file not found")
    if os.path.getsize(path) == 0:
        raise LiftError(f"{path}: the file is empty")
    if ext == ".npz":
        return detections_to_poses(formats.read_videopose3d(path), path, min_score, max_gap, strict)
    if ext == ".h5":
        return detections_to_poses(formats.read_h5(path), path, min_score, max_gap, strict)
    try:
        if ext == ".npy":
            data = np.load(path, allow_pickle=False)
        elif ext == ".json":
            with open(path) as f:
                data = json.load(f)
        else:
            with open(path, newline="") as f:
                rows = [r for r in csv.reader(f) if r]
            if rows and not _is_number(rows[0][0]):
                rows = rows[1:]  # a header
            data = [[float(v) for v in r] for r in rows]
    except (ValueError, TypeError, json.JSONDecodeError, OSError) as e:
        raise LiftError(f"{path}: cannot read {ext[1:]} poses ({e})") from None
    layout = formats.detect_json_layout(data) if ext == ".json" and fmt == "auto" else fmt
    if layout in ("auto", "h36m", "coco17", "halpe26", "mpii") and not (
            ext == ".json" and formats.detect_json_layout(data) != "h36m"):
        return _array_poses(data, path, layout, min_score, max_gap, strict)
    if ext != ".json":
        raise LiftError(f"{path}: --format {fmt} is a JSON layout, not {ext}")
    det = formats.read_json(data, path, layout)
    return detections_to_poses(det, path, min_score, max_gap, strict)


# arrays: the keypoint sets a shape may hold, the default first
ARRAY_SETS = {17: ("h36m", "coco17"), 16: ("h36m", "mpii"), 26: ("halpe26",)}


def _array_poses(data, path, fmt, min_score, max_gap, strict):
    """An array of poses: Human3.6M's order, or (--format or geometry) COCO-17, Halpe-26, MPII."""
    if isinstance(data, dict):
        if "poses" not in data:
            raise LiftError(f"{path}: a JSON object must hold the poses under 'poses' (or be a detector's "
                            f"file: see --format)")
        data = data["poses"]
    try:
        arr = np.asarray(data, dtype=np.float64)
    except (ValueError, TypeError) as e:
        raise LiftError(f"{path}: cannot read {os.path.splitext(path)[1][1:]} poses ({e})") from None
    if arr.ndim == 2 and arr.shape[1] in (32, 34):
        arr = arr.reshape(len(arr), -1, 2)
    if arr.ndim == 2:
        arr = arr[None]
    score = np.ones(arr.shape[:2]) if arr.ndim == 3 else None
    if arr.ndim == 3 and arr.shape[2] == 3 and arr.shape[1] in ARRAY_SETS and arr.size:
        third = arr[..., 2]
        if not np.all((third >= 0) & (third <= 1)):
            formats.refuse_3d(path, f"an array of shape {arr.shape} whose third column is not a score in [0, 1]")
        arr, score = arr[..., :2], third
    if arr.ndim != 3 or arr.shape[1] not in ARRAY_SETS or arr.shape[2] != 2:
        check_poses(arr, path)                  # refuses with the expected shapes
    candidates = ARRAY_SETS[arr.shape[1]]
    if arr.shape[1] == 17 and not np.all(score == 1):
        candidates = candidates[::-1]   # scores: a detector's COCO-17 unless the geometry says otherwise
    if fmt not in ("auto",) + candidates:
        raise LiftError(f"{path}: --format {fmt} expects {len(keypoints.KEYPOINT_SETS[fmt])} keypoints "
                        f"per pose; the array has {arr.shape[1]}")
    fmt, notes = _array_set(arr[:GEOMETRY_SAMPLE], score[:GEOMETRY_SAMPLE], fmt, candidates, path, min_score)
    if fmt == "h36m":
        arr = check_poses(arr, path)
        n = len(arr)
        return Poses(arr, np.arange(n).astype(object), np.zeros(n, dtype=object), np.zeros(arr.shape[:2], bool),
                     implausible_2d(arr), [], notes)
    det = formats.array_detections(arr, score, fmt)
    return detections_to_poses(det._replace(notes=notes), path, min_score, max_gap, strict)


def _array_set(arr, score, fmt, candidates, path, min_score):
    """(keypoint set, notes) of an array of 17 or 16 points: --format, else the geometry of
    its first GEOMETRY_SAMPLE poses (the arr given), else Human3.6M's order."""
    notes = []
    if fmt == "auto" and len(candidates) > 1 and np.isfinite(arr).all() and len(arr):
        chosen, costs = keypoints.choose_by_geometry(candidates, arr, score, min_score) \
            if arr.shape[1] == 17 else _choose_16(arr, score, min_score)
        plausible = [c for c, v in costs.items() if v < keypoints.PLAUSIBLE_COST]
        if chosen is None and len(plausible) > 1:
            raise LiftError(f"{path}: {arr.shape[1]} points per pose fit both " + " and ".join(
                f"{c} (cost {v:.2f})" for c, v in costs.items()) + "; give --format " + " or --format ".join(
                candidates))
        fmt = chosen or candidates[0]
        if chosen and chosen != "h36m":
            notes.append(f"read as {chosen} keypoints: their geometry fits ("
                         + ", ".join(f"{c} {v:.2f}" for c, v in costs.items()) + "; lower is more human)")
    elif fmt == "auto":
        fmt = candidates[0]
    return fmt, notes


def _with_root(arr):
    return np.concatenate([((arr[:, 0] + arr[:, 3]) / 2)[:, None], arr], axis=1)


def _choose_16(arr, score, min_score):
    """16 points: Human3.6M's keypoints without the root, or MPII's."""
    costs = {"h36m": keypoints.layout_cost(_with_root(arr)),
             "mpii": keypoints.layout_cost(keypoints.to_h36m(arr, score, "mpii", min_score)[0])}
    best = min(costs, key=costs.get)
    other = costs["mpii" if best == "h36m" else "h36m"]
    clear = costs[best] < keypoints.PLAUSIBLE_COST and \
        other > max(keypoints.CLEAR_MARGIN * costs[best], costs[best] + keypoints.CLEAR_GAP)
    return (best if clear else None), costs


OPENPOSE_NAMES = {"body25": "BODY_25", "body25b": "BODY_25B"}


def _openpose_set(det, path, min_score):
    """BODY_25 or BODY_25B, both 25 keypoints: the geometry decides, else refuse."""
    chosen, costs = keypoints.choose_by_geometry(("body25", "body25b"), det.xy, det.score, min_score)
    if chosen is None:
        raise LiftError(f"{path}: 25 OpenPose keypoints fit neither BODY_25 nor BODY_25B clearly "
                        f"(costs {costs['body25']:.2f}, {costs['body25b']:.2f}); give --format body25 "
                        f"or --format body25b")
    return det._replace(keypoints=chosen, notes=det.notes + [f"OpenPose {OPENPOSE_NAMES[chosen]} (by its geometry)"])


def detections_to_poses(det, path, min_score, max_gap, strict):
    """Detections -> Poses: the 17 joints, tracks, gaps filled, incomplete people skipped."""
    if det.keypoints == "body25|body25b":
        det = _openpose_set(det, path, min_score)
    unseen = np.all(det.xy == 0, axis=-1) | ~np.isfinite(det.xy).all(axis=-1)
    score = np.where(unseen, 0.0, det.score)
    xy, _ = keypoints.to_h36m(np.nan_to_num(det.xy), score, det.keypoints, min_score)
    time = tracking.frame_steps(det.time)
    track, person, how = tracking.assign_tracks(xy, time, det.person, det.video, max_gap)
    if det.video:
        xy, filled = tracking.fill_gaps(xy, time, track, max_gap)
    else:
        filled = np.zeros(xy.shape[:2], bool)
    missing = np.isnan(xy[..., 0])
    skipped, graded = list(det.skipped), not np.isin(det.score, (0, 1)).all()
    for i in np.flatnonzero(missing.any(axis=1)):
        joints = [JOINTS[j] for j in np.flatnonzero(missing[i])]
        need = [k for j in np.flatnonzero(missing[i]) for k in _unseen(score[i], det.keypoints, j, min_score)]
        skipped.append(f"{path}: frame {det.frame[i]}, person {person[i]}: joint {joints[0]!r}"
                       + (f" (and {len(joints) - 1} more)" if len(joints) > 1 else "")
                       + f" missing: {', '.join(dict.fromkeys(need)) or 'its keypoints'} unseen"
                       + (f" (score below --min-score {min_score})" if graded else " (not labelled)")
                       + ("" if det.video else "; a single image is not filled from others"))
    if skipped and strict:
        raise LiftError(f"{skipped[0]} (--strict: {len(skipped)} pose(s) incomplete)")
    keep = ~missing.any(axis=1)
    if not keep.any():
        raise LiftError(f"nobody to lift: {skipped[0]}" + (f" (and {len(skipped) - 1} more)"
                                                           if len(skipped) > 1 else ""))
    order = np.lexsort((track[keep], det.time[keep]))
    pixels = xy[keep][order]
    check_poses(pixels, path)
    notes = det.notes + [how]
    return Poses(pixels, det.frame[keep][order], person[keep][order], filled[keep][order],
                 implausible_2d(pixels), skipped, notes, det.keypoints, bool(det.video))


def _unseen(score_row, kset, j, min_score):
    names = keypoints.KEYPOINT_SETS[kset]
    if kset == "mpii":
        return [k for k in keypoints.H36M_FROM_MPII[j] if not score_row[names.index(k)] >= max(min_score, 1e-12)]
    if kset == "h36m":
        return [JOINTS[j]]
    return keypoints.unseen_sources(score_row, names, keypoints.table_for(kset), j, min_score)


def _is_number(text):
    try:
        float(text)
        return True
    except ValueError:
        return False


def check_poses(arr, path, first=0):
    """The poses (N, 17, 2), the root added to 16 keypoints; refused in one line if not
    poses, or if a pose is not finite or degenerate (named by its index, first + i)."""
    if arr.size == 0:
        raise LiftError(f"{path}: no poses in the file")
    if arr.ndim == 2 and arr.shape[1] in (32, 34):
        arr = arr.reshape(len(arr), -1, 2)
    if arr.ndim == 2:
        arr = arr[None]
    if arr.ndim != 3 or arr.shape[2] != 2 or arr.shape[1] not in (16, 17):
        raise LiftError(f"{path}: poses should be 17 joints (or 16 keypoints without the root) of "
                        f"(x, y), e.g. shape (N, 17, 2); got shape {arr.shape}")
    bad = ~np.all(np.isfinite(arr), axis=(1, 2))
    if bad.any():
        raise LiftError(f"{path}: pose {first + int(np.argmax(bad))} has NaN or infinite coordinates")
    if arr.shape[1] == 16:  # the root is the midpoint of the hips
        arr = _with_root(arr)
    _, scale = normalise_2d(arr)
    if np.any(scale == 0):
        raise LiftError(f"{path}: pose {first + int(np.argmax(scale == 0))} is degenerate "
                        f"(all its points coincide)")
    return arr


def plot_rows(poses, frame=None, person=None, gif=False):
    """The rows --plot draws: the pose of that frame and person (default: the first pose
    with no filled joint), or for a .gif that person's whole sequence in frame order."""
    same = lambda ids, want: np.array([str(v) == str(want) for v in ids])  # noqa: E731
    pick = np.ones(len(poses.pixels), bool)
    if person is not None:
        pick &= same(poses.person, person)
    if frame is not None and not gif:
        pick &= same(poses.frame, frame)
    if not pick.any():
        wanted = ", ".join(f"{k} {v}" for k, v in (("frame", frame), ("person", person)) if v is not None)
        raise LiftError(f"--plot: no lifted pose of {wanted} (frames and people are the output's ids)")
    rows = np.flatnonzero(pick)
    clean = rows[~poses.filled[rows].any(axis=1)]
    first = (clean if len(clean) else rows)[0]
    if not gif:
        return np.array([first])
    return np.flatnonzero(same(poses.person, poses.person[first]))


def lift_poses(gen, params, state, pose_px, per_pose_sign=False, perspective=None, adapter=None,
               mirror_average=False):
    """Pixel poses (N, 17, 2) -> (normalised 3D (N, 17, 3), pixel-scale 3D (N, 17, 3)).
    per_pose_sign: the per-pose correction of orientation.py; perspective: the model's
    camera (its configuration's), through which the 2D pose is unprojected at z_hat;
    adapter: (net, params, state) of a 2D adapter (adapter.py), applied first;
    mirror_average: z_hat averaged with the mirror image's (model.predict_depths)."""
    pose_2d, scale = normalise_2d(pose_px)
    root = pose_px[:, 0].astype(np.float64)
    if adapter is not None:   # the adapted pose, in the image: (Y'_n s' + root') s + root
        pose_2d, s, root_shift = adapt(*adapter, pose_2d)
        root = root + root_shift * scale[:, None]
        scale = scale * s
    z_hat = predict_depths(gen, params, state, pose_2d.astype(np.float32),
                           mirror_average=mirror_average).astype(np.float64)
    if per_pose_sign:
        z_hat = per_pose_correction(pose_2d, z_hat)[0]
    pose_3d = unproject_view(pose_2d, z_hat, perspective)
    pixels = pose_3d * scale[:, None, None]
    pixels[..., :2] += root[:, None]
    return pose_3d, pixels


def pose_flags(poses, pose_3d):
    """Each pose's flags: 'filled: <joints>', 'implausible 2D: <reasons>', 'handedness: <tests failed>'."""
    hand = handedness_failures(pose_3d)
    filled = poses.filled.any(axis=1).tolist()
    flags = []
    for i in range(len(pose_3d)):
        row = []
        if filled[i]:
            row.append("filled: " + ", ".join(JOINTS[j] for j in np.flatnonzero(poses.filled[i])))
        if poses.implausible and poses.implausible[i]:
            row.append("implausible 2D: " + ", ".join(poses.implausible[i]))
        if hand[i]:
            row.append("handedness: " + ", ".join(hand[i]) + " test failed")
        flags.append(row)
    return flags


FLAG_KINDS = ("filled", "implausible", "handedness")


def flag_counts(flags):
    """How many poses carry each kind of flag."""
    return {kind: sum(any(f.startswith(kind) for f in row) for row in flags) for kind in FLAG_KINDS}


def summary(poses, flags, input_path, output_path):
    """The one line lift prints."""
    return summary_line(len(flags), len({str(p) for p in poses.person}), len(poses.skipped), flag_counts(flags),
                        input_path, output_path)


def summary_line(lifted, people, skipped, counts, input_path, output_path):
    """The line from counts (flag_counts): what summary says, and a stream's summary."""
    parts = [f"lifted {lifted} pose(s) of {people} person/people from {input_path} to {output_path}"]
    if skipped:
        parts.append(f"skipped {skipped} pose(s) that could not be completed (warnings above)")
    parts.append(f"{counts['filled']} with joints filled over time, {counts['implausible']} with an "
                 f"implausible 2D skeleton, {counts['handedness']} failing a handedness test (see 'flags')")
    return "; ".join(parts)


def _plain(v):
    """A frame or person id as JSON and CSV write it (numbers stay numbers)."""
    if isinstance(v, (np.integer, int)) and not isinstance(v, bool):
        return int(v)
    if isinstance(v, (np.floating, float)):
        return int(v) if float(v).is_integer() else float(v)
    return str(v)


def ids_path(path):
    """Where an .npy output's ids and flags go: <name>.ids.json beside it."""
    return os.path.splitext(path)[0] + ".ids.json"


def check_output(input_path, output_path):
    """Refuse an output that is the input, or that would land among an OpenPose folder's frames."""
    _format(output_path, "output", OUTPUTS)
    if not os.path.isdir(os.path.dirname(os.path.abspath(output_path))):
        raise LiftError(f"{output_path}: the output folder does not exist")
    targets = [output_path] + ([ids_path(output_path)] if output_path.lower().endswith(".npy") else [])
    for target in targets:
        if os.path.exists(target) and os.path.exists(input_path) and os.path.samefile(target, input_path):
            raise LiftError(f"{target}: is the input file; write the 3D poses to another file")
        if os.path.isdir(input_path) and target.lower().endswith(".json") and \
                os.path.samefile(os.path.dirname(os.path.abspath(target)), input_path):
            raise LiftError(f"{target}: is inside the input folder, among the frames it reads; "
                            f"write the 3D poses elsewhere")


def write_poses(path, poses, pose_3d, pixels, flags=None):
    """Write the lifted poses with their ids and flags, atomically (temporary file, then rename)."""
    with pose_writer(path) as write:
        write(poses, pose_3d, pixels, flags if flags is not None else pose_flags(poses, pose_3d))


IDS = {"joints": JOINTS, "axes": AXES,
       "units": {"pose_3d_normalised": "the 2D pose max-normalised into [-1, 1]",
                 "pose_3d_pixels": "input pixels; depth in pixels of the same scale"}}
ID_LISTS = ("frame", "person", "filled", "flags")
NPY_ARRAY = "(N, 2, 17, 3): [:, 0] pose_3d_normalised, [:, 1] pose_3d_pixels"


def _id_lists(poses, flags):
    return {"frame": [_plain(v) for v in poses.frame], "person": [_plain(v) for v in poses.person],
            "filled": [[JOINTS[j] for j in np.flatnonzero(row)] if any_filled else []
                       for row, any_filled in zip(poses.filled, poses.filled.any(axis=1).tolist())], "flags": flags}


@contextmanager
def pose_writer(path):
    """Yield write(poses, pose_3d, pixels, flags), which appends lifted poses (a chunk
    of them, or all) to `path`, in the module docstring's format. Everything goes to
    temporary files, renamed onto `path` (and <name>.ids.json beside an .npy) only
    when the block ends without an error: nothing is half-written."""
    ext = _format(path, "output", OUTPUTS)
    if not os.path.isdir(os.path.dirname(os.path.abspath(path))):
        raise LiftError(f"{path}: the output folder does not exist")

    def finite(pose_3d, pixels):
        if not (np.isfinite(pose_3d).all() and np.isfinite(pixels).all()):
            raise LiftError(f"{path}: the lifted poses hold NaN (a bug): nothing written")

    with atomic_write(path, suffix=ext) as tmp, \
            open(tmp, "wb" if ext == ".npy" else "w", newline="" if ext == ".csv" else None) as f:
        if ext == ".npy":
            with atomic_write(ids_path(path)) as tmp_ids, open(tmp_ids, "w") as g, \
                    JsonStream(g, IDS, ID_LISTS, {"array": NPY_ARRAY}) as ids:
                array = NpyRows(f, (2, 17, 3), np.float32)

                def write(poses, pose_3d, pixels, flags):
                    finite(pose_3d, pixels)
                    array.append(np.stack([pose_3d, pixels], axis=1).astype(np.float32))
                    ids.extend(_id_lists(poses, flags))
                yield write
                array.finish()
                ids.finish()
        elif ext == ".csv":
            w = csv.writer(f)
            w.writerow(["frame", "person"] + [f"{j}_{c}" for j in JOINTS for c in "xyz"] + ["filled", "flags"])

            def write(poses, pose_3d, pixels, flags):
                finite(pose_3d, pixels)
                ids = _id_lists(poses, flags)
                for i in range(len(pixels)):
                    w.writerow([ids["frame"][i], ids["person"][i]] + [f"{v:.3f}" for v in pixels[i].ravel()]
                               + [";".join(ids["filled"][i]), " | ".join(flags[i])])
            yield write
        else:
            with JsonStream(f, IDS, ID_LISTS + ("pose_3d_normalised", "pose_3d_pixels")) as out:
                def write(poses, pose_3d, pixels, flags):
                    finite(pose_3d, pixels)
                    out.extend({**_id_lists(poses, flags), "pose_3d_normalised": np.round(pose_3d, 6).tolist(),
                                "pose_3d_pixels": np.round(pixels, 3).tolist()})
                yield write
                out.finish()


class NpyRows:
    """An .npy file written a block of rows at a time: its header first says 0 rows
    (numpy leaves room in the header for the first axis to grow), finish() rewrites it
    with the rows written. The bytes are np.save's of the whole array."""

    def __init__(self, f, row_shape, dtype):
        self.f, self.row_shape, self.dtype, self.rows = f, tuple(row_shape), np.dtype(dtype), 0
        self._header()
        self.start = f.tell()

    def _header(self):
        np.lib.format.write_array_header_1_0(self.f, {"descr": np.lib.format.dtype_to_descr(self.dtype),
                                                      "fortran_order": False, "shape": (self.rows,) + self.row_shape})

    def append(self, block):
        block = np.ascontiguousarray(block, self.dtype)
        assert block.shape[1:] == self.row_shape, block.shape
        self.f.write(block.data)
        self.rows += len(block)

    def finish(self):
        end = self.f.tell()
        self.f.seek(0)
        self._header()
        if self.f.tell() != self.start:   # numpy's header has room for 21 digits; never here
            raise LiftError(f"{self.f.name}: the .npy header changed size")
        self.f.seek(end)


class JsonStream:
    """A JSON object written as its lists arrive in chunks: the fixed fields first,
    each list spooled to an unnamed temporary file beside the output, and finish()
    joining them in order, then the `last` fields. The bytes are json.dump's of the
    whole object (never NaN: allow_nan=False). A context: the spools go at its end."""

    def __init__(self, f, fields, lists, last=None):
        self.f, self.fields, self.last = f, fields, last or {}
        folder = os.path.dirname(os.path.abspath(f.name))
        self.spools = {key: tempfile.TemporaryFile("w+", dir=folder) for key in lists}
        self.empty = dict.fromkeys(lists, True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        for spool in self.spools.values():
            spool.close()

    def extend(self, lists):
        for key, items in lists.items():
            if len(items):
                text = json.dumps(items, allow_nan=False)[1:-1]
                self.spools[key].write(text if self.empty[key] else ", " + text)
                self.empty[key] = False

    def finish(self):
        self.f.write(json.dumps(self.fields, allow_nan=False)[:-1])
        for key, spool in self.spools.items():
            self.f.write(f", {json.dumps(key)}: [")
            spool.seek(0)
            shutil.copyfileobj(spool, self.f)
            self.f.write("]")
        for key, value in self.last.items():
            self.f.write(f", {json.dumps(key)}: {json.dumps(value, allow_nan=False)}")
        self.f.write("}")


# Streams: Human3.6M-ordered poses in an .npy or .csv file are read, lifted and
# written CHUNK poses at a time, so memory stays flat in the number of poses. Other
# inputs are read whole (read_poses): detectors' files are JSON (or .npz, .h5) read
# whole anyway, and their people are tracked, and gaps filled, across every frame.

class Stream(NamedTuple):
    """A file of Human3.6M-ordered poses to lift chunk by chunk. chunks(size) yields
    (index of the chunk's first pose, its poses (n, 17 or 16, 2) as float64, bytes of
    the file read so far); size: the file's bytes. The rest as Poses has them."""
    path: str
    chunks: object
    size: int
    notes: list = []
    skipped: list = []
    keypoints: str = "h36m"


def open_stream(path, fmt="auto", min_score=0.3):
    """The Stream of a file of Human3.6M-ordered poses (.npy of shape (N, 17, 2),
    (N, 16, 2), (N, 34) or (N, 32); .csv of 34 or 32 numbers a row), or None where
    read_poses reads the file whole: other files, shapes and keypoint sets (an array
    whose geometry says COCO-17 or MPII), and whatever read_poses refuses in one line."""
    ext = os.path.splitext(path)[1].lower()
    if fmt not in ("auto", "h36m") or ext not in (".npy", ".csv") or not os.path.isfile(path) \
            or os.path.getsize(path) == 0:
        return None
    source = (_npy_source if ext == ".npy" else _csv_source)(path)
    if source is None:
        return None
    chunks, points = source
    head = chunks(GEOMETRY_SAMPLE)
    try:
        _, first, _ = next(head)
    finally:
        head.close()
    fmt, notes = _array_set(first, np.ones(first.shape[:2]), fmt, ARRAY_SETS[points], path, min_score)
    return Stream(path, chunks, os.path.getsize(path), notes) if fmt == "h36m" else None


def _npy_source(path):
    """(chunks, points per pose) of an .npy file of poses, read with plain reads (a
    memory map would count every page read in the process's memory), or None."""
    fmt = np.lib.format
    try:
        with open(path, "rb") as f:
            version = fmt.read_magic(f)
            read_header = {(1, 0): fmt.read_array_header_1_0, (2, 0): fmt.read_array_header_2_0}[version]
            shape, fortran, dtype = read_header(f)
            offset = f.tell()
    except (ValueError, KeyError, OSError):
        return None
    if fortran or dtype.hasobject or dtype.kind not in "iuf" or not shape or not shape[0] or not (
            shape[1:] in ((17, 2), (16, 2)) or (len(shape) == 2 and shape[1] in (34, 32))):
        return None
    n, points = shape[0], (shape[1] if len(shape) == 3 else shape[1] // 2)
    row = points * 2 * dtype.itemsize

    def chunks(size):
        with open(path, "rb") as f:
            f.seek(offset)
            for first in range(0, n, size):
                k = min(size, n - first)
                arr = np.fromfile(f, dtype, count=k * points * 2)
                if arr.size < k * points * 2:
                    raise LiftError(f"{path}: cannot read npy poses (the file ends before the {n} poses its "
                                    f"header announces)")
                yield first, arr.reshape(k, points, 2).astype(np.float64), offset + (first + k) * row
    return chunks, points


def _csv_rows(path):
    """(row, bytes read so far) for each non-empty row of a CSV file, a header row left out."""
    with open(path, "rb") as f:
        done, header = 0, True

        def lines():
            nonlocal done
            for raw in f:
                done += len(raw)
                yield raw.decode()
        for row in csv.reader(lines()):
            if row and not (header and not _is_number(row[0])):
                yield row, done
            header = header and not row


def _csv_source(path):
    """(chunks, points per pose) of a CSV file of 34 or 32 numbers a row, or None."""
    try:
        rows = _csv_rows(path)
        first = next(rows, None)
        rows.close()
    except (ValueError, csv.Error, OSError):
        return None
    if first is None or len(first[0]) not in (34, 32):
        return None
    width = len(first[0])

    def chunks(size):
        start, block = 0, []
        try:
            for row, done in _csv_rows(path):
                if len(row) != width:
                    raise ValueError(f"pose {start + len(block)} has {len(row)} numbers, pose 0 has {width}")
                block.append([float(v) for v in row])
                if len(block) == size:
                    yield start, np.array(block).reshape(size, -1, 2), done
                    start, block = start + size, []
        except (ValueError, csv.Error, OSError) as e:
            raise LiftError(f"{path}: cannot read csv poses ({e})") from None
        if block:
            yield start, np.array(block).reshape(len(block), -1, 2), done
    return chunks, width // 2


def lift_stream(stream, output_path, lift, chunk=None, progressbar=None):
    """Lift a Stream into output_path chunk by chunk, with the ids, flags and checks of
    read_poses and write_poses; lift: pixel poses (n, 17, 2) -> (pose_3d, pixels), as
    lift_poses; chunk: poses at a time (CHUNK). A bar (progressbar(length, label)) on a
    file of PROGRESS_BYTES or more.
    Returns the line lift prints."""
    counts, lifted, shown = dict.fromkeys(FLAG_KINDS, 0), 0, 0
    bar = progressbar(stream.size, "lifting") if progressbar and stream.size >= PROGRESS_BYTES else nullcontext()
    with pose_writer(output_path) as write, bar as progress:
        for first, arr, read in stream.chunks(chunk or CHUNK):
            pose_px = check_poses(arr, stream.path, first)
            n = len(pose_px)
            poses = Poses(pose_px, np.arange(first, first + n).astype(object), np.zeros(n, dtype=object),
                          np.zeros((n, len(JOINTS)), bool), implausible_2d(pose_px))
            pose_3d, pixels = lift(pose_px)
            flags = pose_flags(poses, pose_3d)
            write(poses, pose_3d, pixels, flags)
            counts = {kind: counts[kind] + c for kind, c in flag_counts(flags).items()}
            lifted += n
            if progress is not None:
                progress.update(read - shown)
                shown = read
    return summary_line(lifted, 1, 0, counts, stream.path, output_path)
