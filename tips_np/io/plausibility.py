"""Flags a user can filter lifted poses on: the 2D skeleton is implausible, or the
lifted pose fails a handedness test (orientation.py).

Implausible 2D: a bone collapsed (shorter than COLLAPSED of the pose's size, the
diagonal of its box), or a whole arm or leg (upper + lower part) more than RATIO_MAX
times as long as the other side's. Foreshortening makes single bones vary a lot in
2D, whole limbs less. Flagged shares (measured on the shipped sample's 23,172 true 2D
training poses, and on every 5th frame of every 10th Stacked Hourglass file of the
training subjects, 30,691 detections):
    true 2D poses          0.28 %  (collapsed 0.20 %, limb ratio 0.09 %)
    Stacked Hourglass      2.3 %   (collapsed 2.1 %: keypoints on one pixel; ratio 0.2 %)
Handedness: the legs and torso tests pass on 99.7-100 % of true 3D poses, so a lifted
pose that fails one is likely facing the wrong way in that part (lift --per-pose-sign
corrects it); the arms' tests pass on only 66-74 % and are not used.
"""
import numpy as np

from ..method.orientation import TESTS
from ..method.skeleton import BONES, JOINTS

RATIO_MAX = 4.0
COLLAPSED = 0.003
J = {name: i for i, name in enumerate(JOINTS)}


def _limb(pose, side, parts):
    names = [f"{side}_{p}" for p in parts]
    return sum(np.linalg.norm(pose[:, J[a]] - pose[:, J[b]], axis=-1) for a, b in zip(names, names[1:]))


def implausible_2d(pose_px):
    """For (N, 17, 2) pixel poses, each pose's list of reasons (empty when plausible)."""
    size = np.linalg.norm(pose_px.max(1) - pose_px.min(1), axis=-1)
    reasons = [[] for _ in range(len(pose_px))]
    for a, b in BONES:
        short = np.linalg.norm(pose_px[:, a] - pose_px[:, b], axis=-1) < COLLAPSED * size
        for i in np.flatnonzero(short):
            reasons[i].append(f"collapsed {JOINTS[a]}-{JOINTS[b]}")
    for limb, parts in (("arm", ("shoulder", "elbow", "wrist")), ("leg", ("hip", "knee", "ankle"))):
        right, left = _limb(pose_px, "right", parts), _limb(pose_px, "left", parts)
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = right / left
        for i in np.flatnonzero(~((ratio <= RATIO_MAX) & (ratio >= 1 / RATIO_MAX))):
            reasons[i].append(f"right/left {limb} length {ratio[i]:.2f}")
    return reasons


def handedness_failures(pose_3d):
    """For (N, 17, 3) lifted poses, each pose's failed tests among legs and torso."""
    fails = {name: TESTS[name][0](pose_3d) < 0 for name in ("legs", "torso")}
    return [[name for name, f in fails.items() if f[i]] for i in range(len(pose_3d))]
