"""Human3.6M preparation: the 3d-pose-baseline layout -> one flat HDF5 file.

For each sequence and each of the subject's 4 cameras:
    X_cam = R (X_world - T)                  (R as stored, transposed on reading)
    u = f * X_cam[:2] / X_cam[2] + c          (pinhole projection, pixels)
with, optionally, the cameras' radial/tangential distortion (Brown-Conrady):
    x_d = x (1 + k1 r^2 + k2 r^4 + k3 r^6) + 2 p1 x y + p2 (r^2 + 2 x^2), y_d likewise.
3d-pose-baseline's project_point_radial has the terms 2 p1 x y and 2 p2 x^2 once,
not twice; this module follows the model, not that code.

Where a subject's folder also holds 3d-pose-baseline's Stacked Hourglass detections
(S<n>/StackedHourglass/<Action>[_<n>].<camera id>.h5, `poses` (T, 16, 2): MPII's 16
keypoints), they are mapped into the 17 joints (keypoints.mpii_to_h36m) and written
as `pose_2d_det`, frame by frame beside the projections. A detection file with no 3D
sequence still gives 2D poses of that subject: its rows have `pose_2d_det` only
(`pose_2d` and `pose_3d` NaN, `has_3d` False), for training on detections.
"""
import os
import re

import h5py
import numpy as np

from ..atomic import hdf5_file
from ..errors import TipsError
from ..method.skeleton import (ACTION_FROM_FILE, ACTIONS, CAMERA_IDS, FIVE_LIMBS, H36M_INDEX, JOINTS,
                               PARTS, SUBJECTS, TEST_SUBJECTS, TRAIN_SUBJECTS)
from .keypoints import mpii_to_h36m

MIN_DEPTH_MM = 1000.0  # a joint nearer than 1 m (or behind) the camera means bad data


class DataError(TipsError):
    """Bad input data; the message names the file and what was expected."""


def read_cameras(path, subject):
    """The 4 cameras of a subject: dicts with R (3,3), T (3,), f (2,), c (2,), k (3,), p (2,).
    An empty, truncated or damaged file is a DataError naming it."""
    try:
        return _read_cameras(path, subject)
    except (OSError, KeyError, ValueError, TypeError, RuntimeError) as e:
        raise DataError(f"{path}: not a readable camera file (empty, truncated or damaged: {e})") from None


def _read_cameras(path, subject):
    if not os.path.isfile(path):
        raise DataError(f"{path}: camera file not found")
    cams = []
    with h5py.File(path, "r") as f:
        for i in range(1, 5):
            key = f"subject{subject}/camera{i}"
            if key not in f:
                raise DataError(f"{path}: missing camera group '{key}'")
            cam = {}
            for name, shape in [("R", (3, 3)), ("T", (3, 1)), ("f", (2, 1)), ("c", (2, 1)),
                                ("k", (3, 1)), ("p", (2, 1))]:
                if name not in f[key]:
                    raise DataError(f"{path}: '{key}' has no dataset '{name}'")
                v = np.asarray(f[key][name][()], np.float64)
                if v.shape != shape or not np.all(np.isfinite(v)):
                    raise DataError(f"{path}: '{key}/{name}' should be finite with shape {shape}, "
                                    f"got {v.shape}")
                cam[name] = v
            cam["R"] = cam["R"].T  # the 3d-pose-baseline convention
            cams.append({k: (v if k == "R" else v.ravel()) for k, v in cam.items()})
    return cams


def read_array(path, name):
    """One dataset of an HDF5 file as float64 (stored as float32 or float64), or one line
    naming the file and what is wrong."""
    try:
        with h5py.File(path, "r") as f:
            if name not in f:
                raise DataError(f"{path}: no dataset '{name}'")
            return np.asarray(f[name][()], np.float64)
    except OSError as e:
        raise DataError(f"{path}: not a readable HDF5 file ({e})") from None
    except (KeyError, ValueError, TypeError, RuntimeError) as e:  # damaged, or not numbers
        raise DataError(f"{path}: '{name}' cannot be read as numbers ({e})") from None


