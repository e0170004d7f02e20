"""The training loop: epochs of adversarial steps (or, for a TIPS student, of
distillation steps), evaluation on the test split, a per-epoch CSV log and an
atomic checkpoint that `--resume` continues from."""
import csv
import math
import os
import time

import numpy as np

from . import checkpoint, dataset
from .atomic import atomic_write
from .backend import to_device, to_numpy, use_device
from .cycle import draw_randomness, flatten_losses, train_step
from .distill import distill_step
from .errors import TipsError
from .evaluate import evaluate_depths
from .model import build, init_networks, predict_depths
from .nn.adam import Adam
from .orientation import describe, orient, orientation_poses

DEFAULTS = dict(
    parts=["torso", "legs"], combine=False, match_params=False, width=256, blocks=2,
    activation="relu", dropout=0.0, epochs=40, batch_size=256, lr=2e-4, betas=[0.9, 0.999],
    gan="bce", azimuth=180.0, perspective=None, seed=0, eval_every=1, data=None, device="cpu", teacher=None,
    w_90=3.0, w_inf=0.0,
)


class Diverged(TipsError):
    """A loss became NaN or infinite."""


def mean_losses(history):
    """Average the logged 0-d loss arrays of an epoch (one read-back to the host)."""
    keys = history[0].keys()
    return {k: float(np.mean([to_numpy(h[k]) for h in history])) for k in keys}


