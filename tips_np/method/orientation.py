"""The depth sign, decided from anatomy, with no 3D labels.

Why a run can land on either sign. Let M = diag(1, 1, -1) mirror the depth. For
the random view R(a, e) = R_x(e) R_y(a), M R_y(a) M = R_y(-a) and M R_x(e) M =
R_x(-e), so R(-a, -e) M = M R(a, e), and the orthographic P ignores depth: P M = P.
Hence the mirrored pose seen from (-a, -e) projects exactly like the pose seen from
(a, e): P R(-a, -e) M p = P R(a, e) p. Views are drawn symmetrically, so the
discriminator's L_adv and the reprojection L2D (TIPS eqs. 2, 6) cannot tell the two
apart, and the three 90-degree terms (eqs. 3-5) map onto each other (eq. 3 of the
mirror is eq. 4 of the original, eq. 5 onto itself). Every loss is invariant under
z_hat -> -z_hat, so left alone a run settles on either sign by chance.

Anatomy is not invariant: a mirror reverses handedness. Camera frame: x right,
y down, z away from the camera (right-handed). For a person,
    right   = their right joint - their left joint,
    up      = a higher joint - a lower one,
    forward = up x right,
which for a person facing the camera (right = -x, up = -y) is (-y) x (-x) = -z:
towards the camera, the way they face. A mirror turns forward into backward
(M a . (M b x M c) = det(M) a . (b x c) = -a . (b x c)), so each test below
passes on a pose exactly when it fails on the pose's mirror image. Shares of
Human3.6M's ground-truth 3D poses that pass (the shipped sample's 31,528 poses;
the mirror images pass the complement):
    legs   the knees lie in front of the hip-ankle lines (legs' own frame)   99.7 %
    torso  the neck/nose lies in front of mid(thorax, head)                  100.0 %
    torso without a nose: the thorax lies behind mid(hip, head)              81.5 %
           (every 10th pose of S1, S5, S6, S7, S8; for 2D with no nose, MPII's,
           where the mapping into the 17 joints puts the neck/nose on the thorax-head line)
    arms   an elbow lies behind the shoulder-wrist midpoint (torso's frame)  66-74 %

A generator ends in tanh(h W + b), and tanh is odd: negating the final Linear's W
and b negates every depth that network predicts, exactly. `orient` scores each
sign pattern of the generator's groups on a fixed subset of training 2D poses and
flips the groups whose flip raises the tests' shares, summed, by more than MARGIN:
a group whose share sits near one half is reported, not flipped back and forth.
"""
import itertools

import numpy as np

from .geometry import compose
from .model import predict_depths
from .skeleton import JOINTS, PARTS

J = {name: i for i, name in enumerate(JOINTS)}
MARGIN = 0.2        # flip when the tests, summed, pass on 0.2 more of the poses
N_POSES = 4096      # training poses the decision looks at


def _mid(pose, *joints):
    return sum(pose[:, J[j]] for j in joints) / len(joints)


def _forward(pose, right, left, top, bottom):
    """forward = up x right, up = top - bottom, right = right - left (joint names or tuples)."""
    as_tuple = (lambda j: j if isinstance(j, tuple) else (j,))
    r = _mid(pose, *as_tuple(right)) - _mid(pose, *as_tuple(left))
    up = _mid(pose, *as_tuple(top)) - _mid(pose, *as_tuple(bottom))
    return np.cross(up, r)


def legs_test(pose):
    """(knee - mid(hip, ankle)) . forward summed over both legs, in the legs' own frame."""
    fwd = _forward(pose, "right_hip", "left_hip", ("right_hip", "left_hip"), ("right_ankle", "left_ankle"))
    bend = sum(pose[:, J[f"{s}_knee"]] - _mid(pose, f"{s}_hip", f"{s}_ankle") for s in ("right", "left"))
    return (bend * fwd).sum(-1)


def torso_forward(pose):
    return _forward(pose, "right_shoulder", "left_shoulder", "head", "spine")


def torso_test(pose):
    """(neck - mid(thorax, head)) . forward: the nose is in front of the head's axis."""
    return ((pose[:, J["neck"]] - _mid(pose, "thorax", "head")) * torso_forward(pose)).sum(-1)


def torso_test_no_nose(pose):
    """-(thorax - mid(hip, head)) . forward: the chest lies behind the line from the hip to
    the head (the upper back's curve), read from joints MPII's keypoints have."""
    return -((pose[:, J["thorax"]] - _mid(pose, "hip", "head")) * torso_forward(pose)).sum(-1)


def arm_test(side):
    def test(pose):
        """-(elbow - mid(shoulder, wrist)) . forward: the elbow is behind the arm's chord."""
        bend = pose[:, J[f"{side}_elbow"]] - _mid(pose, f"{side}_shoulder", f"{side}_wrist")
        return -(bend * torso_forward(pose)).sum(-1)
    return test


# name: (test, the joints it reads); a test passes where its value is > 0
TESTS = {
    "legs": (legs_test, PARTS["legs"]),
    "torso": (torso_test, [J[j] for j in ("spine", "thorax", "neck", "head", "left_shoulder", "right_shoulder")]),
    "larm": (arm_test("left"), [J[j] for j in ("spine", "head", "left_shoulder", "right_shoulder",
                                               "left_elbow", "left_wrist")]),
    "rarm": (arm_test("right"), [J[j] for j in ("spine", "head", "left_shoulder", "right_shoulder",
                                                "right_elbow", "right_wrist")]),
}


