"""The training loop: epochs of adversarial steps (or, for a TIPS student, of
distillation steps), evaluation, a per-epoch CSV log and an atomic checkpoint
that `--resume` continues from.

_train reads top to bottom: the set-up (the configuration, the networks, the data, a
student's teachers: one small function each, below it), then the epoch loop, whose
every step is either TIPS's adversarial step (cycle.train_step, its losses' settings
one cycle.Objective built from the configuration) or a student's distillation step
(distill.distill_step).

Evaluation: on the test split after every epoch, unless a training subject is
held out for validation (val_subject): then the held-out subject is scored every
val_every steps and at the end of every epoch (val.csv: P-MPJPE against training
seconds), the weights that scored best are kept (best.h5: the generator alone,
checkpoint.save_generator; early stopping chosen on validation), and the test split
is scored once, at the end, on those weights, so no choice sees it."""
import csv
import json
import math
import os
import shutil
import time
from contextlib import contextmanager

import numpy as np

from ..atomic import atomic_write, make_folder
from ..backend import to_device, to_numpy, use_device
from ..errors import TipsError
from ..io import checkpoint, dataset
from ..method.cycle import Objective, Randomness, draw_randomness, flatten_losses, train_step
from ..method.distill import distill_step
from ..method.model import build, init_networks, predict_depths
from ..method.orientation import describe, orient, orientation_poses, tests_for
from ..nn.adam import Adam
from . import machine
from .evaluate import evaluate_depths

# DEFAULTS are the papers' method (as every run before recipes was trained); a fresh
# run takes its recipe's values over them, and an explicit value over both
DEFAULTS = dict(
    parts=["torso", "legs"], combine=False, match_params=False, width=256, blocks=2,
    activation="relu", dropout=0.0, epochs=40, batch_size=256, lr=2e-4, betas=[0.9, 0.999],
    gan="bce", azimuth=180.0, perspective=None, seed=0, eval_every=1, data=None, device="cpu", teacher=None,
    w_90=3.0, w_inf=0.0, adv_scale=1.0, real_label=1.0, lr_schedule="constant", val_subject=None, val_every=0,
    recipe="paper", d_lr_scale=1.0, d_every=1, view_pitch=0.0, weigh_facing=0.0,
)
RECIPES = {
    # TIPS and the representations paper: adversarial weights 0.08 (torso) and 0.05
    # (legs), real label 1, Adam at a constant 2e-4 (their sizes: --width 1024
    # --blocks 4 --batch-size 8192)
    "paper": dict(adv_scale=1.0, real_label=1.0, lr_schedule="constant", lr=2e-4, d_lr_scale=1.0, d_every=1,
                  view_pitch=0.0),
    # the most accurate per CPU second found (docs/walkthrough.md, section 8): a strong
    # adversarial term, a slower discriminator, views turned about the body's axis, the
    # 2D poses taken as pinhole views (Human3.6M's cameras stand about 5.5 units away)
    "cpu": dict(adv_scale=7.5, real_label=0.8, lr_schedule="cosine", lr=1e-4, d_lr_scale=0.25, d_every=1,
                view_pitch=12.0, perspective=5.5),
}
LR_FLOOR = 0.01  # the cosine schedule ends at 1% of the initial learning rate
RUN_FILES = ("checkpoint.h5", "log.csv", "val.csv", "best.h5")  # a folder holding any of these holds a run
RESUMABLE = ("epochs", "device")  # all a resume may change of a run's configuration


def learning_rate(config, step, total_steps):
    """The learning rate of step `step` (0-based) of `total_steps`: constant (the
    papers'), or a cosine from lr down to LR_FLOOR * lr over the run."""
    lr = config["lr"]
    if config["lr_schedule"] == "constant":
        return lr
    progress = min(step / max(total_steps - 1, 1), 1.0)
    return lr * (LR_FLOOR + (1 - LR_FLOOR) * 0.5 * (1 + math.cos(math.pi * progress)))


class Diverged(TipsError):
    """A loss became NaN or infinite."""


