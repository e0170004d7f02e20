"""The papers' two studies beyond the accuracy tables.

Stability (TIPS section 4.3, representations paper section 6): train each
representation with several seeds and summarise test P-MPJPE over epochs, as
measured (each run decides its depth sign from anatomy: orientation.py). Each
summary also comes as an oracle, labelled so, taking at each epoch the better of
the two signs by the test split's 3D poses: where it differs from the measured
one, a run ended on the wrong sign or a mixture.

Validation curves (docs/results.md): runs trained with a held-out
subject (train --val-subject) side by side, validation P-MPJPE against training
seconds, so recipes compare at equal CPU time.

Correlations (representations paper section 5): scale one 2D keypoint of every
test pose at a time, from -95% to +105% in 1% steps, and measure how every
predicted depth moves. A model whose depth j ignores keypoint i has a zero in
the sensitivity matrix at (i, j).
"""
import csv
import os

import numpy as np

from ..atomic import atomic_write
from ..errors import TipsError
from ..io import checkpoint, dataset
from ..method.model import predict_depths
from ..method.skeleton import JOINTS, KEYPOINTS
from .draw import plotting

KEYPOINT_NAMES = [JOINTS[j] for j in KEYPOINTS]   # the sensitivity matrix's rows and columns

SIGN_RESOLVED = " (oracle: better sign by test 3D)"


class StudyError(TipsError):
    """Runs that cannot be summarised together."""
FACTORS = np.round(np.arange(-0.95, 1.05 + 1e-9, 0.01), 2)  # the keypoint is scaled by 1 + f


# ---------------------------------------------------------------- stability

def stability_study(representations, seeds, epochs, window, out, options, progressbar=None, echo=print):
    """Train each representation (a parts list) with seeds 0..seeds-1 under the
    same options, in out/<parts>/seed<k>; finished runs are reused, unfinished
    ones resumed. Returns {name: summary} (each also sign-resolved, an oracle) and
    the files written (stability.csv, and stability.png with matplotlib)."""
    from .train import train
    summaries = {}
    for parts in representations:
        name = "+".join(parts) + ("-combine" if options.get("combine") else "")
        logs = []
        for seed in range(seeds):
            run = os.path.join(out, name, f"seed{seed}")
            started = os.path.exists(os.path.join(run, "checkpoint.h5"))
            if started and checkpoint.load(run)["epoch"] >= epochs:
                echo(f"{name} seed {seed}: finished before, reused")
            else:
                echo(f"{name} seed {seed}: {'resuming' if started else 'training'}")
                train(dict(parts=parts, seed=seed, epochs=epochs, **options), run, started,
                      echo=lambda m: None, progressbar=progressbar)
            logs.append(os.path.join(run, "log.csv"))
        summaries[name] = summarise_stability([read_curve(p) for p in logs], window)
        summaries[name + SIGN_RESOLVED] = summarise_stability([read_curve(p, True) for p in logs], window)
    written = [os.path.join(out, "stability.csv")]
    write_stability_csv(written[0], summaries)
    if plotting() is not None:
        written.append(os.path.join(out, "stability.png"))
        plot_stability(written[1], summaries)
    return summaries, written


def read_curve(log_path, sign_resolved=False):
    """(epochs, P-MPJPE) of one run's log.csv (epochs without evaluation skipped);
    sign_resolved takes the lower of P-MPJPE and its mirrored twin at each epoch."""
    with open(log_path, newline="") as f:
        rows = [r for r in csv.DictReader(f) if r.get("p_mpjpe")]
    errors = np.array([float(r["p_mpjpe"]) for r in rows])
    if sign_resolved:
        errors = np.minimum(errors, [float(r["p_mpjpe_mirrored"]) for r in rows])
    return np.array([int(r["epoch"]) for r in rows]), errors


def summarise_stability(curves, window=0.4):
    """curves: one (epochs, errors) per seed, over the same epochs.

    Returns the mean and std curve over seeds, the last epoch's mean +- std, the
    mean +- std over the last `window` of training (all epochs and seeds pooled,
    as the papers quote epochs 400-800 or 500-800 of 800), and the best epoch's
    mean +- std (each seed's own minimum)."""
    epochs = curves[0][0]
    for e, _ in curves:
        if not np.array_equal(e, epochs):
            raise StudyError("the runs were evaluated at different epochs (runs of another number of "
                             "epochs, or trained with another eval_every, in one study's folder?)")
    errors = np.stack([c for _, c in curves])                  # (seeds, epochs)
    late = epochs > epochs[-1] * (1 - window)
    return {
        "epochs": epochs, "mean": errors.mean(0), "std": errors.std(0),
        "last": (float(errors[:, -1].mean()), float(errors[:, -1].std())),
        "window": (float(errors[:, late].mean()), float(errors[:, late].std())),
        "window_epochs": (int(epochs[late][0]), int(epochs[-1])),
        "best": (float(errors.min(1).mean()), float(errors.min(1).std())),
        "seeds": len(curves),
    }


