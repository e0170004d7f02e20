"""Keypoint sets of 2D detectors, and how each becomes the 17 Human3.6M joints.

A keypoint set is a list of names, in the detector's order (docs/formats.md says
where each comes from). Every set but MPII's holds COCO's 17 keypoints, so one
table, H36M_FROM_COCO17, maps them all; Halpe-26's own head, neck and hip come
first where seen (H36M_FROM_HALPE26, as MotionBERT maps them); MPII's 16 keypoints
have their own table, H36M_FROM_MPII (below).

A table entry lists, for one of the 17 joints (skeleton.JOINTS order), the ways to
make it, tried in turn: a tuple of keypoint names is their mean and needs every one
of them seen; Seen(names) is the mean of those of them that are seen (one at least:
a side view sees one eye and one ear); Mid(joints) is the mean of Human3.6M joints
made before it. A made joint's score is the lowest score it used. These are not
Human3.6M's markers (its "head" sits higher, its "spine" is a marker on the back),
so expect a larger error than on Human3.6M's own joints.
"""
import numpy as np

from ..errors import TipsError
from ..method.skeleton import JOINTS

FORMATS = ("auto", "h36m", "coco17", "halpe26", "mpii", "openpose", "body25", "body25b", "coco18",
           "alphapose", "mmpose", "coco", "coco-results", "videopose3d")

COCO17 = ["nose", "left_eye", "right_eye", "left_ear", "right_ear", "left_shoulder", "right_shoulder",
          "left_elbow", "right_elbow", "left_wrist", "right_wrist", "left_hip", "right_hip",
          "left_knee", "right_knee", "left_ankle", "right_ankle"]
FEET = ["big_toe", "small_toe", "heel"]
# AlphaPose's Halpe-26 (MotionBERT's input): COCO-17, then head (top), neck, hip (centre), feet
HALPE26 = COCO17 + ["head", "neck", "hip", "left_big_toe", "right_big_toe", "left_small_toe",
                    "right_small_toe", "left_heel", "right_heel"]
# OpenPose: BODY_25 (its default model), BODY_25B (openpose_train's experimental model, the
# default of Pose2Sim: COCO-17's order, then upper neck and head top) and COCO-18
BODY25 = ["nose", "neck", "right_shoulder", "right_elbow", "right_wrist", "left_shoulder", "left_elbow",
          "left_wrist", "mid_hip", "right_hip", "right_knee", "right_ankle", "left_hip", "left_knee",
          "left_ankle", "right_eye", "left_eye", "right_ear", "left_ear"] + \
         [f"{s}_{f}" for s in ("left", "right") for f in FEET]
BODY25B = COCO17 + ["upper_neck", "head_top"] + [f"{s}_{f}" for s in ("left", "right") for f in FEET]
COCO18 = BODY25[:8] + BODY25[9:19]
# MPII's 16 keypoints (Stacked Hourglass, 3d-pose-baseline's StackedHourglass/*.h5 files)
MPII16 = ["right_ankle", "right_knee", "right_hip", "left_hip", "left_knee", "left_ankle", "pelvis",
          "thorax", "upper_neck", "head_top", "right_wrist", "right_elbow", "right_shoulder",
          "left_shoulder", "left_elbow", "left_wrist"]
KEYPOINT_SETS = {"coco17": COCO17, "halpe26": HALPE26, "body25": BODY25, "body25b": BODY25B,
                 "coco18": COCO18, "mpii": MPII16, "h36m": JOINTS}


class Seen(tuple):
    """The mean of those of these keypoints that are seen (one at least)."""


class Mid(tuple):
    """The mean of these Human3.6M joints, made before this one."""


EYES_EARS = Seen(("left_eye", "right_eye", "left_ear", "right_ear"))
# COCO-17 to Human3.6M, as MMPose's pose-lifting demo and MotionBERT map it, with fallbacks:
# root = mid(hips), thorax = mid(shoulders), spine = mid(root, thorax), neck/nose = nose
# (else the seen eyes and ears), head = mid(eyes) (else the seen eyes and ears: a side
# view), hips, knees, ankles, shoulders, elbows and wrists one to one.
H36M_FROM_COCO17 = [
    [("left_hip", "right_hip")], [("right_hip",)], [("right_knee",)], [("right_ankle",)],
    [("left_hip",)], [("left_knee",)], [("left_ankle",)],
    [Mid(("hip", "thorax"))], [("left_shoulder", "right_shoulder")], [("nose",), EYES_EARS],
    [("left_eye", "right_eye"), EYES_EARS],
    [("left_shoulder",)], [("left_elbow",)], [("left_wrist",)],
    [("right_shoulder",)], [("right_elbow",)], [("right_wrist",)],
]
# Halpe-26: MotionBERT's halpe2h36m takes root = Halpe's hip, thorax = its neck and head =
# its head; where those are unseen, the COCO-17 rules
H36M_FROM_HALPE26 = [list(ways) for ways in H36M_FROM_COCO17]
H36M_FROM_HALPE26[JOINTS.index("hip")].insert(0, ("hip",))
H36M_FROM_HALPE26[JOINTS.index("thorax")].insert(0, ("neck",))
H36M_FROM_HALPE26[JOINTS.index("head")].insert(0, ("head",))


