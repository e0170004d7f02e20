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

from ..atomic import atomic_write, make_folder
from ..errors import TipsError
from ..io import checkpoint, dataset
from ..io.smoothing import smooth_tracks
from ..method.adapter import adapt, add_noise, choose_adapter, suited
from ..method.geometry import normalise_2d, unproject_view
from ..method.model import predict_depths
from ..method.orientation import per_pose_correction
from ..method.skeleton import ACTION_ABBREV, ACTIONS


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
        "P-MPJPE floor": floor(testset),
    }


def true_depths(pose_2d, pose_3d):
    """The true depths at the 2D pose's scale (N, 17): the root-centred 3D pose's
    depths times the factor c that best maps its x, y onto the 2D pose's (least
    squares). (x, y, z) of the input's x, y and these depths is the best any lifter
    that keeps the input's x, y can do (the floor beside each figure): what is left
    is the 2D's own error."""
    centred = pose_3d - pose_3d[:, :1]
    c = (pose_2d * centred[..., :2]).sum(axis=(1, 2)) / (centred[..., :2] ** 2).sum(axis=(1, 2))
    return c[:, None] * centred[..., 2]


def scoring_set(path, inputs="projections", noise=0.0, seed=0, subject=None, smooth=0.0):
    """The poses a lifter is scored on, with the 2D it is given: the test split, or
    every 10th pose of a training subject (subject: the detector's keypoints exist only
    for the training subjects); the projections, the detections ('pose_2d_det') or the
    orthographic projections (x, y of the 3D pose, as the TIPS authors' code scores),
    with Gaussian noise of `noise` pixels drawn from `seed`, then each video's track
    smoothed over time by a Gaussian of `smooth` frames (smoothing.py; the noise too),
    as lift --smooth does. Returns (set, variant: a name for the result files, '' for
    the test split's clean projections)."""
    if smooth and inputs == "orthographic":
        raise EvaluationError("--smooth smooths the projections or the detections, not --inputs orthographic")
    whole = dataset.load(path, "test") if subject is None else dataset.load(path, "train").with_3d()
    split = whole if subject is None else whole.hold_out(subject)[1]
    if inputs == "detections":
        split = split.with_detections()
        split = split.with_2d(split.paired.pose_2d)
    elif inputs == "orthographic":   # the TIPS authors' protocol: the x, y of the camera-frame 3D pose
        split = split.with_2d(normalise_2d(split.pose_3d[..., :2])[0])

    def with_noise(poses):
        if not noise:
            return poses
        return poses.with_2d(add_noise(poses.pose_2d, poses.scale, noise, np.random.default_rng(seed))[0])

    if not smooth:
        split = with_noise(split)
    else:   # the whole tracks (every pose of the subject), noisy, smoothed, then the scored poses' rows
        video = whole if subject is None else whole.hold_out(subject, every=1)[1]
        video = with_noise(video.with_detections().paired if inputs == "detections" else video)
        track, frame = video.tracks()
        pixels = video.pose_2d * video.scale[:, None, None] + video.root[:, None]
        smoothed = normalise_2d(smooth_tracks(pixels, track, frame, smooth))[0].astype(np.float32)
        split = split.with_2d(smoothed[np.searchsorted(video.row, split.row)])
    variant = ".".join(v for v in ("" if subject is None else f"S{subject}",
                                   "" if inputs == "projections" else inputs,
                                   f"noise{noise:g}-seed{seed}" if noise else "",
                                   f"smooth{smooth:g}" if smooth else "") if v)
    return split, variant


