"""Lifting 2D poses that a user brings: Human3.6M-ordered poses, or a 2D
detector's keypoints (keypoints.py), from JSON, CSV or .npy files.

Human3.6M order: pixel coordinates of the 17 joints in skeleton.JOINTS order, or of
the 16 keypoints without the root (the root is then the midpoint of the hips), one
pose or many:
    .json   [[x, y], ...] for one pose, a list of such poses, or {"poses": ...}
    .csv    one pose per row: x0,y0,x1,y1,... (34 or 32 numbers); a header row is allowed
    .npy    (17, 2), (16, 2), (N, 17, 2), (N, 16, 2), (N, 34) or (N, 32)
Detector keypoints (COCO-17, MMPose, COCO results, OpenPose, AlphaPose) carry
scores: a keypoint scored below min_score, or at (0, 0), is missing. Within one
person's sequence a missing joint is filled by linear interpolation over frames
(and marked); a single pose missing a joint is refused.
Output, root-relative, x right, y down, z away from the camera, in normalised
units and in the input's pixel scale (depth relative to the root in pixels):
    .json   {"joints", "units", "axes", "frame", "person", "filled",
             "pose_3d_normalised", "pose_3d_pixels"}
    .npy    (N, 2, 17, 3): [:, 0] normalised, [:, 1] pixels
    .csv    one row per pose: frame, person, x, y, z of each joint in pixels, filled joints
"""
import csv
import json
import os
from typing import NamedTuple

import numpy as np

from . import keypoints
from .atomic import atomic_write
from .dataset import normalise_2d
from .errors import TipsError
from .geometry import unproject_view
from .model import predict_depths
from .orientation import per_pose_correction
from .skeleton import JOINTS

INPUTS, OUTPUTS = (".json", ".csv", ".npy"), (".json", ".npy", ".csv")
AXES = "root-relative; x right, y down (image axes), z away from the camera"


class Poses(NamedTuple):
    """A user's 2D poses in Human3.6M order: pixels (N, 17, 2), each pose's frame
    and person ids (N,), and filled (N, 17), True where a joint was interpolated."""
    pixels: np.ndarray
    frame: np.ndarray
    person: np.ndarray
    filled: np.ndarray


class LiftError(TipsError):
    """Bad user input; the message names the file and what was expected."""


def _format(path, what, allowed):
    ext = os.path.splitext(path)[1].lower()
    if ext not in allowed:
        raise LiftError(f"{path}: unknown {what} format {ext or '(no extension)'!r}: expected "
                        f"{' or '.join(allowed)}")
    return ext


def read_poses(path, fmt="auto", min_score=0.3):
    """The Poses of a user's file (see the module's docstring), checked."""
    ext = _format(path, "input", INPUTS)
    if fmt not in keypoints.FORMATS:
        raise LiftError(f"unknown --format {fmt!r}: expected one of {', '.join(keypoints.FORMATS)}")
    if not os.path.isfile(path):
        raise LiftError(f"{path}: file not found")
    if os.path.getsize(path) == 0:
        raise LiftError(f"{path}: the file is empty")
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
    if fmt == "auto":
        fmt = _detect(data, ext)
    if fmt == "h36m":
        return _h36m_poses(data, path)
    if fmt == "coco17":
        det = keypoints.read_coco17_array(data, path)
    elif ext != ".json":
        raise LiftError(f"{path}: --format {fmt} is a JSON layout, not {ext}")
    else:
        det = keypoints.READERS[fmt](data, path)
    xy, frame, person = keypoints.to_h36m(det, min_score)
    pixels, filled = fill_missing(xy, frame, person, path)
    check_poses(pixels, path)
    return Poses(pixels, frame, person, filled)


def _detect(data, ext):
    if ext == ".json":
        return keypoints.detect_json_layout(data)
    if ext == ".npy" and np.ndim(data) in (2, 3) and np.shape(data)[-2:] == (17, 3):
        return "coco17"  # scores: no Human3.6M-ordered file has them
    return "h36m"


def _h36m_poses(data, path):
    if isinstance(data, dict):
        if "poses" not in data:
            raise LiftError(f"{path}: a JSON object must hold the poses under 'poses' (or be a detector's "
                            f"file: see --format)")
        data = data["poses"]
    try:
        arr = np.asarray(data, dtype=np.float64)
    except (ValueError, TypeError) as e:
        raise LiftError(f"{path}: cannot read {os.path.splitext(path)[1][1:]} poses ({e})") from None
    arr = check_poses(arr, path)
    return Poses(arr, np.arange(len(arr)), np.zeros(len(arr), int), np.zeros(arr.shape[:2], bool))


