"""Loading prepared Human3.6M files for training and evaluation.

Every 2D pose is root-centred and max-normalised into [-1, 1], as the papers do:
    Y = (p - p_root) / s,   s = max_ij |p_ij - p_root,j|,
and s (pixels) is kept, so a prediction can be scaled back to the image
(geometry.normalise_2d).
"""
import os

import h5py
import numpy as np

from ..method.geometry import normalise_2d
from .h36m import DataError

DEFAULT_DATA = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
                            "data", "h36m_sample.h5")
FIELDS = {"pose_2d": (17, 2), "pose_3d": (17, 3), "subject": (), "action": (), "camera": ()}


INPUTS = {"projections": "pose_2d", "detections": "pose_2d_det"}   # the 2D a set is read from


class PoseSet:
    """One split of a prepared file, held in memory once.

    pose_2d: (N, 17, 2) float32, normalised;  scale: (N,) pixels;  root: (N, 2) pixels
    pose_3d: (N, 17, 3) float32 mm, root-centred (camera frame); NaN where has_3d is False
    has_3d: (N,) bool;  action, subject, camera: (N,) int
    inputs: which 2D pose_2d holds, 'projections' (of the 3D poses: 'pose_2d' in the
    file) or 'detections' (a 2D detector's keypoints: 'pose_2d_det'); rows without
    that 2D are left out. `paired` (detections of the same rows, or None) is set by
    with_detections().
    """

    def __init__(self, path, split, inputs="projections"):
        if split not in ("train", "test"):
            raise ValueError(f"split must be 'train' or 'test', got {split!r}")
        if not os.path.isfile(path):
            raise DataError(f"{path}: data file not found (build one with `python cli.py prepare-data`)")
        try:
            f = h5py.File(path, "r")
        except OSError as e:
            raise DataError(f"{path}: not a readable HDF5 file ({e})") from None
        key = INPUTS[inputs]
        with f:
            for name, shape in {**FIELDS, key: (17, 2)}.items():
                if name == "pose_3d" and name not in f:
                    continue  # a file of 2D poses only (prepare-data --keypoints)
                if name not in f:
                    hint = (" (prepare-data writes it where the data has a detector's keypoints)"
                            if key == "pose_2d_det" else " (is it a prepare-data file?)")
                    raise DataError(f"{path}: missing dataset '{name}'{hint}")
                if f[name].shape[1:] != shape:
                    expected = ", ".join(["N", *map(str, shape)])
                    raise DataError(f"{path}: '{name}' should have shape ({expected}), got {f[name].shape}")
            if split == "test" and "pose_3d" not in f:
                raise DataError(f"{path}: the file has no 3D poses (2D only, prepare-data --keypoints): "
                                f"nothing to evaluate against")
            if f"{split}_subjects" not in f.attrs:
                raise DataError(f"{path}: attribute '{split}_subjects' is missing (the subjects of the "
                                f"{split} split, as prepare-data writes them)")
            subjects = list(f.attrs[f"{split}_subjects"])
            self.keypoints = str(f.attrs.get("keypoints", "h36m"))   # the layout the 2D came from (prepare_2d)
            subject = f["subject"][()]
            keep = np.isin(subject, subjects)
            raw = f[key][()][keep]
            pose_3d = f["pose_3d"][()][keep] if "pose_3d" in f else np.full(raw.shape[:2] + (3,), np.nan, np.float32)
            finite = np.all(np.isfinite(raw), axis=(1, 2))
            self.path, self.split, self.inputs = path, split, inputs
            self.subject = subject[keep][finite]
            self.action = f["action"][()][keep][finite]
            self.camera = f["camera"][()][keep][finite]
            self.row = np.flatnonzero(keep)[finite]   # each pose's row in the file
            self.has_3d = (f["has_3d"][()][keep][finite] if "has_3d" in f
                           else np.full(int(finite.sum()), "pose_3d" in f))
            pose_2d, pose_3d = raw[finite], pose_3d[finite]
        if len(pose_2d) == 0:
            raise DataError(f"{path}: no {inputs} of the {split} subjects {subjects}")
        if not np.all(np.isfinite(pose_3d[self.has_3d])):
            raise DataError(f"{path}: 'pose_3d' holds non-finite values")
        self.pose_2d, self.scale = normalise_2d(pose_2d)
        self.root = pose_2d[:, 0].astype(np.float64)
        if np.any(self.scale == 0):
            raise DataError(f"{path}: a 2D pose has all joints at one point")
        self.pose_3d = pose_3d - pose_3d[:, :1]
        self.paired = None

    def __len__(self):
        return len(self.pose_2d)

    def select(self, keep):
        """A new set of the poses where `keep` (a mask or indices) selects."""
        part = object.__new__(PoseSet)
        part.path, part.split, part.inputs, part.keypoints = self.path, self.split, self.inputs, self.keypoints
        for name in ("pose_2d", "scale", "root", "pose_3d", "has_3d", "row", "subject", "action", "camera"):
            setattr(part, name, getattr(self, name)[keep])
        part.paired = None if self.paired is None else self.paired.select(keep)
        return part

    def with_2d(self, pose_2d):
        """The same poses seen through other 2D inputs (N, 17, 2), normalised (a
        detector's, noisy or adapted ones): what a lifter is scored on."""
        part = self.select(slice(None))
        part.pose_2d = pose_2d
        return part

    def with_3d(self):
        """The poses that have a 3D pose (all, in Human3.6M's own rows)."""
        if not self.has_3d.any():
            raise DataError(f"{self.path}: the file has no 3D poses (2D only): nothing to score against")
        return self if self.has_3d.all() else self.select(self.has_3d)

    def with_detections(self):
        """The poses that have both 2D inputs, this set's (projections) with `paired`
        holding the same rows' detections (a PoseSet of inputs 'detections')."""
        det = PoseSet(self.path, self.split, "detections")
        both = np.intersect1d(self.row, det.row)
        part = self.select(np.searchsorted(self.row, both))
        part.paired = det.select(np.searchsorted(det.row, both))
        return part

    def tracks(self):
        """(track, frame) of each pose, read from the file: a track is one video (a
        subject's take seen by one camera; one person of a user's own file), frame its
        frame ids. For smoothing over time (smoothing.py)."""
        with h5py.File(self.path, "r") as f:
            if "frame" not in f:
                raise DataError(f"{self.path}: no 'frame' ids (files prepared before they were written): "
                                f"nothing to smooth over time; prepare the file again")
            frame = f["frame"][()][self.row]
            video = next((f[name][()][self.row] for name in ("take", "person") if name in f), np.zeros(len(self)))
        return [f"{s}/{v}/{c}" for s, v, c in zip(self.subject, video, self.camera)], frame

    def hold_out(self, subject, every=10):
        """(training poses without `subject`, every `every`-th pose of `subject`):
        a validation set of a training subject, for choices that must not see
        the test split (the papers' test subjects are 9 and 11)."""
        mask = self.subject == subject
        if not mask.any():
            raise DataError(f"{self.path}: no poses of subject {subject} in the {self.split} split "
                            f"(its subjects: {sorted(set(self.subject.tolist()))})")
        return self.select(~mask), self.select(np.flatnonzero(mask)[::every])

    def batches(self, batch_size, rng):
        """Shuffled index batches of one epoch (the last partial batch is dropped,
        unless the set is smaller than one batch). Only indices are shuffled: a
        batch is gathered by the caller, the data is never copied whole."""
        order = rng.permutation(len(self))
        n = max(len(self) // batch_size, 1)
        for i in range(n):
            yield order[i * batch_size:(i + 1) * batch_size]


def load(path=None, split="train", inputs="projections"):
    return PoseSet(path or DEFAULT_DATA, split, inputs)


def prepare_2d(poses, out, source):
    """A training file of a user's own 2D poses, no 3D (prepare-data --keypoints):
    `poses` as lifting.read_poses gives them (pixels (N, 17, 2), frame and person ids).
    Every pose is a training pose of 'subject' 0; there is no test split."""
    from ..atomic import atomic_write
    from ..method.skeleton import JOINTS
    n = len(poses.pixels)
    _, scale = normalise_2d(poses.pixels)
    if n == 0 or np.any(scale == 0):
        raise DataError(f"{source}: no 2D poses to train on" if n == 0 else
                        f"{source}: pose {int(np.argmax(scale == 0))} has all its joints at one point")
    with atomic_write(out) as tmp, h5py.File(tmp, "w") as f:
        f["pose_2d"] = np.asarray(poses.pixels, np.float32)
        for name, values, dtype in (("subject", np.zeros(n), np.int8), ("action", np.zeros(n), np.int8),
                                    ("camera", np.zeros(n), np.int8), ("has_3d", np.zeros(n), bool)):
            f[name] = np.asarray(values).astype(dtype)
        for name, ids in (("frame", poses.frame), ("person", poses.person)):   # the file's own ids
            ids = list(ids)
            numbers = all(isinstance(v, (int, np.integer)) for v in ids)
            f[name] = (np.asarray(ids, np.int64) if numbers else
                       np.asarray([str(v) for v in ids], dtype=h5py.string_dtype()))
        f.attrs.update({"joints": JOINTS, "train_subjects": [0], "test_subjects": np.zeros(0, np.int64),
                        "source": source, "units": "pose_2d: pixels (2D only: no 3D poses)",
                        "keypoints": poses.keypoints})
    return n
