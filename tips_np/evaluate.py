"""Evaluation on the Human3.6M test split, as the papers report it.

P-MPJPE (protocol II): the mean per-joint error in mm after aligning the
prediction to the ground truth by the similarity transform (scale, rotation,
translation) that fits best (Procrustes; reflections excluded, as in
VideoPose3D's evaluation). N-MPJPE: after the best scale alone. The prediction is
the 3D pose (x, y, z_hat) in normalised units, compared on all 17 joints.
"""
import csv
import json
import os

import numpy as np

from .atomic import atomic_write
from .backend import get_array_module, to_numpy
from .geometry import compose
from .skeleton import ACTION_ABBREV, ACTIONS


def procrustes_align(pred, gt):
    """Align each pred (N, J, 3) to gt by the best s R p + t (no reflection)."""
    mu_p, mu_g = pred.mean(axis=1, keepdims=True), gt.mean(axis=1, keepdims=True)
    p, g = pred - mu_p, gt - mu_g
    norm_p = np.sqrt((p ** 2).sum(axis=(1, 2), keepdims=True))
    norm_g = np.sqrt((g ** 2).sum(axis=(1, 2), keepdims=True))
    p, g = p / norm_p, g / norm_g
    U, s, Vt = np.linalg.svd(g.transpose(0, 2, 1) @ p)    # H = g^T p
    V = Vt.transpose(0, 2, 1)
    R = V @ U.transpose(0, 2, 1)
    # a reflection (det R = -1) is replaced by the best proper rotation
    d = np.sign(np.linalg.det(R))
    V[:, :, -1] *= d[:, None]
    s[:, -1] *= d
    R = V @ U.transpose(0, 2, 1)
    scale = s.sum(axis=1)[:, None, None] * norm_g / norm_p
    return scale * (pred - mu_p) @ R + mu_g


def p_mpjpe(pred, gt):
    """(N,) mean per-joint error after Procrustes alignment."""
    return np.linalg.norm(procrustes_align(pred, gt) - gt, axis=-1).mean(axis=1)


def n_mpjpe(pred, gt):
    """(N,) mean per-joint error after the best scale (both root-centred)."""
    s = (pred * gt).sum(axis=(1, 2)) / (pred * pred).sum(axis=(1, 2))
    return np.linalg.norm(s[:, None, None] * pred - gt, axis=-1).mean(axis=1)


def predict_depths(gen, params, state, pose_2d, batch_size=8192):
    """z_hat (N, 17) for normalised 2D poses (host arrays in, host arrays out),
    the networks in evaluation mode (batch-norm running statistics)."""
    xp = get_array_module(next(iter(params.values())))
    out = []
    for i in range(0, len(pose_2d), batch_size):
        z, _ = gen.lift(params, xp.asarray(pose_2d[i:i + batch_size]), train=False, state=state)
        out.append(to_numpy(z))
    return np.concatenate(out)


def per_action(errors, action):
    """Mean error of each of the 15 actions and their average (the tables' Avg.)."""
    means = [float(errors[action == a].mean()) if np.any(action == a) else float("nan")
             for a in range(len(ACTIONS))]
    return dict(zip(ACTIONS, means), Average=float(np.nanmean(means)))


def evaluate_depths(z_hat, testset):
    """Tables for predicted depths: P-MPJPE and N-MPJPE per action, and two
    diagnostics: P-MPJPE with every depth negated (the mirrored solution a
    generator can settle on) and the trivial baseline z_hat = 0."""
    pose_2d = testset.pose_2d.astype(np.float64)
    gt = testset.pose_3d.astype(np.float64)
    pred = compose(pose_2d, z_hat.astype(np.float64))
    return {
        "P-MPJPE": per_action(p_mpjpe(pred, gt), testset.action),
        "N-MPJPE": per_action(n_mpjpe(pred, gt), testset.action),
        "P-MPJPE mirrored": per_action(p_mpjpe(compose(pose_2d, -z_hat.astype(np.float64)), gt),
                                       testset.action),
        "P-MPJPE z=0": per_action(p_mpjpe(compose(pose_2d, np.zeros_like(pose_2d[..., 0])), gt),
                                  testset.action),
    }


def format_table(rows):
    """rows: {label: {action: mm, ..., 'Average': mm}} -> the papers' Table 1 layout
    (two halves of eight columns)."""
    names = ACTIONS + ["Average"]
    heads = ACTION_ABBREV + ["Avg."]
    width = max(len(k) for k in rows) + 2
    lines = []
    for lo, hi in ((0, 8), (8, 16)):
        lines.append("Method".ljust(width) + "".join(h.rjust(9) for h in heads[lo:hi]))
        for label, r in rows.items():
            lines.append(label.ljust(width) + "".join(f"{r[n]:9.1f}" for n in names[lo:hi]))
        lines.append("")
    return "\n".join(lines).rstrip()


def save_results(run_dir, result):
    """Write evaluation.json and evaluation.csv (one row per metric) into run_dir."""
    for name, write in (("evaluation.json", lambda f: json.dump(result, f, indent=2)),
                        ("evaluation.csv", lambda f: _write_csv(f, result))):
        with atomic_write(os.path.join(run_dir, name)) as tmp, open(tmp, "w", newline="") as f:
            write(f)


def _write_csv(f, result):
    w = csv.writer(f)
    w.writerow(["metric"] + ACTIONS + ["Average"])
    for metric, r in result.items():
        w.writerow([metric] + [f"{r[a]:.2f}" for a in ACTIONS + ["Average"]])