# the tests for 2D poses with no nose of their own (keypoints with none: MPII's)
TESTS_NO_NOSE = {**TESTS, "torso": (torso_test_no_nose, [J[j] for j in ("hip", "spine", "thorax", "head",
                                                                         "left_shoulder", "right_shoulder")])}


def tests_for(keypoints):
    """The tests that suit 2D poses of a keypoint set (keypoints.KEYPOINT_SETS, 'h36m')."""
    return TESTS_NO_NOSE if keypoints == "mpii" else TESTS


def pass_rates(pose_3d, tests=TESTS):
    """{test: share of the poses (N, 17, 3) that pass it}."""
    return {name: float(np.mean(test(pose_3d) > 0)) for name, (test, _) in tests.items()}


def group_tests(joints, tests=TESTS):
    """The tests that read any joint a group predicts."""
    return [name for name, (_, read) in tests.items() if set(read) & set(joints)]


def orientation_poses(pose_2d, n=N_POSES):
    """A fixed, evenly spaced subset of (training) 2D poses: no random draw, so the
    decision never touches the training run's random stream."""
    return pose_2d[np.linspace(0, len(pose_2d) - 1, min(n, len(pose_2d))).astype(int)]


def decide(gen, z_hat, pose_2d, flip=True, tests=TESTS):
    """The sign of each group (+1 keep, -1 flip) for depths z_hat (N, 17) of
    2D poses (N, 17, 2), and each group's share of passing poses under those signs.

    Every sign pattern of the groups is scored by the sum of the tests' shares
    (a test may read several groups, as the five limbs' do); the best pattern is
    taken when it beats keeping every sign by more than MARGIN (never if not flip)."""
    pose_2d, z_hat = np.asarray(pose_2d, np.float64), np.asarray(z_hat, np.float64)

    def shares_of(signs):
        z = z_hat.copy()
        for s, (_, joints, _) in zip(signs, gen.groups):
            z[:, joints] *= s
        return pass_rates(compose(pose_2d, z), tests)

    scored = {signs: shares_of(signs) for signs in itertools.product((1, -1), repeat=len(gen.groups))}
    score = {signs: sum(shares.values()) for signs, shares in scored.items()}
    signs = keep = (1,) * len(gen.groups)
    best = max(scored, key=lambda s: (score[s], s == keep))
    if flip and score[best] - score[keep] > MARGIN:
        signs = best
    return signs, [float(np.mean([scored[signs][t] for t in group_tests(joints, tests)]))
                   for _, joints, _ in gen.groups]


def flip_group(net, params, adam_state=None):
    """Negate every depth `net` predicts: its final Linear's W and b (tanh is odd),
    and Adam's first moments of both, whose gradients the flip negates too."""
    for k in ("W", "b"):
        name = f"{net.output_layer}/{k}"
        params[name] *= -1
        if adam_state and f"m/{name}" in adam_state:
            adam_state[f"m/{name}"] *= -1


def orient(gen, params, state, pose_2d, adam_state=None, flip=True, tests=TESTS):
    """Decide the depth sign of every group of `gen` on 2D poses (host array) and,
    if flip, flip the groups that face backwards, in place (tests: tests_for the
    poses' keypoints).

    Returns {group: {'share': share of the poses passing the group's tests after
    the decision, 'flipped': bool}}."""
    z_hat = predict_depths(gen, params, state, pose_2d)
    signs, shares = decide(gen, z_hat, pose_2d, flip, tests)
    report = {}
    for s, share, (name, _, net) in zip(signs, shares, gen.groups):
        if s < 0:
            flip_group(net, params, adam_state)
        report[name] = {"share": share, "flipped": bool(s < 0)}
    return report


def describe(report):
    """'torso 0.97  legs 0.99 (flipped)' for the epoch line."""
    return "  ".join(f"{g} {r['share']:.2f}{' (flipped)' if r['flipped'] else ''}"
                     + (" (undecided)" if abs(r["share"] - 0.5) < MARGIN / 2 else "")
                     for g, r in report.items())


# Per-pose correction at inference (an option of lift and evaluate): the legs and
# torso tests pass on ~100 % of real poses, so a single pose that fails one has
# that part facing backwards; negate that part's depths for that pose alone.
PER_POSE_PARTS = {"legs": PARTS["legs"], "torso": PARTS["torso"]}


def per_pose_correction(pose_2d, z_hat):
    """z_hat (N, 17) with, pose by pose, the legs' or the torso's depths negated
    where that part fails its own test. Returns (corrected z_hat, {part: share flipped})."""
    pose_2d, z = np.asarray(pose_2d, np.float64), np.array(z_hat, np.float64)
    flipped = {}
    for part, joints in PER_POSE_PARTS.items():
        fails = TESTS[part][0](compose(pose_2d, z)) < 0
        z[np.ix_(fails, joints)] *= -1
        flipped[part] = float(fails.mean())
    return z.astype(np.asarray(z_hat).dtype), flipped