def format_stability(summaries):
    """One line per summary: last epoch, the late window and the best epoch, mean +- std."""
    return "\n".join(
        f"  {name:48s} last {s['last'][0]:6.1f} +- {s['last'][1]:4.1f}   "
        f"epochs {s['window_epochs'][0]}-{s['window_epochs'][1]} {s['window'][0]:6.1f} +- {s['window'][1]:4.1f}   "
        f"best {s['best'][0]:6.1f} +- {s['best'][1]:4.1f}" for name, s in summaries.items())


def write_stability_csv(path, summaries):
    """summaries: {representation: summarise_stability(...)} -> curves and figures."""
    with atomic_write(path) as tmp, open(tmp, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["representation", "epoch", "mean_p_mpjpe", "std_p_mpjpe"])
        for name, s in summaries.items():
            for e, m, sd in zip(s["epochs"], s["mean"], s["std"]):
                w.writerow([name, int(e), f"{m:.2f}", f"{sd:.2f}"])
        w.writerow([])
        w.writerow(["representation", "seeds", "last_mean", "last_std", "window", "window_mean",
                    "window_std", "best_mean", "best_std"])
        for name, s in summaries.items():
            w.writerow([name, s["seeds"], *(f"{v:.2f}" for v in s["last"]),
                        "{}-{}".format(*s["window_epochs"]), *(f"{v:.2f}" for v in s["window"]),
                        *(f"{v:.2f}" for v in s["best"])])


# ------------------------------------------------------------- correlations

def sensitivity(gen, params, state, pose_2d, factors=FACTORS, batch_size=8192, progress=None):
    """Scale each keypoint i of every pose by (1 + f) for each f in factors and
    measure |z_hat_j(scaled) - z_hat_j(original)|.

    Returns (matrix (16, 16): mean over poses and factors, row i = moved keypoint,
    column j = depth; curves (16, F, 16): mean change per factor)."""
    base = predict_depths(gen, params, state, pose_2d, batch_size)[:, KEYPOINTS]
    curves = np.zeros((len(KEYPOINTS), len(factors), len(KEYPOINTS)))
    for i, joint in enumerate(KEYPOINTS):
        for fi, f in enumerate(factors):
            moved = pose_2d.copy()
            moved[:, joint] *= 1 + f
            z = predict_depths(gen, params, state, moved, batch_size)[:, KEYPOINTS]
            curves[i, fi] = np.abs(z - base).mean(axis=0)
        if progress:
            progress(1)
    return curves.mean(axis=1), curves


def correlation_study(model, pair, poses, data=None, xp=np, out=None, progress=None, echo=print):
    """The sensitivity study of one trained model on a seeded subset of `poses`
    test poses; pair = (moved keypoint, depth) names the curves drawn. Writes
    correlations.csv, correlations_pair.csv (and correlations.png with
    matplotlib) into `out` (default: the model's run folder). Returns (matrix,
    files written)."""
    ckpt = checkpoint.load(model)
    gen, params, state = checkpoint.load_model(ckpt, xp, echo)
    test = dataset.load(data or ckpt["config"].get("data"), "test")
    pick = np.sort(np.random.default_rng(0).permutation(len(test))[:poses])
    matrix, curves = sensitivity(gen, params, state, test.pose_2d[pick], progress=progress)
    out = out or os.path.dirname(ckpt["path"])   # the folder of the checkpoint file
    os.makedirs(out, exist_ok=True)
    written = [os.path.join(out, name) for name in ("correlations.csv", "correlations_pair.csv")]
    write_matrix_csv(written[0], matrix)
    write_pair_csv(written[1], curves, *pair)
    if plotting() is not None:
        written.append(os.path.join(out, "correlations.png"))
        plot_correlations(written[2], matrix, curves, pair, os.path.basename(os.path.normpath(out)))
    return matrix, written


def write_matrix_csv(path, matrix):
    names = KEYPOINT_NAMES
    with atomic_write(path) as tmp, open(tmp, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["moved keypoint \\ depth of"] + names)
        for name, row in zip(names, matrix):
            w.writerow([name] + [f"{v:.6f}" for v in row])


