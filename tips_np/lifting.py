"""Lifting 2D poses that a user brings, from JSON, CSV or .npy files.

Input: pixel coordinates of the 17 joints in skeleton.JOINTS order, or of the 16
keypoints without the root (the root is then the midpoint of the hips), one pose
or many:
    .json   [[x, y], ...] for one pose, a list of such poses, or {"poses": ...}
    .csv    one pose per row: x0,y0,x1,y1,... (34 or 32 numbers); a header row is allowed
    .npy    (17, 2), (16, 2), (N, 17, 2), (N, 16, 2), (N, 34) or (N, 32)
Output: the 3D poses (x, y, z_hat) in normalised units and in the input's pixel
scale (x, y back at their pixels, depth relative to the root in pixels):
    .json   {"joints": [...], "pose_3d_normalised": [...], "pose_3d_pixels": [...]}
    .npy    (N, 2, 17, 3): [:, 0] normalised, [:, 1] pixels
"""
import csv
import json
import os

import numpy as np

from .atomic import atomic_write
from .dataset import normalise_2d
from .errors import TipsError
from .geometry import compose
from .model import predict_depths
from .orientation import per_pose_correction
from .skeleton import JOINTS

INPUTS, OUTPUTS = (".json", ".csv", ".npy"), (".json", ".npy")


class LiftError(TipsError):
    """Bad user input; the message names the file and what was expected."""


def _format(path, what, allowed):
    ext = os.path.splitext(path)[1].lower()
    if ext not in allowed:
        raise LiftError(f"{path}: unknown {what} format {ext or '(no extension)'!r}: expected "
                        f"{' or '.join(allowed)}")
    return ext


def read_poses(path):
    """(N, 17, 2) float64 pixel poses from a user's file, checked."""
    ext = _format(path, "input", INPUTS)
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
            if isinstance(data, dict):
                if "poses" not in data:
                    raise LiftError(f"{path}: a JSON object must hold the poses under 'poses'")
                data = data["poses"]
        else:
            with open(path, newline="") as f:
                rows = [r for r in csv.reader(f) if r]
            if rows and not _is_number(rows[0][0]):
                rows = rows[1:]  # a header
            data = [[float(v) for v in r] for r in rows]
        arr = np.asarray(data, dtype=np.float64)
    except LiftError:
        raise
    except (ValueError, TypeError, json.JSONDecodeError, OSError) as e:
        raise LiftError(f"{path}: cannot read {ext[1:]} poses ({e})") from None
    return check_poses(arr, path)


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


def lift_poses(gen, params, state, pose_px, per_pose_sign=False):
    """Pixel poses (N, 17, 2) -> (normalised 3D (N, 17, 3), pixel-scale 3D (N, 17, 3)).
    per_pose_sign: the per-pose correction of orientation.py."""
    pose_2d, scale = normalise_2d(pose_px)
    z_hat = predict_depths(gen, params, state, pose_2d.astype(np.float32)).astype(np.float64)
    if per_pose_sign:
        z_hat = per_pose_correction(pose_2d, z_hat)[0]
    pose_3d = compose(pose_2d, z_hat)
    pixels = pose_3d * scale[:, None, None]
    pixels[..., :2] += pose_px[:, :1]
    return pose_3d, pixels


def write_poses(path, pose_3d, pixels):
    """Write atomically (temporary file, then rename)."""
    ext = _format(path, "output", OUTPUTS)
    if not os.path.isdir(os.path.dirname(os.path.abspath(path))):
        raise LiftError(f"{path}: the output folder does not exist")
    with atomic_write(path, suffix=ext) as tmp:
        if ext == ".npy":
            np.save(tmp, np.stack([pose_3d, pixels], axis=1).astype(np.float32))
        else:
            with open(tmp, "w") as f:
                json.dump({"joints": JOINTS, "pose_3d_normalised": np.round(pose_3d, 6).tolist(),
                           "pose_3d_pixels": np.round(pixels, 3).tolist()}, f)