class KeypointError(TipsError):
    """A detector file that cannot be read as the layout it claims."""


def convert(xy, score, names, table, min_score=0.0):
    """(N, K, 2) keypoints named `names` and their (N, K) scores -> (xy (N, 17, 2),
    score (N, 17)) by `table`; a keypoint is seen where its score is > 0 and at least
    min_score. A joint that no way of the table can make is NaN with score 0."""
    k = {name: i for i, name in enumerate(names)}
    seen = (score > 0) & (score >= min_score)
    out_xy = np.full((len(xy), len(table), 2), np.nan)
    out_score = np.zeros((len(xy), len(table)))
    later = [j for j, ways in enumerate(table) if any(isinstance(w, Mid) for w in ways)]
    for j in [j for j in range(len(table)) if j not in later] + later:   # Mid needs its joints first
        for way in table[j]:
            todo = np.isnan(out_xy[:, j, 0])
            if isinstance(way, Mid):
                idx = [JOINTS.index(n) for n in way]
                p, s, ok = out_xy[:, idx], out_score[:, idx], ~np.isnan(out_xy[:, idx, 0]).any(1)
                mean = p.mean(axis=1)
            else:
                idx = [k[n] for n in way]
                p, s, ok_each = xy[:, idx], score[:, idx], seen[:, idx]
                if isinstance(way, Seen):
                    ok = ok_each.any(axis=1)
                    w = ok_each / np.maximum(ok_each.sum(axis=1, keepdims=True), 1)
                    mean = (p * w[..., None]).sum(axis=1)
                    s = np.where(ok_each, s, np.inf)
                else:
                    ok, mean = ok_each.all(axis=1), p.mean(axis=1)
            use = todo & ok
            out_xy[use, j] = mean[use]
            out_score[use, j] = s[use].min(axis=1)
    return out_xy, out_score


def unseen_sources(score_row, names, table, j, min_score):
    """The keypoints joint j of one pose would need that are unseen, for messages."""
    seen = {n for n, s in zip(names, score_row) if s > 0 and s >= min_score}
    out = []
    for way in table[j]:
        sources = [s for n in way for s in unseen_sources(score_row, names, table, JOINTS.index(n), min_score)] \
            if isinstance(way, Mid) else [n for n in way if n not in seen]
        out += [s for s in sources if s not in out]
    return out


def coco17_to_h36m(xy, score, min_score=0.0):
    """(N, 17, 2) COCO-17 keypoints and (N, 17) scores -> the 17 Human3.6M joints."""
    return convert(xy, score, COCO17, H36M_FROM_COCO17, min_score)


def to_h36m(xy, score, keypoint_set, min_score):
    """Keypoints of a named set -> (xy (N, 17, 2), NaN where a joint cannot be made, score)."""
    names = KEYPOINT_SETS[keypoint_set]
    if keypoint_set == "mpii":
        out, s = mpii_to_h36m(xy, np.where((score > 0) & (score >= min_score), score, 0.0))
        out[s <= 0] = np.nan
        return out, s
    if keypoint_set == "h36m":
        out = xy.astype(np.float64).copy()
        out[~((score > 0) & (score >= min_score))] = np.nan
        return out, score
    table = H36M_FROM_HALPE26 if keypoint_set == "halpe26" else H36M_FROM_COCO17
    return convert(xy, score, names, table, min_score)


def table_for(keypoint_set):
    return H36M_FROM_HALPE26 if keypoint_set == "halpe26" else H36M_FROM_COCO17


# The file-level layout test: where a file's shape fits two keypoint sets, the one whose
# people look like people. Per pose, the mean over the upper arms, forearms, thighs and
# shins of |log(right length / left length)|, and how far the hips' and the shoulders'
# widths exceed the thighs' and upper arms' lengths; the file's cost is the median over
# its poses. Measured: Human3.6M's true 2D poses 0.16 (read as COCO-17: 0.56), COCO-17
# keypoints made from them 0.16 (as Human3.6M's order: 1.02), BODY_25B 0.16 (as BODY_25:
# 0.96), BODY_25 0.16 (as BODY_25B: 0.70), the Stacked Hourglass detections as MPII 0.20
# (as Human3.6M's 16: 1.03); random points 0.76-0.89 (docs/formats.md).
PAIRS = [(("right_shoulder", "right_elbow"), ("left_shoulder", "left_elbow")),
         (("right_elbow", "right_wrist"), ("left_elbow", "left_wrist")),
         (("right_hip", "right_knee"), ("left_hip", "left_knee")),
         (("right_knee", "right_ankle"), ("left_knee", "left_ankle"))]