def fill_missing(xy, frame, person, path):
    """Fill NaN joints of each person's sequence by linear interpolation over the
    frames (held at the ends); refuse a joint that a single pose, or a whole
    sequence, lacks. Returns (xy filled, filled mask (N, 17))."""
    missing = np.isnan(xy).any(axis=-1)
    xy = xy.copy()
    for pid in np.unique(person):
        rows = np.flatnonzero(person == pid)
        rows = rows[np.argsort(frame[rows], kind="stable")]
        for j in np.flatnonzero(missing[rows].any(axis=0)):
            known = rows[~missing[rows, j]]
            if len(known) == 0:
                gap = rows[0]
                where = (f"pose {gap} (frame {frame[gap]}, person {pid})" if len(rows) == 1
                         else f"person {pid} (frames {frame[rows[0]]}-{frame[rows[-1]]})")
                raise LiftError(f"{path}: {where}: joint {JOINTS[j]!r} is missing (no keypoint scored "
                                f"at least --min-score) and cannot be filled from other frames")
            gaps = rows[missing[rows, j]]
            for c in (0, 1):
                xy[gaps, j, c] = np.interp(frame[gaps], frame[known], xy[known, j, c])
    return xy, missing


def _is_number(text):
    try:
        float(text)
        return True
    except ValueError:
        return False


def check_poses(arr, path):
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
        raise LiftError(f"{path}: pose {int(np.argmax(bad))} has NaN or infinite coordinates")
    if arr.shape[1] == 16:  # the root is the midpoint of the hips
        root = (arr[:, 0] + arr[:, 3]) / 2
        arr = np.concatenate([root[:, None], arr], axis=1)
    _, scale = normalise_2d(arr)
    if np.any(scale == 0):
        raise LiftError(f"{path}: pose {int(np.argmax(scale == 0))} is degenerate "
                        f"(all its points coincide)")
    return arr


def lift_poses(gen, params, state, pose_px, per_pose_sign=False, perspective=None):
    """Pixel poses (N, 17, 2) -> (normalised 3D (N, 17, 3), pixel-scale 3D (N, 17, 3)).
    per_pose_sign: the per-pose correction of orientation.py; perspective: the model's
    camera (its configuration's), through which the 2D pose is unprojected at z_hat."""
    pose_2d, scale = normalise_2d(pose_px)
    z_hat = predict_depths(gen, params, state, pose_2d.astype(np.float32)).astype(np.float64)
    if per_pose_sign:
        z_hat = per_pose_correction(pose_2d, z_hat)[0]
    pose_3d = unproject_view(pose_2d, z_hat, perspective)
    pixels = pose_3d * scale[:, None, None]
    pixels[..., :2] += pose_px[:, :1]
    return pose_3d, pixels


def write_poses(path, poses, pose_3d, pixels):
    """Write the lifted poses, atomically (temporary file, then rename)."""
    ext = _format(path, "output", OUTPUTS)
    if not os.path.isdir(os.path.dirname(os.path.abspath(path))):
        raise LiftError(f"{path}: the output folder does not exist")
    filled = [[JOINTS[j] for j in np.flatnonzero(row)] for row in poses.filled]
    with atomic_write(path, suffix=ext) as tmp:
        if ext == ".npy":
            np.save(tmp, np.stack([pose_3d, pixels], axis=1).astype(np.float32))
        elif ext == ".csv":
            with open(tmp, "w", newline="") as f:
                w = csv.writer(f)
                w.writerow(["frame", "person"] + [f"{j}_{c}" for j in JOINTS for c in "xyz"] + ["filled"])
                for i in range(len(pixels)):
                    w.writerow([int(poses.frame[i]), int(poses.person[i])]
                               + [f"{v:.3f}" for v in pixels[i].ravel()] + [";".join(filled[i])])
        else:
            with open(tmp, "w") as f:
                json.dump({"joints": JOINTS, "axes": AXES,
                           "units": {"pose_3d_normalised": "the 2D pose max-normalised into [-1, 1]",
                                     "pose_3d_pixels": "input pixels; depth in pixels of the same scale"},
                           "frame": poses.frame.tolist(), "person": poses.person.tolist(), "filled": filled,
                           "pose_3d_normalised": np.round(pose_3d, 6).tolist(),
                           "pose_3d_pixels": np.round(pixels, 3).tolist()}, f)
