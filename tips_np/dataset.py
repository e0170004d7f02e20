"""Loading prepared Human3.6M files for training and evaluation.

Every 2D pose is root-centred and max-normalised into [-1, 1], as the papers do:
    Y = (p - p_root) / s,   s = max_ij |p_ij - p_root,j|,
and s (pixels) is kept, so a prediction can be scaled back to the image.
"""
import os

import h5py
import numpy as np

from .h36m import DataError

DEFAULT_DATA = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                            "data", "h36m_sample.h5")
FIELDS = {"pose_2d": (17, 2), "pose_3d": (17, 3), "subject": (), "action": (), "camera": ()}


def normalise_2d(pose_2d):
    """(N, 17, 2) pixels -> (root-centred pose in [-1, 1], scale s (N,)).

    A pose whose points all coincide has s = 0 and cannot be normalised; the
    caller must refuse it (see lifting.py)."""
    centred = pose_2d - pose_2d[:, :1]
    scale = np.abs(centred).max(axis=(1, 2))
    with np.errstate(divide="ignore", invalid="ignore"):
        return centred / scale[:, None, None], scale


class PoseSet:
    """One split of a prepared file, held in memory once.

    pose_2d: (N, 17, 2) float32, normalised;  scale: (N,) pixels
    pose_3d: (N, 17, 3) float32 mm, root-centred (camera frame)
    action, subject, camera: (N,) int
    """

    def __init__(self, path, split):
        if split not in ("train", "test"):
            raise ValueError(f"split must be 'train' or 'test', got {split!r}")
        if not os.path.isfile(path):
            raise DataError(f"{path}: data file not found (build one with `python cli.py prepare-data`)")
        try:
            f = h5py.File(path, "r")
        except OSError as e:
            raise DataError(f"{path}: not a readable HDF5 file ({e})") from None
        with f:
            for name, shape in FIELDS.items():
                if name not in f:
                    raise DataError(f"{path}: missing dataset '{name}' (is it a prepare-data file?)")
                if f[name].shape[1:] != shape:
                    expected = ", ".join(["N", *map(str, shape)])
                    raise DataError(f"{path}: '{name}' should have shape ({expected}), got {f[name].shape}")
            if f"{split}_subjects" not in f.attrs:
                raise DataError(f"{path}: attribute '{split}_subjects' is missing (the subjects of the "
                                f"{split} split, as prepare-data writes them)")
            subjects = list(f.attrs[f"{split}_subjects"])
            subject = f["subject"][()]
            keep = np.isin(subject, subjects)
            self.path, self.split = path, split
            self.subject = subject[keep]
            self.action = f["action"][()][keep]
            self.camera = f["camera"][()][keep]
            pose_2d = f["pose_2d"][()][keep]
            pose_3d = f["pose_3d"][()][keep]
        if len(pose_2d) == 0:
            raise DataError(f"{path}: no poses of the {split} subjects {subjects}")
        if not (np.all(np.isfinite(pose_2d)) and np.all(np.isfinite(pose_3d))):
            raise DataError(f"{path}: 'pose_2d' or 'pose_3d' holds non-finite values")
        self.pose_2d, self.scale = normalise_2d(pose_2d)
        if np.any(self.scale == 0):
            raise DataError(f"{path}: a 2D pose has all joints at one point")
        self.pose_3d = pose_3d - pose_3d[:, :1]

    def __len__(self):
        return len(self.pose_2d)

    def select(self, keep):
        """A new set of the poses where `keep` (a mask or indices) selects."""
        part = object.__new__(PoseSet)
        part.path, part.split = self.path, self.split
        for name in ("pose_2d", "scale", "pose_3d", "subject", "action", "camera"):
            setattr(part, name, getattr(self, name)[keep])
        return part

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


def load(path=None, split="train"):
    return PoseSet(path or DEFAULT_DATA, split)