class RunError(TipsError):
    """A run folder or an option this run cannot honour; the message names the
    option that would proceed."""


def option_name(key):
    return "TEACHER" if key == "teacher" else "--" + key.replace("_", "-")


def check_options(config):
    """Refuse, at the door, learning rates no run can train with."""
    for key in ("lr", "d_lr_scale"):
        v = config[key]
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v <= 0:
            raise RunError(f"{option_name(key)} {v}: expected a finite number above 0")


def check_run_folder(run_dir, resume, overwrite):
    """A new run refuses a folder that holds one (unless overwrite); a resume needs its checkpoint."""
    if resume and overwrite:
        raise RunError("--resume continues a run and --overwrite starts it over: give one of them")
    found = [name for name in RUN_FILES if os.path.exists(os.path.join(run_dir, name))]
    if resume and "checkpoint.h5" not in found:
        raise RunError(f"{run_dir}: no checkpoint.h5 to resume from; leave out --resume to start a run there")
    if found and not resume and not overwrite:
        raise RunError(f"{run_dir} already holds a run ({', '.join(found)}); --resume continues it, "
                       f"--overwrite starts it over")


def _same(key, a, b):
    if key == "data":  # (None: the shipped sample)
        a, b = (os.path.realpath(v or dataset.DEFAULT_DATA) for v in (a, b))
    elif key == "teacher" and a and b:
        a, b = os.path.realpath(a), os.path.realpath(b)
    elif key == "perspective":  # (0: orthographic, None)
        a, b = a or None, b or None
    return json.loads(json.dumps(a)) == json.loads(json.dumps(b))


def _show(v):
    return ",".join(map(str, v)) if isinstance(v, (list, tuple)) else str(v)


def check_resume(given, saved, path):
    """Refuse a resume given options that differ from the run's own configuration
    (all but RESUMABLE are the checkpoint's), naming each. A recipe's entry given
    as None ("the recipe's") is not a value given."""
    recipe_keys = set().union(*RECIPES.values())
    differ = [f"{option_name(k)} {_show(v)} (the run's: {_show(saved[k])})" for k, v in given.items()
              if k not in RESUMABLE and k in saved and not (v is None and k in recipe_keys)
              and not _same(k, v, saved[k])]
    if differ:
        raise RunError(f"{path}: --resume cannot change the run's configuration: {'; '.join(differ)}; leave "
                       f"{'it' if len(differ) == 1 else 'them'} out to continue the run, or give --overwrite to "
                       f"start over")


def mean_losses(history):
    """Average the logged 0-d loss arrays of an epoch (one read-back to the host)."""
    keys = history[0].keys()
    return {k: float(np.mean([to_numpy(h[k]) for h in history])) for k in keys}


def resolve(config):
    """A fresh run's whole configuration: DEFAULTS, then its recipe's values, then
    the values given (a recipe's entry given as None keeps the recipe's; perspective 0
    is orthographic, None)."""
    recipe = RECIPES[config.get("recipe") or DEFAULTS["recipe"]]
    config = {**DEFAULTS, **recipe, **{k: v for k, v in config.items() if not (k in recipe and v is None)}}
    return {**config, "perspective": config["perspective"] or None}


def train(config, run_dir, resume=False, echo=print, progressbar=None, overwrite=False):
    """Train and return the final evaluation. `progressbar(length, label)` gives a
    context manager with .update(n, text) (click's), or None for silence.

    A folder that holds a run is refused unless `resume` (continue it: every entry
    of `config` but the epochs and the device must agree with the checkpoint's) or
    `overwrite` (start over: its checkpoints, logs and evaluations are deleted). A
    new run that fails before its first checkpoint leaves no folder behind."""
    new_folder = not os.path.exists(run_dir)
    try:
        return _train(config, run_dir, resume, echo, progressbar, overwrite)
    except BaseException:
        if new_folder and not os.path.exists(os.path.join(run_dir, "checkpoint.h5")):
            shutil.rmtree(run_dir, ignore_errors=True)
        raise