def read_sequence(path):
    """(T, 17, 3) world joints in mm from one '3D_positions' file (float32 or float64)."""
    raw = read_array(path, "3D_positions")
    if raw.ndim != 2 or raw.shape[0] != 96:
        raise DataError(f"{path}: '3D_positions' should have shape (96, T), got {raw.shape}")
    if not np.all(np.isfinite(raw)):
        raise DataError(f"{path}: '3D_positions' holds non-finite values")
    return raw.T.reshape(-1, 32, 3)[:, H36M_INDEX].astype(np.float64)


def project(X_world, cam, distortion=False):
    """World joints (T, J, 3) -> camera-frame joints (T, J, 3) and pixels (T, J, 2)."""
    X_cam = (X_world - cam["T"]) @ cam["R"].T
    xy = X_cam[..., :2] / X_cam[..., 2:]
    if distortion:
        r2 = np.sum(xy ** 2, axis=-1, keepdims=True)
        k, p = cam["k"], cam["p"]
        radial = 1 + k[0] * r2 + k[1] * r2 ** 2 + k[2] * r2 ** 3
        tan = p[0] * xy[..., 1:] + p[1] * xy[..., :1]
        xy = xy * (radial + 2 * tan) + np.flip(p) * r2
    return X_cam, cam["f"] * xy + cam["c"]


def list_sequences(root, subjects):
    """[(subject, action, take, path)] sorted; raises if a subject folder is missing."""
    seqs = []
    for s in subjects:
        folder = os.path.join(root, f"S{s}", "MyPoses", "3D_positions")
        if not os.path.isdir(folder):
            raise DataError(f"{folder}: folder not found (expected the 3d-pose-baseline layout "
                            f"S<n>/MyPoses/3D_positions/<Action>.h5)")
        for name in sorted(os.listdir(folder)):
            m = re.fullmatch(r"([A-Za-z]+)( \d+)?\.h5", name)
            if not m:
                continue
            action = ACTION_FROM_FILE.get(m.group(1), m.group(1))
            if action not in ACTIONS:
                raise DataError(f"{os.path.join(folder, name)}: unknown action {m.group(1)!r}")
            seqs.append((s, action, name[:-3], os.path.join(folder, name)))
    return seqs


def detection_path(root, subject, take, camera):
    """The Stacked Hourglass file of one take and camera ('Directions 1' -> 'Directions_1')."""
    return os.path.join(root, f"S{subject}", "StackedHourglass", f"{take.replace(' ', '_')}.{camera}.h5")


def read_detections(path):
    """(T, 17, 2) pixels: one Stacked Hourglass file's MPII keypoints mapped into the
    17 joints (NaN where a keypoint is missing or at (0, 0))."""
    raw = read_array(path, "poses")
    if raw.ndim != 3 or raw.shape[1:] != (16, 2):
        raise DataError(f"{path}: 'poses' should have shape (T, 16, 2) (MPII's keypoints), got {raw.shape}")
    score = np.where(np.all(raw == 0, axis=-1) | ~np.all(np.isfinite(raw), axis=-1), 0.0, 1.0)
    xy, score = mpii_to_h36m(raw, score)
    xy[score <= 0] = np.nan
    return xy


def detection_only_takes(root, subject, seqs):
    """Takes with detections but no 3D sequence: [(take, {camera index: path})]."""
    folder = os.path.join(root, f"S{subject}", "StackedHourglass")
    if not os.path.isdir(folder):
        return []
    with_3d = {take.replace(" ", "_") for s, _, take, _ in seqs if s == subject}
    found = {}
    for name in sorted(os.listdir(folder)):
        m = re.fullmatch(r"([A-Za-z]+(?:_\d+)?)\.(\d+)\.h5", name)
        if m and m.group(1) not in with_3d and m.group(2) in CAMERA_IDS:
            found.setdefault(m.group(1), {})[CAMERA_IDS.index(m.group(2))] = os.path.join(folder, name)
    return sorted(found.items())


