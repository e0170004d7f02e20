"""Evaluation on the Human3.6M test split, as the papers report it.

P-MPJPE (protocol II): the mean per-joint error in mm after aligning the
prediction to the ground truth by the similarity transform (scale, rotation,
translation) that fits best (Procrustes; reflections excluded, as in
VideoPose3D's evaluation). "P-MPJPE, reflection allowed": the same with an
orthogonal alignment that may also reflect, as the TIPS authors' later evaluation
code and ElePose's compute their published figures (so a mirrored pose scores as
well as the right one: it compares like for like with the papers, not the depth
sign). N-MPJPE: after the best scale alone. PCK3D and AUC (the papers'
MPI-INF-3DHP metrics), after the strict P-MPJPE alignment: the share of joints
within 150 mm, and that share averaged over thresholds 0, 5, ..., 150 mm. The
prediction is the 3D pose (x, y, z_hat) in normalised units, compared on all 17
joints.
"""
import csv
import json
import os

import numpy as np

from . import checkpoint, dataset
from .atomic import atomic_write
from .geometry import unproject_view
from .model import predict_depths
from .orientation import per_pose_correction
from .skeleton import ACTION_ABBREV, ACTIONS


PCK_THRESHOLD = 150.0                          # mm
AUC_THRESHOLDS = np.arange(0.0, 151.0, 5.0)     # mm


def procrustes_align(pred, gt, reflection=False):
    """Align each pred (N, J, 3) to gt by the best s R p + t (R a rotation, or any
    orthogonal matrix if reflection)."""
    mu_p, mu_g = pred.mean(axis=1, keepdims=True), gt.mean(axis=1, keepdims=True)
    p, g = pred - mu_p, gt - mu_g
    norm_p = np.sqrt((p ** 2).sum(axis=(1, 2), keepdims=True))
    norm_g = np.sqrt((g ** 2).sum(axis=(1, 2), keepdims=True))
    p, g = p / norm_p, g / norm_g
    U, s, Vt = np.linalg.svd(g.transpose(0, 2, 1) @ p)    # H = g^T p
    V = Vt.transpose(0, 2, 1)
    R = V @ U.transpose(0, 2, 1)
    # a reflection (det R = -1) is replaced by the best proper rotation
    d = np.ones(len(R)) if reflection else np.sign(np.linalg.det(R))
    V[:, :, -1] *= d[:, None]
    s[:, -1] *= d
    R = V @ U.transpose(0, 2, 1)
    scale = s.sum(axis=1)[:, None, None] * norm_g / norm_p
    return scale * (pred - mu_p) @ R + mu_g


def aligned_errors(pred, gt, reflection=False):
    """(N, J) per-joint errors after Procrustes alignment."""
    return np.linalg.norm(procrustes_align(pred, gt, reflection) - gt, axis=-1)


def p_mpjpe(pred, gt, reflection=False):
    """(N,) mean per-joint error after Procrustes alignment."""
    return aligned_errors(pred, gt, reflection).mean(axis=1)


def pck3d(errors, threshold=PCK_THRESHOLD):
    """(N,) per-pose percentage of joints within `threshold` mm, from (N, J) errors."""
    return 100.0 * (errors < threshold).mean(axis=1)


def auc(errors):
    """(N,) per-pose PCK3D averaged over thresholds 0-150 mm in 5 mm steps."""
    return np.mean([pck3d(errors, t) for t in AUC_THRESHOLDS], axis=0)


def n_mpjpe(pred, gt):
    """(N,) mean per-joint error after the best scale (both root-centred)."""
    s = (pred * gt).sum(axis=(1, 2)) / (pred * pred).sum(axis=(1, 2))
    return np.linalg.norm(s[:, None, None] * pred - gt, axis=-1).mean(axis=1)


def per_action(errors, action):
    """Mean error of each of the 15 actions and their average (the tables' Avg.)."""
    means = [float(errors[action == a].mean()) if np.any(action == a) else float("nan")
             for a in range(len(ACTIONS))]
    return dict(zip(ACTIONS, means), Average=float(np.nanmean(means)))


