"""Human3.6M preparation: the 3d-pose-baseline layout -> one flat HDF5 file.

For each sequence and each of the subject's 4 cameras:
    X_cam = R (X_world - T)                  (R as stored, transposed on reading)
    u = f * X_cam[:2] / X_cam[2] + c          (pinhole projection, pixels)
with, optionally, the cameras' radial/tangential distortion (Brown-Conrady):
    x_d = x (1 + k1 r^2 + k2 r^4 + k3 r^6) + 2 p1 x y + p2 (r^2 + 2 x^2), y_d likewise.
3d-pose-baseline's project_point_radial has the terms 2 p1 x y and 2 p2 x^2 once,
not twice; this module follows the model, not that code.
"""
import os
import re

import h5py
import numpy as np

from .atomic import atomic_write
from .errors import TipsError
from .skeleton import (ACTION_FROM_FILE, ACTIONS, CAMERA_IDS, FIVE_LIMBS, H36M_INDEX, JOINTS,
                       PARTS, SUBJECTS, TEST_SUBJECTS, TRAIN_SUBJECTS)

MIN_DEPTH_MM = 1000.0  # a joint nearer than 1 m (or behind) the camera means bad data


class DataError(TipsError):
    """Bad input data; the message names the file and what was expected."""


def read_cameras(path, subject):
    """The 4 cameras of a subject: dicts with R (3,3), T (3,), f (2,), c (2,), k (3,), p (2,)."""
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


def read_sequence(path):
    """(T, 17, 3) world joints in mm from one '3D_positions' file (float32 or float64)."""
    try:
        with h5py.File(path, "r") as f:
            if "3D_positions" not in f:
                raise DataError(f"{path}: no dataset '3D_positions'")
            raw = f["3D_positions"][()]
    except OSError as e:
        raise DataError(f"{path}: not a readable HDF5 file ({e})") from None
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


def prepare(root, out, every=1, subjects=SUBJECTS, distortion=False, progress=None):
    """Convert the Human3.6M tree under `root` into the HDF5 file `out`.

    Written to a temporary file and renamed, so `out` is never half-written.
    `progress(n)` is called after each sequence. Returns the number of poses.
    """
    cam_path = os.path.join(root, "cameras.h5")
    if not os.path.isdir(root):
        raise DataError(f"{root}: folder not found")
    cams = {s: read_cameras(cam_path, s) for s in subjects}
    seqs = list_sequences(root, subjects)
    cols = {k: [] for k in ("pose_2d", "pose_3d", "subject", "action", "camera", "frame", "take")}
    takes = []
    for s, action, take, path in seqs:
        X = read_sequence(path)[::every]
        frames = np.arange(0, len(X) * every, every)
        for ci, cam in enumerate(cams[s]):
            X_cam, uv = project(X, cam, distortion)
            if X_cam[..., 2].min() < MIN_DEPTH_MM:
                raise DataError(f"{path}: camera {CAMERA_IDS[ci]} of S{s} puts joints "
                                f"{X_cam[..., 2].min():.0f} mm from it (expected in front, > 1 m)")
            cols["pose_2d"].append(uv.astype(np.float32))
            cols["pose_3d"].append(X_cam.astype(np.float32))
            cols["subject"].append(np.full(len(X), s, np.int8))
            cols["action"].append(np.full(len(X), ACTIONS.index(action), np.int8))
            cols["camera"].append(np.full(len(X), ci, np.int8))
            cols["frame"].append(frames.astype(np.int32))
            cols["take"].append(np.full(len(X), len(takes), np.int16))
        takes.append(f"S{s}/{take}")
        if progress:
            progress(1)
    if not takes:
        raise DataError(f"{root}: no sequence files found")
    with atomic_write(out) as tmp, h5py.File(tmp, "w") as f:
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
        })
    return sum(len(a) for a in cols["subject"])