def _train(given, run_dir, resume, echo, progressbar, overwrite):
    """Set up (the configuration, the networks, the data, a student's teachers), then
    the epochs: steps over shuffled batches, then the depth sign, validation, the test
    split, a log row and a checkpoint."""
    check_run_folder(run_dir, resume, overwrite)
    ckpt_path, log_path = os.path.join(run_dir, "checkpoint.h5"), os.path.join(run_dir, "log.csv")
    config = resolve(given)
    check_options(config)
    xp = use_device(config["device"])
    ckpt = checkpoint.load(ckpt_path) if resume else None
    if resume:
        config = resumed_config(given, config, ckpt, ckpt_path, echo)
    gen, disc = build(config, machine.side_by_side)  # the groups on their own cores where machine.best says
    on_cores = machine.use(machine.best(gen, config["batch_size"])
                           if config["device"] == "cpu" and disc is not None else "products")
    params, state, opt, rng, start_epoch = start_weights(config, gen, disc, ckpt, ckpt_path, xp, echo)
    trainset, testset, valset = load_data(config)
    train_2d = xp.asarray(trainset.pose_2d)  # on the GPU once, batches gathered there
    orient_2d = orientation_poses(trainset.pose_2d)
    tests = tests_for(trainset.keypoints)   # the handedness tests that suit the 2D's keypoints (no nose in MPII's)
    if config["teacher"]:  # a TIPS student: its depths are the teachers', seen through the teachers' camera
        z_teacher, config["perspective"], critic = teacher_depths(config["teacher"], trainset, orient_2d, xp, echo)
    else:
        z_teacher, critic = None, f"discriminator {disc.n_params():,}"
    objective = objective_of(config)
    make_folder(run_dir)  # only now that the data, the teachers and any checkpoint loaded
    echo(_summary(config, gen, critic, trainset, testset, valset, on_cores))
    cores = machine.Chooser() if on_cores == "groups" else machine.InOneWay()  # side by side or in turn: measured
    if overwrite:
        start_over(run_dir)
    if resume:
        catch_up_log(ckpt, log_path)
    steps_per_epoch = max(len(trainset) // config["batch_size"], 1)
    total_steps = steps_per_epoch * config["epochs"]
    elapsed = json.loads(ckpt["attrs"].get("elapsed", "0")) if resume else 0.0  # training seconds so far
    best = json.loads(ckpt["attrs"].get("best", "null")) if resume else None  # {"step", "epoch", "val_p_mpjpe"}
    flip_sign = disc is not None  # orient flips a GAN's depth sign by anatomy; a student's is checked, never flipped

    result = None
    for epoch in range(start_epoch + 1, config["epochs"] + 1):
        t0 = time.time()
        history = []
        # the epoch's batches, views and label flips, moved to the device at once (a student draws
        # the views too, unused, so its random stream is a GAN run's)
        batches = np.stack(list(trainset.batches(config["batch_size"], rng)))
        randomness = draw_randomness(rng, batches.shape, math.radians(config["azimuth"]))
        batches, randomness = xp.asarray(batches), Randomness(*(xp.asarray(r) for r in randomness))
        bar = progressbar(len(batches), f"epoch {epoch}/{config['epochs']}") if progressbar else None
        with (bar or _NoBar()) as b:
            for i in range(len(batches)):
                step, pose_2d = (epoch - 1) * steps_per_epoch + i, train_2d[batches[i]]
                opt.lr = learning_rate(config, step, total_steps)
                if z_teacher is None:  # TIPS section 3: the adversarial cycle; D updated on one step in d_every
                    losses = cores.run(lambda: train_step(gen, disc, params, state, opt, pose_2d, randomness.step(i),
                                                          objective, rng, step % config["d_every"] == 0))
                else:                  # TIPS section 3.4: the student matches its teachers' depths (eq. 7)
                    losses = distill_step(gen, params, state, opt, pose_2d, z_teacher[batches[i]], rng)
                history.append(flatten_losses(losses))
                if valset is not None and config["val_every"] and (step + 1) % config["val_every"] == 0 \
                        and i + 1 < len(batches):  # (the epoch's end validates below)
                    orient(gen, params, state, orient_2d, opt.state, flip_sign, tests)
                    _, best = validate(gen, params, state, valset, config, run_dir, best, epoch, step + 1,
                                       elapsed + time.time() - t0, opt.lr)
                b.update(1, _running(history) if (i + 1) % 10 == 0 else None)  # (reading losses back: a GPU sync)
        losses = mean_losses(history)
        if not all(math.isfinite(v) for v in losses.values()):
            kept = f"the last good checkpoint is {ckpt_path} (epoch {epoch - 1})" if epoch > 1 else "nothing kept"
            raise Diverged(f"training diverged in epoch {epoch} (losses {losses}); {kept}; "
                           f"a smaller --lr may help")
        seconds = time.time() - t0
        report = orient(gen, params, state, orient_2d, opt.state, flip_sign, tests)  # the depth sign (orientation.py)
        val_row, best = validate(gen, params, state, valset, config, run_dir, best, epoch, epoch * steps_per_epoch,
                                 elapsed + seconds, opt.lr)
        elapsed += seconds
        row = {"epoch": epoch, "seconds": round(seconds, 2), **{k: round(v, 6) for k, v in losses.items()},
               **{f"{g}/{k}": round(float(v), 4) for g, r in report.items() for k, v in r.items()}, **val_row}
        if valset is None and testset is not None and (epoch % config["eval_every"] == 0
                                                       or epoch == config["epochs"]):
            result = score(gen, params, state, testset, config["perspective"])
            row.update(_test_columns(result))
        with _appending_csv(log_path, row):  # the log's row lands once the checkpoint has (which keeps it too)
            checkpoint.save(ckpt_path, config, params, state, opt, epoch, rng,
                            extra={"oriented": True, "elapsed": round(elapsed, 3), "best": best, "log_row": row})
        echo(_describe(row, report))
        for line in cores.news():
            echo(line)

    if valset is not None:  # the test split scored once, on the weights that validated best
        best_path = os.path.join(run_dir, "best.h5")
        echo(f"best validation P-MPJPE {best['val_p_mpjpe']:.1f} mm at step {best['step']} "
             f"(epoch {best['epoch']}): {best_path}, scored on the test split")
        _, params, state = checkpoint.load_model(checkpoint.load(best_path), xp)  # (gen: the same networks)
    if testset is not None and (valset is not None or result is None):  # (or resumed with nothing left)
        result = score(gen, params, state, testset, config["perspective"])
    return config, result


# --- the set-up, step by step ----------------------------------------------------------------------------

def resumed_config(given, config, ckpt, ckpt_path, echo):
    """A resumed run's configuration: its checkpoint's, but for the epochs and the device
    given (`config`); any other option given must agree with the checkpoint's."""
    check_resume(given, {**DEFAULTS, **ckpt["config"]}, ckpt_path)
    resumed = {**DEFAULTS, **ckpt["config"], "epochs": config["epochs"], "device": config["device"]}
    if resumed["lr_schedule"] != "constant" and resumed["epochs"] != ckpt["config"]["epochs"]:
        echo(f"the {resumed['lr_schedule']} schedule now spans {resumed['epochs']} epochs, not "
             f"{ckpt['config']['epochs']}: the learning rate follows the new schedule from here")
    return resumed


def start_weights(config, gen, disc, ckpt, ckpt_path, xp, echo):
    """The networks' weights, batch-norm statistics, Adam and the random generator: drawn
    from the seed, or, resuming (ckpt not None), the checkpoint's; all on the device.
    Returns (params, state, opt, rng, the last epoch done)."""
    rng = np.random.default_rng(config["seed"])
    params, state = init_networks([gen] + ([disc] if disc is not None else []), rng)
    opt = Adam(config["lr"], config["betas"], lr_scale={"D": config["d_lr_scale"]})
    start_epoch = 0
    if ckpt is not None:
        checkpoint.check_names(ckpt_path, {k: v.shape for k, v in params.items()}, ckpt["params"], "parameter")
        params, state = dict(ckpt["params"]), dict(ckpt["state"])
        opt.t, opt.state = ckpt["adam_t"], dict(ckpt["adam"])
        rng.bit_generator.state = ckpt["rng_state"]
        start_epoch = ckpt["epoch"]
        echo(f"resuming {ckpt_path} after epoch {start_epoch}")
    params, state, opt.state = to_device(params, xp), to_device(state, xp), to_device(opt.state, xp)
    return params, state, opt, rng, start_epoch


def load_data(config):
    """The training poses, the test split (None: the file has 2D poses only) and the
    validation subject held out of the training poses (None: none held out)."""
    trainset = dataset.load(config["data"], "train")
    testset = dataset.load(config["data"], "test") if trainset.has_3d.any() else None
    valset = None
    if config["val_subject"] is not None:
        if testset is None:
            raise RunError(f"{config['data']}: --val-subject scores 3D poses, and this file has none (2D only)")
        trainset, valset = trainset.hold_out(config["val_subject"])
        valset = valset.with_3d()
    if config["batch_size"] > len(trainset):
        raise RunError(f"--batch-size {config['batch_size']}: more than the {len(trainset):,} training poses of "
                       f"{config['data'] or dataset.DEFAULT_DATA}; give at most {len(trainset):,}")
    return trainset, testset, valset


def teacher_depths(path, trainset, orient_2d, xp, echo):
    """The teachers' depths of every training pose, on the device, their camera
    (perspective) and a line describing them."""
    t_ckpt = checkpoint.load(path)
    teacher, t_params, t_state = checkpoint.load_model(t_ckpt, xp, echo)
    echo(f"teachers' depth sign: "
         f"{describe(orient(teacher, t_params, t_state, orient_2d, tests=tests_for(trainset.keypoints)))}")
    z_teacher = xp.asarray(predict_depths(teacher, t_params, t_state, trainset.pose_2d))
    critic = f"distilled from {path} ({teacher.n_params():,} parameters)"
    return z_teacher, t_ckpt["config"].get("perspective"), critic


def objective_of(config):
    """What the adversarial step minimises, from the run's configuration (cycle.Objective)."""
    return Objective(gan=config["gan"], perspective=config["perspective"], w_90=config["w_90"],
                     w_inf=config["w_inf"], adv_scale=config["adv_scale"], real_label=config["real_label"],
                     pitch=math.radians(config["view_pitch"]), weigh_facing=config["weigh_facing"])


def start_over(run_dir):
    """--overwrite: delete the run the folder holds (its checkpoints, logs and evaluations)."""
    for name in sorted(os.listdir(run_dir)):
        if name in RUN_FILES or name.startswith(("evaluation.", "best.evaluation.")):
            os.remove(os.path.join(run_dir, name))


def catch_up_log(ckpt, log_path):
    """A run stopped between its checkpoint and its log row: the log catches up."""
    if "log_row" in ckpt["attrs"]:
        row = json.loads(ckpt["attrs"]["log_row"])
        if _last(log_path) != row["epoch"]:
            _append_csv(log_path, row)


# --- evaluation during training --------------------------------------------------------------------------

def score(gen, params, state, split, perspective):
    """The tables of evaluate_depths for the weights on `split`, seen through the run's camera."""
    return evaluate_depths(predict_depths(gen, params, state, split.pose_2d), split, perspective)


def validate(gen, params, state, valset, config, run_dir, best, epoch, step, seconds, lr):
    """Score the held-out subject (a row of val.csv) and keep the weights that score
    best (best.h5). Returns the validation columns of the log's row ({} when no subject
    is held out) and the best so far ({"step", "epoch", "val_p_mpjpe"})."""
    if valset is None:
        return {}, best
    val = score(gen, params, state, valset, config["perspective"])
    row = {"val_p_mpjpe": round(val["P-MPJPE"]["Average"], 2),
           "val_p_mpjpe_reflection": round(val["P-MPJPE reflection allowed"]["Average"], 2),
           "val_n_mpjpe": round(val["N-MPJPE"]["Average"], 2)}
    _append_csv(os.path.join(run_dir, "val.csv"), {"epoch": epoch, "step": step, "seconds": round(seconds, 1),
                                                   "lr": float(f"{lr:.6g}"), **row}, key="step")
    if best is None or row["val_p_mpjpe"] < best["val_p_mpjpe"]:
        best = {"step": step, "epoch": epoch, "val_p_mpjpe": row["val_p_mpjpe"]}
        checkpoint.save_generator(os.path.join(run_dir, "best.h5"), config, params, state, epoch, {"best": best})
    return row, best


def _test_columns(result):
    return {"p_mpjpe": round(result["P-MPJPE"]["Average"], 2),
            "p_mpjpe_reflection": round(result["P-MPJPE reflection allowed"]["Average"], 2),
            "n_mpjpe": round(result["N-MPJPE"]["Average"], 2),
            "p_mpjpe_mirrored": round(result["P-MPJPE mirrored"]["Average"], 2)}


def _running(history):
    """The last ten steps' mean losses, for the progress bar."""
    return "  ".join(f"{k} {v:.4f}" for k, v in mean_losses(history[-10:]).items() if not k.endswith("/total"))


def _summary(config, gen, critic, trainset, testset, valset, on_cores):
    return (f"{'+'.join(config['parts'])}{' (split and recombine)' if config['combine'] else ''}: "
            f"{len(gen.groups)} generator network(s) of width {gen.width}, {config['blocks']} residual blocks, "
            f"{gen.n_params():,} parameters; {critic}; "
            f"{len(trainset):,} training and "
            + (f"{len(testset):,} test poses" if testset else "no test poses (the file has no 3D poses)")
            + (f"; subject {config['val_subject']} held out ({len(valset):,} validation poses)" if valset else "")
            + ("; the generators side by side or in turn, whichever runs faster (measured)"
               if on_cores == "groups" else ""))


def _describe(row, report):
    text = f"epoch {row['epoch']:4d}  {row['seconds']:6.1f}s  " + "  ".join(
        f"{k} {v:.4f}" for k, v in row.items()
        if k not in ("epoch", "seconds") and not k.endswith(("/total", "/share", "/flipped"))
        and "mpjpe" not in k)
    text += f"  | handedness {describe(report)}"
    if "p_mpjpe" in row:
        text += f"  | P-MPJPE {row['p_mpjpe']:.1f} mm (mirrored {row['p_mpjpe_mirrored']:.1f})"
    if "val_p_mpjpe" in row:
        text += f"  | validation P-MPJPE {row['val_p_mpjpe']:.1f} mm"
    return text


@contextmanager
def _appending_csv(path, row, key="epoch"):
    """Append one row; the header is written with the first row. Rows after a
    resume replace the rows they repeat (by `key`, epoch or step). The new file is
    written to a temporary one and renamed onto `path` only once the body of the
    with-statement has run (and not if it fails)."""
    rows = []
    if os.path.exists(path):
        with open(path, newline="") as f:
            rows = [r for r in csv.DictReader(f) if int(r[key]) < row[key]]
    rows.append(row)
    fields = list(dict.fromkeys(k for r in rows for k in r))
    with atomic_write(path) as tmp:
        with open(tmp, "w", newline="") as f:
            w = csv.DictWriter(f, fields)
            w.writeheader()
            w.writerows(rows)
        yield


def _append_csv(path, row, key="epoch"):
    with _appending_csv(path, row, key):
        pass


def _last(path, key="epoch"):
    """The `key` of the last row of a CSV log, or None."""
    if not os.path.exists(path):
        return None
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    return int(rows[-1][key]) if rows else None


class _NoBar:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def update(self, n, current_item=None):
        pass