def evaluate_runs(runs, data=None, xp=np, per_pose_sign=False, echo=print, overwrite=False, inputs="projections",
                  noise=0.0, seed=0, subject=None, adapter="auto", smooth=0.0, mirror_average=False):
    """Evaluate trained models (run folders or checkpoints) side by side on the
    test split of `data` (default: each model's own data file), writing
    evaluation.json/.csv into each run folder (beside a model file that is not a
    run's checkpoint.h5: <name>.evaluation.json/.csv); on data other than the
    model's own, evaluation.<data file's name>.json/.csv (results_stem). Each JSON
    records the data file; one made from another file is replaced only if
    `overwrite`. per_pose_sign applies the per-pose correction of orientation.py
    first. inputs, noise, seed, subject, smooth: the 2D given (scoring_set; the result
    files' names say which); adapter: the lifter's 2D adapter to apply
    (adapter.choose_adapter); mirror_average: as lift's (model.predict_depths).
    Returns rows for format_table: each model's metrics, then the z_hat = 0 baseline
    and the floor (the input's x, y with the true depths) of each input used."""
    rows, testsets, baselines = {}, {}, {}
    for run in runs:
        ckpt = checkpoint.load(run)
        gen, params, state = checkpoint.load_model(ckpt, xp, echo)
        path = data or ckpt["config"].get("data")
        run_dir = os.path.dirname(ckpt["path"])   # the folder of the checkpoint file
        label = os.path.basename(os.path.normpath(run_dir)) or run_dir
        key = (path, inputs, noise, seed, subject, smooth)
        if key not in testsets:
            testsets[key] = scoring_set(*key)
        test, variant = testsets[key]
        variant = ".".join(v for v in (variant, "mirror" if mirror_average else "") if v)
        stem = results_stem(ckpt, path) + (f".{variant}" if variant else "")
        if os.path.basename(ckpt["path"]) != "checkpoint.h5":  # best.h5, or an exported model in data/
            label = f"{label}/{os.path.splitext(os.path.basename(ckpt['path']))[0]}"
        check_results(run_dir, stem, path, overwrite)
        given = test
        layout = choose_adapter(ckpt["config"].get("adapters", {}),
                                suited("mpii" if inputs == "detections" else "h36m", noise), adapter)
        if layout is not None:
            from .fit_adapter import load_adapters   # (fit_adapter imports this module)
            test = test.with_2d(adapt(*load_adapters(ckpt, xp)[layout], test.pose_2d)[0])
            echo(f"{label}: the 2D adapter A/{layout} applied")
        z_hat = predict_depths(gen, params, state, test.pose_2d, mirror_average=mirror_average)
        if not np.all(np.isfinite(z_hat)):
            raise EvaluationError(f"{ckpt['path']}: the model's depths are NaN or infinite on "
                                  f"{int((~np.isfinite(z_hat)).any(axis=1).sum()):,} of the {len(z_hat):,} test "
                                  f"poses of {test.path}; nothing to score")
        if per_pose_sign:
            z_hat, flipped = per_pose_correction(test.pose_2d, z_hat)
            echo(f"{label}: per-pose sign flipped the legs of {flipped['legs']:.1%} and the torso of "
                 f"{flipped['torso']:.1%} of the test poses")
        result = evaluate_depths(z_hat, test, ckpt["config"].get("perspective"))
        if layout is not None:   # the floor and z = 0 of the 2D given; the adapted 2D's floor
            result["P-MPJPE floor, adapted"] = result["P-MPJPE floor"]
            result["P-MPJPE floor"] = floor(given)
            result["P-MPJPE z=0"] = per_action(p_mpjpe(unproject_view(given.pose_2d.astype(np.float64), np.zeros(
                given.pose_2d.shape[:2])), given.pose_3d.astype(np.float64)), given.action)
        save_results(run_dir, result, stem, data=path)
        rows.update({f"{label} {m}": result[m] for m in result if m not in ("P-MPJPE z=0", "P-MPJPE floor")})
        name = os.path.basename(given.path) + (f" ({variant})" if variant else "")
        baselines[f"z=0 on {name} P-MPJPE"] = result["P-MPJPE z=0"]
        baselines[f"floor (true depths) on {name} P-MPJPE"] = result["P-MPJPE floor"]
    rows.update(baselines)
    return rows


def floor(split):
    """P-MPJPE per action of the 2D given with the true depths (true_depths)."""
    pose_2d, gt = split.pose_2d.astype(np.float64), split.pose_3d.astype(np.float64)
    return per_action(p_mpjpe(unproject_view(pose_2d, true_depths(pose_2d, gt)), gt), split.action)


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


class EvaluationError(TipsError):
    """Nothing to score, or results that would replace others unasked."""


def data_file(path):
    """The absolute path of a data file (None: the shipped sample), as results record it."""
    return os.path.abspath(path or dataset.DEFAULT_DATA)


def results_stem(ckpt, data):
    """The name of a model's result files on `data`: evaluation (or <model>.evaluation
    beside a model file that is not a run's checkpoint.h5) on the data it trained on,
    and evaluation.<data file's name> on any other."""
    stem = "evaluation"
    if os.path.basename(ckpt["path"]) != "checkpoint.h5":
        stem = f"{os.path.splitext(os.path.basename(ckpt['path']))[0]}.evaluation"
    trained_on = ckpt["config"].get("data")
    if "trained_on" in ckpt["attrs"]:  # an exported model: its data is recorded apart
        trained_on = json.loads(ckpt["attrs"]["trained_on"])
    if os.path.realpath(data_file(data)) != os.path.realpath(data_file(trained_on)):
        stem += "." + os.path.splitext(os.path.basename(data_file(data)))[0]
    return stem


def check_results(run_dir, stem, data, overwrite=False):
    """Refuse, before any work, to replace <stem>.json made from another data file
    (unless overwrite), and a folder where results cannot be written."""
    make_folder(run_dir)
    previous = os.path.join(run_dir, f"{stem}.json")
    if overwrite or not os.path.isfile(previous):
        return
    try:
        with open(previous) as f:
            made_from = json.load(f).get("data")
    except (OSError, ValueError, AttributeError):
        made_from = None   # unreadable, or written before results recorded their data
    if made_from and os.path.realpath(made_from) != os.path.realpath(data_file(data)):
        raise EvaluationError(f"{previous} holds results on {made_from}, not on {data_file(data)}; "
                              f"--overwrite replaces them")


def save_results(run_dir, result, stem="evaluation", data=None):
    """Write <stem>.json (the tables, and under 'data' the data file they were
    computed on) and <stem>.csv (one row per metric) into run_dir."""
    record = {"data": data_file(data), **result}
    for name, write in ((f"{stem}.json", lambda f: json.dump(record, f, indent=2)),
                        (f"{stem}.csv", lambda f: _write_csv(f, result))):
        with atomic_write(os.path.join(run_dir, name)) as tmp, open(tmp, "w", newline="") as f:
            write(f)


def _write_csv(f, result):
    w = csv.writer(f)
    w.writerow(["metric"] + ACTIONS + ["Average"])
    for metric, r in result.items():
        w.writerow([metric] + [f"{r[a]:.2f}" for a in ACTIONS + ["Average"]])