PLAUSIBLE_COST, CLEAR_MARGIN, CLEAR_GAP = 0.35, 2.0, 0.15


def _length(pose, a, b):
    return np.linalg.norm(pose[:, JOINTS.index(a)] - pose[:, JOINTS.index(b)], axis=-1)


def limb_log_ratios(pose):
    """(N, 4): |log(right / left)| of the upper arms, forearms, thighs and shins of (N, 17, 2) poses."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.stack([np.abs(np.log(_length(pose, *r) / _length(pose, *left))) for r, left in PAIRS], axis=1)


def layout_cost(pose):
    """The median over (N, 17, 2) poses (NaN where unseen) of how unlike people they are."""
    with np.errstate(divide="ignore", invalid="ignore"):
        thigh = (_length(pose, "right_hip", "right_knee") + _length(pose, "left_hip", "left_knee")) / 2
        arm = (_length(pose, "right_shoulder", "right_elbow") + _length(pose, "left_shoulder", "left_elbow")) / 2
        wide = (np.maximum(np.log(_length(pose, "right_hip", "left_hip") / thigh), 0)
                + np.maximum(np.log(_length(pose, "right_shoulder", "left_shoulder") / arm / 2), 0))
        cost = np.minimum(limb_log_ratios(pose), 5).mean(axis=1) + np.minimum(wide, 5)
    cost = cost[np.isfinite(cost)]
    return float(np.median(cost)) if len(cost) else np.inf


def choose_by_geometry(candidates, xy, score, min_score):
    """The keypoint set among `candidates` whose geometry decides it (plausible, and
    the others' costs at least CLEAR_MARGIN times and CLEAR_GAP above it), else None;
    and each candidate's cost."""
    costs = {c: layout_cost(to_h36m(xy, score, c, min_score)[0]) for c in candidates}
    best = min(costs, key=costs.get)
    others = [v for c, v in costs.items() if c != best]
    if costs[best] < PLAUSIBLE_COST and all(v > max(CLEAR_MARGIN * costs[best], costs[best] + CLEAR_GAP)
                                            for v in others):
        return best, costs
    return None, costs


# Each Human3.6M joint as a weighted sum of MPII keypoints (skeleton.JOINTS order), chosen
# by measurement: mean pixel distance to the true projections over every 5th frame of the
# training subjects S1, S5, S6, S7 (all cameras; S8 in brackets), docs/formats.md:
#   root   = mid(hips)                  10.9 px (8: 7.0)    MPII's pelvis: 11.2
#   thorax = upper neck                  7.6 px (8.3)       MPII's thorax: 16.8
#   spine  = mid(root, upper neck)       9.9 px (6.7)       mid(pelvis, thorax): 12.5; thorax: 40.7
#   neck/nose = upper neck + 1/3 (head top - upper neck)   10.5 px (9.8)    upper neck: 21.1
#   head   = upper neck + 2/3 (head top - upper neck)      10.7 px (12.1)   head top: 25.0
# hips, knees, ankles, shoulders, elbows and wrists one to one (8.7-15.0 px).
H36M_FROM_MPII = [
    {"left_hip": 0.5, "right_hip": 0.5}, {"right_hip": 1}, {"right_knee": 1}, {"right_ankle": 1},
    {"left_hip": 1}, {"left_knee": 1}, {"left_ankle": 1},
    {"left_hip": 0.25, "right_hip": 0.25, "upper_neck": 0.5}, {"upper_neck": 1},
    {"upper_neck": 2 / 3, "head_top": 1 / 3}, {"upper_neck": 1 / 3, "head_top": 2 / 3},
    {"left_shoulder": 1}, {"left_elbow": 1}, {"left_wrist": 1},
    {"right_shoulder": 1}, {"right_elbow": 1}, {"right_wrist": 1},
]


def mpii_to_h36m(xy, score):
    """(N, 16, 2) MPII keypoints and (N, 16) scores -> the 17 Human3.6M joints
    (H36M_FROM_MPII); a joint's score is the lowest of the keypoints it uses."""
    out_xy = np.zeros((len(xy), len(H36M_FROM_MPII), 2))
    out_score = np.zeros((len(xy), len(H36M_FROM_MPII)))
    for j, weights in enumerate(H36M_FROM_MPII):
        idx = [MPII16.index(k) for k in weights]
        out_xy[:, j] = np.einsum("k,nkc->nc", np.array(list(weights.values())), xy[:, idx])
        out_score[:, j] = score[:, idx].min(axis=1)
    return out_xy, out_score