def prepare(root, out, every=1, subjects=SUBJECTS, distortion=False, progress=None):
    """Convert the Human3.6M tree under `root` into the HDF5 file `out`.

    Written to a temporary file and renamed, so `out` is never half-written.
    `progress(n)` is called after each sequence. Returns the number of 2D/3D pose pairs.
    """
    cam_path = os.path.join(root, "cameras.h5")
    if not os.path.isdir(root):
        raise DataError(f"{root}: folder not found")
    cams = {s: read_cameras(cam_path, s) for s in subjects}
    seqs = list_sequences(root, subjects)
    detections = any(os.path.isdir(os.path.join(root, f"S{s}", "StackedHourglass")) for s in subjects)
    cols = {k: [] for k in ("pose_2d", "pose_3d", "subject", "action", "camera", "frame", "take")
            + (("pose_2d_det", "has_3d") if detections else ())}
    takes = []
    for s, action, take, path in seqs:
        X_all = read_sequence(path)
        X = X_all[::every]
        frames = np.arange(0, len(X_all), every)
        for ci, cam in enumerate(cams[s]):
            X_cam, uv = project(X, cam, distortion)
            if X_cam[..., 2].min() < MIN_DEPTH_MM:
                raise DataError(f"{path}: camera {CAMERA_IDS[ci]} of S{s} puts joints "
                                f"{X_cam[..., 2].min():.0f} mm from it (expected in front, > 1 m)")
            cols["pose_2d"].append(uv.astype(np.float32))
            cols["pose_3d"].append(X_cam.astype(np.float32))
            if detections:  # NaN where this take and camera has no detection file
                det = np.full(uv.shape, np.nan, np.float32)
                det_path = detection_path(root, s, take, CAMERA_IDS[ci])
                if os.path.isfile(det_path):
                    xy = read_detections(det_path)
                    if len(xy) != len(X_all):
                        raise DataError(f"{det_path}: {len(xy)} frames, but its 3D sequence {path} has "
                                        f"{len(X_all)} (expected the same frames)")
                    det = xy[frames].astype(np.float32)
                cols["pose_2d_det"].append(det)
                cols["has_3d"].append(np.ones(len(X), bool))
            cols["subject"].append(np.full(len(X), s, np.int8))
            cols["action"].append(np.full(len(X), ACTIONS.index(action), np.int8))
            cols["camera"].append(np.full(len(X), ci, np.int8))
            cols["frame"].append(frames.astype(np.int32))
            cols["take"].append(np.full(len(X), len(takes), np.int16))
        takes.append(f"S{s}/{take}")
        if progress:
            progress(1)
    for s in subjects if detections else ():
        for take, paths in detection_only_takes(root, s, seqs):
            action = ACTION_FROM_FILE.get(take.split("_")[0], take.split("_")[0])
            if action not in ACTIONS:
                continue
            for ci, det_path in sorted(paths.items()):
                det = read_detections(det_path)[::every].astype(np.float32)
                cols["pose_2d_det"].append(det)
                cols["pose_2d"].append(np.full(det.shape, np.nan, np.float32))
                cols["pose_3d"].append(np.full(det.shape[:2] + (3,), np.nan, np.float32))
                cols["has_3d"].append(np.zeros(len(det), bool))
                cols["subject"].append(np.full(len(det), s, np.int8))
                cols["action"].append(np.full(len(det), ACTIONS.index(action), np.int8))
                cols["camera"].append(np.full(len(det), ci, np.int8))
                cols["frame"].append(np.arange(0, len(det) * every, every).astype(np.int32))
                cols["take"].append(np.full(len(det), len(takes), np.int16))
            takes.append(f"S{s}/{take.replace('_', ' ')} (2D only)")
    if not takes:
        raise DataError(f"{root}: no sequence files found")
    with hdf5_file(out) as f:  # built in memory, then written whole: a full disk is one line
        for k, v in cols.items():
            a = np.concatenate(v)
            f.create_dataset(k, data=a, compression="gzip", compression_opts=4,
                             chunks=(min(len(a), 16384),) + a.shape[1:], shuffle=True)
        f.attrs.update({
            "joints": JOINTS, "h36m_index": H36M_INDEX, "actions": ACTIONS,
            "cameras": CAMERA_IDS, "takes": takes,
            "train_subjects": TRAIN_SUBJECTS, "test_subjects": TEST_SUBJECTS,
            "parts": str({k: PARTS[k] for k in ["torso", "legs"] + FIVE_LIMBS}),
            "source": root, "frame_step": every,
            "distortion": bool(distortion),
            "units": "pose_2d: pixels; pose_3d: mm, camera frame",
            **({"detections": "Stacked Hourglass (MPII-trained), MPII's 16 keypoints mapped by "
                              "keypoints.mpii_to_h36m"} if detections else {}),
        })
    return sum(int(np.isfinite(a[:, 0, 0]).sum()) for a in cols["pose_3d"])   # the 2D/3D pairs
