"""Measure rules for the joints MPII's 16 keypoints lack against Human3.6M's projections.

    python docs/mpii_mapping.py path/to/h36m        # a 3d-pose-baseline tree with StackedHourglass/

For every 5th frame of each training subject's Stacked Hourglass detections (all four
cameras), the mean pixel distance between each candidate rule and the pinhole projection
of Human3.6M's joint. keypoints.H36M_FROM_MPII holds the rules chosen on S1, S5, S6 and S7
(docs/formats.md); S8 is printed apart.
"""
import os
import sys

import h5py
import numpy as np

from tips_np.io import h36m
from tips_np.io.keypoints import MPII16
from tips_np.method.skeleton import CAMERA_IDS, JOINTS

K = {name: i for i, name in enumerate(MPII16)}


def mean(det, *names, weights=None):
    w = np.full(len(names), 1 / len(names)) if weights is None else np.asarray(weights)
    return np.einsum("k,nkc->nc", w, det[:, [K[n] for n in names]])


def pairs(root, subject, every=5):
    """(detections (N, 16, 2), projections (N, 17, 2)) of one subject."""
    cams = h36m.read_cameras(os.path.join(root, "cameras.h5"), subject)
    det, uv = [], []
    for _, _, take, path in h36m.list_sequences(root, [subject]):
        X = h36m.read_sequence(path)
        for cam, cid in zip(cams, CAMERA_IDS):
            det_path = h36m.detection_path(root, subject, take, cid)
            if os.path.isfile(det_path):
                with h5py.File(det_path, "r") as f:
                    d = np.asarray(f["poses"][()], np.float64)
                if len(d) == len(X):
                    det.append(d[::every])
                    uv.append(h36m.project(X[::every], cam)[1])
    return np.concatenate(det), np.concatenate(uv)


CANDIDATES = {
    "hip": {"mid(hips)": lambda d: mean(d, "left_hip", "right_hip"), "pelvis": lambda d: mean(d, "pelvis")},
    "thorax": {"upper neck": lambda d: mean(d, "upper_neck"), "thorax": lambda d: mean(d, "thorax"),
               "mid(shoulders)": lambda d: mean(d, "left_shoulder", "right_shoulder")},
    "spine": {"mid(root, upper neck)": lambda d: mean(d, "left_hip", "right_hip", "upper_neck",
                                                      weights=[0.25, 0.25, 0.5]),
              "mid(pelvis, thorax)": lambda d: mean(d, "pelvis", "thorax"), "thorax": lambda d: mean(d, "thorax")},
    "neck": {f"upper neck + {t:.1f} (head top - upper neck)":
             (lambda t: lambda d: mean(d, "upper_neck", "head_top", weights=[1 - t, t]))(t)
             for t in np.arange(0, 1.01, 0.1)},
    "head": {f"upper neck + {t:.1f} (head top - upper neck)":
             (lambda t: lambda d: mean(d, "upper_neck", "head_top", weights=[1 - t, t]))(t)
             for t in np.arange(0, 1.01, 0.1)},
}

if __name__ == "__main__":
    root = sys.argv[1]
    data = {s: pairs(root, s) for s in (1, 5, 6, 7, 8)}
    for joint, rules in CANDIDATES.items():
        j = JOINTS.index(joint)
        for name, rule in rules.items():
            err = {s: np.linalg.norm(rule(d) - uv[:, j], axis=-1).mean() for s, (d, uv) in data.items()}
            print(f"{joint:7s} {name:42s} S1/5/6/7 {np.mean([err[s] for s in (1, 5, 6, 7)]):5.1f}  S8 {err[8]:5.1f}")