def train(config, run_dir, resume=False, echo=print, progressbar=None):
    """Train and return the final evaluation. `progressbar(length, label)` gives a
    context manager with .update(n, text) (click's), or None for silence."""
    config = {**DEFAULTS, **config}
    xp = use_device(config["device"])
    ckpt_path, log_path = os.path.join(run_dir, "checkpoint.h5"), os.path.join(run_dir, "log.csv")
    if resume:  # the run's own configuration; only the epochs and the device may change
        ckpt = checkpoint.load(ckpt_path)
        config = {**DEFAULTS, **ckpt["config"], "epochs": config["epochs"], "device": config["device"]}
    gen, disc = build(config)
    rng = np.random.default_rng(config["seed"])
    params, state = init_networks([gen] + ([disc] if disc is not None else []), rng)
    opt = Adam(config["lr"], config["betas"])
    start_epoch = 0
    if resume:
        checkpoint.check_names(ckpt_path, {k: v.shape for k, v in params.items()}, ckpt["params"], "parameter")
        params, state = dict(ckpt["params"]), dict(ckpt["state"])
        opt.t, opt.state = ckpt["adam_t"], dict(ckpt["adam"])
        rng.bit_generator.state = ckpt["rng_state"]
        start_epoch = ckpt["epoch"]
        echo(f"resuming {ckpt_path} after epoch {start_epoch}")
    params, state, opt.state = to_device(params, xp), to_device(state, xp), to_device(opt.state, xp)

    trainset = dataset.load(config["data"], "train")
    testset = dataset.load(config["data"], "test")
    train_2d = xp.asarray(trainset.pose_2d)  # on the GPU once, batches gathered there
    azimuth = math.radians(config["azimuth"])
    orient_2d = orientation_poses(trainset.pose_2d)
    if config["teacher"]:
        teacher, t_params, t_state = checkpoint.load_model(checkpoint.load(config["teacher"]), xp, echo)
        echo(f"teachers' depth sign: {describe(orient(teacher, t_params, t_state, orient_2d))}")
        z_teacher = xp.asarray(predict_depths(teacher, t_params, t_state, trainset.pose_2d))

        def step(idx, azimuth, elevation, flip):
            return distill_step(gen, params, state, opt, train_2d[idx], z_teacher[idx], rng)
        critic = f"distilled from {config['teacher']} ({teacher.n_params():,} parameters)"
    else:
        def step(idx, azimuth, elevation, flip):
            return train_step(gen, disc, params, state, opt, train_2d[idx], azimuth, elevation, flip,
                              config["gan"], config["perspective"], rng, config["w_90"], config["w_inf"])
        critic = f"discriminator {disc.n_params():,}"
    os.makedirs(run_dir, exist_ok=True)  # only now that the data, the teachers and any checkpoint loaded
    echo(f"{'+'.join(config['parts'])}{' (split and recombine)' if config['combine'] else ''}: "
         f"{len(gen.groups)} generator network(s) of width {gen.width}, {config['blocks']} residual blocks, "
         f"{gen.n_params():,} parameters; {critic}; "
         f"{len(trainset):,} training and {len(testset):,} test poses")
    if resume is False and os.path.exists(log_path):
        os.remove(log_path)

    result = None
    for epoch in range(start_epoch + 1, config["epochs"] + 1):
        t0 = time.time()
        history = []
        # the epoch's batches, views and label flips, moved to the device at once
        batches = np.stack(list(trainset.batches(config["batch_size"], rng)))
        randomness = draw_randomness(rng, batches.shape, azimuth)
        batches, randomness = xp.asarray(batches), [xp.asarray(r) for r in randomness]
        bar = progressbar(len(batches), f"epoch {epoch}/{config['epochs']}") if progressbar else None
        with (bar or _NoBar()) as b:
            for i in range(len(batches)):
                history.append(flatten_losses(step(batches[i], *(r[i] for r in randomness))))
                running = None
                if (i + 1) % 10 == 0:  # read losses back only now and then (a GPU sync)
                    running = "  ".join(f"{k} {v:.4f}" for k, v in mean_losses(history[-10:]).items()
                                        if not k.endswith("/total"))
                b.update(1, running)
        losses = mean_losses(history)
        if not all(math.isfinite(v) for v in losses.values()):
            raise Diverged(f"training diverged in epoch {epoch} (losses {losses}); "
                           f"the last good checkpoint is {ckpt_path} (epoch {epoch - 1})")
        # the depth sign by anatomy (orientation.py); a student is checked, never flipped
        report = orient(gen, params, state, orient_2d, opt.state, flip=disc is not None)
        row = {"epoch": epoch, "seconds": round(time.time() - t0, 2), **{k: round(v, 6) for k, v in losses.items()},
               **{f"{g}/{k}": round(float(v), 4) for g, r in report.items() for k, v in r.items()}}
        if epoch % config["eval_every"] == 0 or epoch == config["epochs"]:
            result = evaluate_depths(predict_depths(gen, params, state, testset.pose_2d), testset)
            row.update({"p_mpjpe": round(result["P-MPJPE"]["Average"], 2),
                        "p_mpjpe_reflection": round(result["P-MPJPE reflection allowed"]["Average"], 2),
                        "n_mpjpe": round(result["N-MPJPE"]["Average"], 2),
                        "p_mpjpe_mirrored": round(result["P-MPJPE mirrored"]["Average"], 2)})
        _append_csv(log_path, row)
        checkpoint.save(ckpt_path, config, params, state, opt, epoch, rng, extra={"oriented": True})
        echo(_describe(row, report))
    if result is None:  # resumed with no epoch left to train
        result = evaluate_depths(predict_depths(gen, params, state, testset.pose_2d), testset)
    return config, result


def _describe(row, report):
    text = f"epoch {row['epoch']:4d}  {row['seconds']:6.1f}s  " + "  ".join(
        f"{k} {v:.4f}" for k, v in row.items()
        if k not in ("epoch", "seconds") and not k.endswith(("/total", "/share", "/flipped"))
        and "mpjpe" not in k)
    text += f"  | handedness {describe(report)}"
    if "p_mpjpe" in row:
        text += f"  | P-MPJPE {row['p_mpjpe']:.1f} mm (mirrored {row['p_mpjpe_mirrored']:.1f})"
    return text


def _append_csv(path, row):
    """Append one epoch; the header is written with the first row. Epochs after
    a resume replace the rows they repeat."""
    rows = []
    if os.path.exists(path):
        with open(path, newline="") as f:
            rows = [r for r in csv.DictReader(f) if int(r["epoch"]) < row["epoch"]]
    rows.append(row)
    fields = list(dict.fromkeys(k for r in rows for k in r))
    with atomic_write(path) as tmp, open(tmp, "w", newline="") as f:
        w = csv.DictWriter(f, fields)
        w.writeheader()
        w.writerows(rows)


class _NoBar:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def update(self, n, current_item=None):
        pass