def write_pair_csv(path, curves, moved, depth):
    """The paper's Fig. 2 as numbers: for each change of the moved keypoint, the
    mean |change| of the other keypoint's depth and of its own."""
    i, j = KEYPOINT_NAMES.index(moved), KEYPOINT_NAMES.index(depth)
    with atomic_write(path) as tmp, open(tmp, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow([f"change of {moved} (%)", f"depth of {depth}", f"depth of {moved}"])
        for fi, factor in enumerate(FACTORS):
            w.writerow([f"{factor * 100:.0f}", f"{curves[i, fi, j]:.6f}", f"{curves[i, fi, i]:.6f}"])


def plot_stability(path, summaries):
    """Mean +- std curves; the sign-resolved summaries in a second panel."""
    plt = plotting()
    fig, axes = plt.subplots(1, 2, figsize=(13, 5), sharey=True)
    for name, s in summaries.items():
        ax = axes[1] if name.endswith(SIGN_RESOLVED) else axes[0]
        label = name.replace(SIGN_RESOLVED, "")
        ax.plot(s["epochs"], s["mean"], label=f"{label} ({s['seeds']} seeds)")
        ax.fill_between(s["epochs"], s["mean"] - s["std"], s["mean"] + s["std"], alpha=0.25)
    for ax, title in zip(axes, ("as measured", "depth sign resolved")):
        ax.set_xlabel("epoch")
        ax.set_title(f"Test P-MPJPE, mean +- std over seeds: {title}")
        ax.legend()
    axes[0].set_ylabel("P-MPJPE (mm)")
    fig.tight_layout()
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)


# ---------------------------------------------------------------- validation curves

def read_curves(runs):
    """{run label: rows of its val.csv (seconds, step, val_p_mpjpe, ...)}."""
    curves = {}
    for run in runs:
        path = os.path.join(run, "val.csv")
        if not os.path.isfile(path):
            raise StudyError(f"{path}: not found (train the run with --val-subject)")
        with open(path, newline="") as f:
            curves[os.path.basename(os.path.normpath(run))] = [
                {k: float(v) for k, v in r.items()} for r in csv.DictReader(f)]
    return curves


# A run whose last validation came within 3% of a mark has lasted that long: validations
# fall every few hundred steps, so the last one of a run of m minutes lands just short of m.
MARK_SLACK = 0.03


def format_curves(curves, marks=(5, 10, 20, 30, 60, 120)):
    """Each run's validation P-MPJPE at the last validation within each mark (minutes
    of training; '-' where the run was shorter), its last and its best."""
    lines = ["run".ljust(24) + "".join(f"{m:>4d} min" for m in marks) + "     last     best  minutes"]
    for label, rows in curves.items():
        cells = []
        for m in marks:
            within = [r["val_p_mpjpe"] for r in rows if r["seconds"] <= 60 * m]
            lasted = rows[-1]["seconds"] >= (1 - MARK_SLACK) * 60 * m
            cells.append(f"{within[-1]:8.1f}" if lasted and within else "       -")
        lines.append(label.ljust(24) + "".join(cells) + f"{rows[-1]['val_p_mpjpe']:9.1f}"
                     f"{min(r['val_p_mpjpe'] for r in rows):9.1f}{rows[-1]['seconds'] / 60:9.1f}")
    return "\n".join(lines)


def plot_curves(path, curves):
    """Validation P-MPJPE against training minutes, one line per run."""
    plt = plotting()
    fig, ax = plt.subplots(figsize=(8, 5))
    for label, rows in curves.items():
        ax.plot([r["seconds"] / 60 for r in rows], [r["val_p_mpjpe"] for r in rows], "-o", ms=2, label=label)
    ax.set_xlabel("training time (minutes, this machine)")
    ax.set_ylabel("validation P-MPJPE (mm, held-out subject)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)


def plot_correlations(path, matrix, curves, pair, title):
    plt = plotting()
    names = KEYPOINT_NAMES
    fig, (ax, bx) = plt.subplots(1, 2, figsize=(14, 6))
    im = ax.imshow(matrix, cmap="viridis")
    ax.set_xticks(range(len(names)), names, rotation=90)
    ax.set_yticks(range(len(names)), names)
    ax.set_xlabel("predicted depth of")
    ax.set_ylabel("moved 2D keypoint")
    ax.set_title(title)
    fig.colorbar(im, ax=ax, label="mean |change of depth|")
    i, j = (names.index(p) for p in pair)
    bx.plot(FACTORS * 100, curves[i, :, j], label=f"depth of {pair[1]}")
    bx.plot(FACTORS * 100, curves[i, :, i], label=f"depth of {pair[0]}")
    bx.set_xlabel(f"change of the {pair[0]} 2D keypoint (%)")
    bx.set_ylabel("mean |change of predicted depth|")
    bx.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
