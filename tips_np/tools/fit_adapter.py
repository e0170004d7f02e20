"""`adapt`: fit a lifter's 2D adapter (adapter.py) for one input layout and write the
lifter with it.

    mpii   pairs of the same frames: a detector's keypoints (the prepared file's
           'pose_2d_det', MPII's 16 keypoints mapped by keypoints.mpii_to_h36m) and the
           projections of the 3D joints
    noise  the projections with Gaussian noise of a random sigma in [0, --sigma] pixels,
           and the projections

Choices are made on a held-out training subject (--val-subject): the adapted poses of
that subject are lifted by the model and scored (P-MPJPE) after every epoch, and the
best epoch's adapter is kept. The test subjects are not read.
"""
import json

import numpy as np

from ..io import checkpoint, dataset
from ..method import adapter
from ..method.distill import distill_step
from ..method.model import init_networks, predict_depths
from ..nn.adam import Adam
from .evaluate import evaluate_depths
from .train import _NoBar, learning_rate

LAYOUTS = ("mpii", "noise")


def adapter_pairs(split, layout, sigma_max, rng):
    """(inputs, targets in the inputs' frames, the inputs' scale in pixels) of one split:
    its detections and projections ('mpii'), or its projections with noise drawn from rng
    and without ('noise'; training draws new noise for every batch)."""
    if layout == "mpii":
        det = split.paired
        return (det.pose_2d, adapter.targets_in_frame(split.pose_2d, split.scale, split.root, det.scale, det.root),
                det.scale)
    return adapter.noisy_pairs(split.pose_2d, split.scale, sigma_max, rng)