def evaluate_depths(z_hat, testset, perspective=None):
    """Tables for predicted depths, per action: P-MPJPE (strict and reflection
    allowed), N-MPJPE, PCK3D and AUC (%), and two diagnostics: P-MPJPE with every
    depth negated (the mirrored solution) and the trivial baseline z_hat = 0. The 3D
    pose is the 2D pose unprojected at z_hat by the model's camera (geometry.unproject_view:
    (x, y, z_hat) for an orthographic model, as the papers)."""
    pose_2d = testset.pose_2d.astype(np.float64)
    gt = testset.pose_3d.astype(np.float64)
    z_hat = z_hat.astype(np.float64)
    pred = unproject_view(pose_2d, z_hat, perspective)
    errors = aligned_errors(pred, gt)
    return {
        "P-MPJPE": per_action(errors.mean(axis=1), testset.action),
        "P-MPJPE reflection allowed": per_action(p_mpjpe(pred, gt, reflection=True), testset.action),
        "N-MPJPE": per_action(n_mpjpe(pred, gt), testset.action),
        "PCK3D": per_action(pck3d(errors), testset.action),
        "AUC": per_action(auc(errors), testset.action),
        "P-MPJPE mirrored": per_action(p_mpjpe(unproject_view(pose_2d, -z_hat, perspective), gt),
                                       testset.action),
        "P-MPJPE z=0": per_action(p_mpjpe(unproject_view(pose_2d, np.zeros_like(z_hat)), gt),
                                  testset.action),
    }


def evaluate_runs(runs, data=None, xp=np, per_pose_sign=False, echo=print):
    """Evaluate trained models (run folders or checkpoints) side by side on the
    test split of `data` (default: each model's own data file), writing
    evaluation.json/.csv into each run folder (beside a model file that is not a
    run's checkpoint.h5: <name>.evaluation.json/.csv). per_pose_sign applies the per-pose
    correction of orientation.py first. Returns rows for format_table: each
    model's metrics, then the z_hat = 0 baseline of each test set used."""
    rows, testsets, baselines = {}, {}, {}
    for run in runs:
        ckpt = checkpoint.load(run)
        gen, params, state = checkpoint.load_model(ckpt, xp, echo)
        path = data or ckpt["config"].get("data")
        if path not in testsets:
            testsets[path] = dataset.load(path, "test")
        test = testsets[path]
        run_dir = os.path.dirname(ckpt["path"])   # the folder of the checkpoint file
        label = os.path.basename(os.path.normpath(run_dir)) or run_dir
        stem = "evaluation"
        if os.path.basename(ckpt["path"]) != "checkpoint.h5":  # best.h5, or an exported model in data/
            name = os.path.splitext(os.path.basename(ckpt["path"]))[0]
            label, stem = f"{label}/{name}", f"{name}.evaluation"
        z_hat = predict_depths(gen, params, state, test.pose_2d)
        if per_pose_sign:
            z_hat, flipped = per_pose_correction(test.pose_2d, z_hat)
            echo(f"{label}: per-pose sign flipped the legs of {flipped['legs']:.1%} and the torso of "
                 f"{flipped['torso']:.1%} of the test poses")
        result = evaluate_depths(z_hat, test, ckpt["config"].get("perspective"))
        save_results(run_dir, result, stem)
        rows.update({f"{label} {m}": result[m] for m in result if m != "P-MPJPE z=0"})
        baselines[os.path.basename(test.path)] = result["P-MPJPE z=0"]
    for name, baseline in baselines.items():
        rows[f"z=0 on {name} P-MPJPE"] = baseline
    return rows


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


def save_results(run_dir, result, stem="evaluation"):
    """Write <stem>.json and <stem>.csv (one row per metric) into run_dir."""
    for name, write in ((f"{stem}.json", lambda f: json.dump(result, f, indent=2)),
                        (f"{stem}.csv", lambda f: _write_csv(f, result))):
        with atomic_write(os.path.join(run_dir, name)) as tmp, open(tmp, "w", newline="") as f:
            write(f)


def _write_csv(f, result):
    w = csv.writer(f)
    w.writerow(["metric"] + ACTIONS + ["Average"])
    for metric, r in result.items():
        w.writerow([metric] + [f"{r[a]:.2f}" for a in ACTIONS + ["Average"]])