def fit(model_path, layout, data, out, val_subject=8, epochs=4, width=128, blocks=2, batch_size=256,
        lr=1e-3, sigma_max=20.0, seed=0, echo=print, progressbar=None):
    """Fit A/<layout> for the lifter in model_path on `data`'s training subjects (all but
    val_subject), keep the epoch that lifts val_subject best, write the lifter with it to
    `out`. Returns the validation rows [{epoch, step, px, val_p_mpjpe}]."""
    ckpt = checkpoint.load(model_path)
    gen, g_params, g_state = checkpoint.load_model(ckpt, echo=echo)
    perspective = ckpt["config"].get("perspective")
    full = dataset.load(data, "train")
    if layout == "mpii":
        full = full.with_detections()
    trainset, valset = full.with_3d().hold_out(val_subject)
    rng = np.random.default_rng(seed)
    x_val, t_val, val_scale = adapter_pairs(valset, layout, sigma_max, np.random.default_rng(seed + 1))
    net = adapter.make_adapter(layout, width, blocks)
    params, state = init_networks([net], rng)
    opt = Adam(lr)
    schedule = {"lr": lr, "lr_schedule": "cosine"}
    fixed = adapter_pairs(trainset, layout, sigma_max, rng) if layout == "mpii" else None

    def draw_batch(rng):
        idx = rng.integers(0, len(trainset), batch_size)
        if fixed is not None:
            return fixed[0][idx], fixed[1][idx]
        return adapter.noisy_pairs(trainset.pose_2d[idx], trainset.scale[idx], sigma_max, rng)[:2]

    rows, best = [], None

    def score(pose_2d):
        z_hat = predict_depths(gen, g_params, g_state, pose_2d.astype(np.float32))
        return evaluate_depths(z_hat, valset.with_2d(pose_2d), perspective)["P-MPJPE"]["Average"]

    def validate(epoch, step):
        nonlocal best
        adapted, scale, root = adapter.adapt(net, params, state, x_val)
        px = np.linalg.norm((adapted * scale[:, None, None] + root[:, None] - t_val) * val_scale[:, None, None],
                            axis=-1).mean()
        row = {"epoch": epoch, "step": step, "px": round(float(px), 2), "val_p_mpjpe": round(score(adapted), 2)}
        rows.append(row)
        echo(f"epoch {epoch}: subject {val_subject}'s 2D error {row['px']:.2f} px, "
             f"P-MPJPE of the adapted poses {row['val_p_mpjpe']:.1f} mm")
        if best is None or row["val_p_mpjpe"] < best[0]["val_p_mpjpe"]:
            best = (row, {k: v.copy() for k, v in params.items()}, {k: v.copy() for k, v in state.items()})

    raw_px = np.linalg.norm((x_val - t_val) * val_scale[:, None, None], axis=-1).mean()
    echo(f"A/{layout} of width {width}, {blocks} blocks ({net.n_params():,} parameters): "
         f"{len(trainset):,} training poses, subject {val_subject} held out ({len(valset):,} poses, "
         f"2D error {raw_px:.2f} px, P-MPJPE {score(x_val):.1f} mm before adapting)")
    steps = max(len(trainset) // batch_size, 1)
    bar = progressbar(steps * epochs, f"A/{layout}") if progressbar else None
    with (bar or _NoBar()) as b:
        adapter.train_adapter(net, params, state, opt, draw_batch, steps, epochs, rng,
                              lambda step, total: learning_rate(schedule, step, total), validate,
                              lambda n: b.update(n))
    row, best_params, best_state = best
    adapters = {**ckpt["config"].get("adapters", {}),
                layout: {"width": width, "blocks": blocks, "epoch": row["epoch"], "sigma_max": sigma_max,
                         "val_subject": val_subject, "val_px": row["px"], "val_p_mpjpe": row["val_p_mpjpe"],
                         "trained_on": data}}
    save_lifter(out, ckpt, {**ckpt["config"], "adapters": adapters}, best_params, best_state)
    echo(f"kept epoch {row['epoch']} (subject {val_subject}: {row['px']:.2f} px, {row['val_p_mpjpe']:.1f} mm): {out}")
    return rows


def save_lifter(out, ckpt, config, params, state):
    """The lifter of ckpt with `params` and `state` put in place of its entries of the
    same names (an adapter's, or the generator's), float32, its other entries kept."""
    as32 = lambda arrays: {k: np.asarray(v, np.float32) for k, v in arrays.items()}
    checkpoint.save_generator(out, config, as32({**ckpt["params"], **params}), as32({**ckpt["state"], **state}),
                              ckpt["epoch"], {k: json.loads(v) if isinstance(v, str) else v
                                              for k, v in ckpt["attrs"].items()
                                              if k in ("trained_on", "exported_from", "best")})


def load_adapters(ckpt, xp=np):
    """{layout: (net, params, state)} of the adapters a lifter's checkpoint holds."""
    out = {}
    for layout, spec in ckpt["config"].get("adapters", {}).items():
        net = adapter.make_adapter(layout, spec["width"], spec["blocks"])
        prefix = f"A/{layout}/"
        params = {k: xp.asarray(v) for k, v in ckpt["params"].items() if k.startswith(prefix)}
        state = {k: xp.asarray(v) for k, v in ckpt["state"].items() if k.startswith(prefix)}
        expected, _ = net.init(np.random.default_rng(0))
        checkpoint.check_names(ckpt["path"], {k: v.shape for k, v in expected.items()}, params, "parameter")
        out[layout] = (net, params, state)
    return out


def fit_student(model_path, data, out, val_subject=8, epochs=1, batch_size=256, lr=3e-5, sigma_max=20.0,
                seed=0, echo=print, progressbar=None):
    """Fine-tune a lifter that holds adapters (A/mpii, A/noise) on the poses they give:
    TIPS's distillation (eq. 7) with the lifter as its own teacher, the teacher seeing
    the clean projections and the student, in equal shares, the same projections, the
    adapted detections of the same frames and the adapted noisy projections (sigma in
    [0, sigma_max] pixels), the teacher's depths re-expressed in each input's frame. No
    3D label is read in training; the held-out subject chooses the step (validated every
    1,000 steps and at each epoch's end), by the mean P-MPJPE of its three inputs (noise
    at 10 px)."""
    ckpt = checkpoint.load(model_path)
    gen, params, state = checkpoint.load_model(ckpt, echo=echo)
    adapters = load_adapters(ckpt)
    missing = [layout for layout in LAYOUTS if layout not in adapters]
    if missing:
        raise checkpoint.CheckpointError(f"{model_path}: no 2D adapter '{missing[0]}': fit it first "
                                         f"(adapt --layout {missing[0]})")
    perspective = ckpt["config"].get("perspective")
    trainset, valset = dataset.load(data, "train").with_3d().with_detections().hold_out(val_subject)
    rng = np.random.default_rng(seed)

    def adapted_detections(split):
        net, a_params, a_state = adapters["mpii"]
        det = split.paired
        pose_2d, scale, _ = adapter.adapt(net, a_params, a_state, det.pose_2d)
        return pose_2d, scale * det.scale   # the adapted poses and their scale in pixels

    def adapted_noise(split, idx, rng, sigma=None):
        net, a_params, a_state = adapters["noise"]
        sigma = rng.uniform(0, sigma_max, len(idx)) if sigma is None else sigma
        noisy, s, _ = adapter.add_noise(split.pose_2d[idx], split.scale[idx], sigma, rng)
        pose_2d, scale, _ = adapter.adapt(net, a_params, a_state, noisy)
        return pose_2d, scale * s * split.scale[idx]

    z_clean = predict_depths(gen, params, state, trainset.pose_2d)      # the teacher's depths
    det_2d, det_scale = adapted_detections(trainset)
    val_inputs = {"projections": (valset.pose_2d, valset.scale), "detections": adapted_detections(valset),
                  "noise 10 px": adapted_noise(valset, np.arange(len(valset)), np.random.default_rng(seed + 1),
                                               10.0)}

    def draw_batch(rng):
        idx = rng.integers(0, len(trainset), batch_size)
        third = batch_size // 3
        clean = trainset.pose_2d[idx[:third]], trainset.scale[idx[:third]]
        det = det_2d[idx[third:2 * third]], det_scale[idx[third:2 * third]]
        noisy = adapted_noise(trainset, idx[2 * third:], rng)
        pose_2d = np.concatenate([clean[0], det[0], noisy[0]])
        scale = np.concatenate([clean[1], det[1], noisy[1]])
        # z in pixels is z_hat * s: the teacher's depth in each input's own scale
        return pose_2d, z_clean[idx] * (trainset.scale[idx] / scale)[:, None]

    def score(pose_2d):
        z_hat = predict_depths(gen, params, state, pose_2d.astype(np.float32))
        return evaluate_depths(z_hat, valset.with_2d(pose_2d), perspective)["P-MPJPE"]["Average"]

    rows, best = [], None

    def validate(epoch, step):
        nonlocal best
        row = {"epoch": epoch, "step": step, **{k: round(score(v[0]), 2) for k, v in val_inputs.items()}}
        row["mean"] = round(float(np.mean([row[k] for k in val_inputs])), 2)
        rows.append(row)
        echo(f"step {step}: subject {val_subject} " + ", ".join(f"{k} {row[k]:.1f}" for k in val_inputs)
             + f" mm (mean {row['mean']:.1f})")
        if best is None or row["mean"] < best[0]["mean"]:
            best = (row, {k: v.copy() for k, v in params.items()}, {k: v.copy() for k, v in state.items()})

    validate(0, 0)
    opt = Adam(lr)
    schedule = {"lr": lr, "lr_schedule": "cosine"}
    steps = max(len(trainset) // batch_size, 1)
    bar = progressbar(steps * epochs, "student") if progressbar else None
    with (bar or _NoBar()) as b:
        for epoch in range(1, epochs + 1):
            for i in range(steps):
                opt.lr = learning_rate(schedule, (epoch - 1) * steps + i, epochs * steps)
                x, z = draw_batch(rng)
                distill_step(gen, params, state, opt, x.astype(np.float32), z.astype(np.float32))
                b.update(1)
                if (i + 1) % 1000 == 0 and i + 1 < steps:
                    validate(epoch, (epoch - 1) * steps + i + 1)
            validate(epoch, epoch * steps)
    row, best_params, best_state = best
    config = {**ckpt["config"], "robust": {"epoch": row["epoch"], "step": row["step"], "val_subject": val_subject,
                                           "val": row, "sigma_max": sigma_max, "trained_on": data}}
    save_lifter(out, ckpt, config, best_params, best_state)
    echo(f"kept step {row['step']} ({', '.join(f'{k} {row[k]:.1f}' for k in val_inputs)} mm): {out}")
    return rows
