"""The command line: prepare data, train, distil, evaluate, lift, study, bench."""
import os
import sys

import click

from . import skeleton


def fail(message):
    """One line on stderr, exit status 1, no traceback."""
    click.echo(f"error: {message}", err=True)
    sys.exit(1)


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
def main():
    """tips-np: unsupervised adversarial 2D-to-3D human pose lifting (TIPS and the
    five 2D pose representations), written by hand on NumPy, with CuPy on a GPU.

    \b
    Typical use:
      python cli.py train --parts torso,legs      # TIPS teachers on the shipped sample
      python cli.py distill runs/torso+legs       # the single TIPS student
      python cli.py evaluate runs/torso+legs      # P-MPJPE table per action
    """


@main.command("prepare-data")
@click.option("--h36m", "root", required=True, type=click.Path(file_okay=False),
              help="Human3.6M folder in the 3d-pose-baseline layout (cameras.h5, S*/MyPoses/3D_positions).")
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="HDF5 file to write.")
@click.option("--every", default=1, show_default=True, type=click.IntRange(min=1),
              help="Keep every N-th frame (the shipped sample uses 64).")
@click.option("--subjects", default=",".join(map(str, skeleton.SUBJECTS)), show_default=True,
              help="Comma-separated subject numbers.")
@click.option("--distortion/--no-distortion", default=False, show_default=True,
              help="Apply the cameras' radial and tangential distortion when projecting.")
def prepare_data(root, out, every, subjects, distortion):
    """Project Human3.6M's 3D ground truth into each camera: 2D poses (pixels) and
    camera-frame 3D poses (mm) of the 17 joints, in one HDF5 file."""
    import time

    from .h36m import DataError, list_sequences, prepare
    try:
        subject_list = [int(s) for s in subjects.split(",") if s.strip()]
    except ValueError:
        fail(f"--subjects: expected comma-separated subject numbers, got {subjects!r}")
    bad = [s for s in subject_list if s not in skeleton.SUBJECTS]
    if bad:
        fail(f"--subjects: unknown subject {bad[0]} (Human3.6M has {skeleton.SUBJECTS})")
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    start = time.time()
    try:
        n_seq = len(list_sequences(root, subject_list))
        with click.progressbar(length=n_seq, label="sequences") as bar:
            n = prepare(root, out, every, subject_list, distortion, progress=bar.update)
    except DataError as e:
        fail(str(e))
    click.echo(f"wrote {n} 2D/3D pose pairs from {n_seq} sequences x 4 cameras to {out} "
               f"({os.path.getsize(out) / 1e6:.1f} MB, {time.time() - start:.1f} s)")


def progressbar(length, label):
    """click's bar; the text after it shows the running losses."""
    return click.progressbar(length=length, label=label, file=sys.stderr,
                             item_show_func=lambda text: text)


def parse_parts_option(ctx, param, value):
    try:
        return skeleton.parse_parts(value)
    except ValueError as e:
        raise click.BadParameter(str(e))


def data_option(f):
    return click.option("--data", type=click.Path(dir_okay=False), default=None,
                        help="Prepared HDF5 file [default: the shipped sample data/h36m_sample.h5].")(f)


def device_option(f):
    return click.option("--device", type=click.Choice(["cpu", "cuda"]), default="cpu", show_default=True,
                        help="cpu runs on NumPy; cuda on CuPy (pip install -e '.[gpu]').")(f)


@main.command()
@click.option("--parts", default="torso,legs", show_default=True, callback=parse_parts_option,
              help="The 2D pose representation: full, torso,legs (TIPS) or larm,rarm,torso,lleg,rleg.")
@click.option("--combine", is_flag=True,
              help="Split and recombine: the parts' features feed one combining network "
                   "(default: the parts are independent).")
@click.option("--match-params", is_flag=True,
              help="Narrow the networks so the representation has about as many parameters as a "
                   "full-pose generator of --width (the representations paper's comparison).")
@click.option("--width", default=256, show_default=True, type=click.IntRange(8, 8192),
              help="Width of each network (papers: 1024).")
@click.option("--blocks", default=2, show_default=True, type=click.IntRange(1, 6),
              help="Residual blocks per generator; the discriminator has one fewer (papers: 4).")
@click.option("--epochs", default=40, show_default=True, type=click.IntRange(min=1))
@click.option("--batch-size", default=256, show_default=True, type=click.IntRange(min=2),
              help="Poses per step (papers: 8192).")
@click.option("--lr", default=2e-4, show_default=True, type=click.FloatRange(min=0, min_open=True),
              help="Adam's learning rate (papers: 2e-4).")
@click.option("--betas", default=(0.9, 0.999), show_default=True, nargs=2,
              type=click.FloatRange(0, 1, max_open=True), help="Adam's betas (the papers do not say).")
@click.option("--gan", type=click.Choice(["bce", "lsgan"]), default="bce", show_default=True,
              help="Adversarial loss: bce (TIPS eq. 6) or lsgan (representations paper eq. 6).")
@click.option("--azimuth", default=180.0, show_default=True, type=click.FloatRange(0, 180),
              help="Random azimuths are drawn in [-a, a] degrees (TIPS 180; representations paper 160).")
@click.option("--perspective", default=None, type=click.FloatRange(min=1, min_open=True),
              help="Project the synthetic views in perspective from a camera this many normalised "
                   "units in front of the root (Human3.6M: about 5.5) [default: orthographic, as the papers].")
@click.option("--activation", type=click.Choice(["relu", "leaky_relu"]), default="relu", show_default=True,
              help="Hidden activation of the generators (the discriminator uses leaky_relu).")
@click.option("--dropout", default=0.0, show_default=True, type=click.FloatRange(0, 1, max_open=True))
@click.option("--seed", default=0, show_default=True, type=int)
@click.option("--eval-every", default=1, show_default=True, type=click.IntRange(min=1),
              help="Evaluate on the test split every k epochs (and after the last).")
@data_option
@device_option
@click.option("--out", type=click.Path(file_okay=False), default=None,
              help="Run folder for checkpoint.h5, log.csv and evaluation files [default: runs/<parts>].")
@click.option("--resume", is_flag=True, help="Continue the run in --out from its checkpoint, up to --epochs.")
def train(parts, combine, out, resume, **options):
    """Train generators of one 2D pose representation adversarially, with
    reprojection and 90-degree consistency, and evaluate them on the test split."""
    out = out or os.path.join("runs", "+".join(parts) + ("-combine" if combine else ""))
    options["betas"] = list(options["betas"])
    run_and_report(dict(parts=parts, combine=combine, **options), out, resume, "+".join(parts))


def run_and_report(config, out, resume, label):
    """Train (or distil) with a progress bar, then save and print the test table."""
    from .backend import DeviceError
    from .checkpoint import CheckpointError
    from .evaluate import format_table, save_results
    from .h36m import DataError
    from .train import Diverged
    from .train import train as run_training
    try:
        _, result = run_training(config, out, resume, echo=click.echo, progressbar=progressbar)
    except (DataError, CheckpointError, DeviceError, Diverged) as e:
        fail(str(e))
    save_results(out, result)
    click.echo(f"\nTest split, mm ({os.path.join(out, 'evaluation.csv')}):")
    click.echo(format_table({f"{label} {m}": result[m] for m in result}))


@main.command()
@click.argument("teacher", type=click.Path())
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Run folder of the student.")
@click.option("--width", default=None, type=click.IntRange(8, 8192),
              help="Student width [default: the teachers' width].")
@click.option("--blocks", default=None, type=click.IntRange(1, 6),
              help="Student residual blocks [default: the teachers'].")
@click.option("--epochs", default=20, show_default=True, type=click.IntRange(min=1))
@click.option("--batch-size", default=256, show_default=True, type=click.IntRange(min=2))
@click.option("--lr", default=2e-4, show_default=True, type=click.FloatRange(min=0, min_open=True))
@click.option("--seed", default=0, show_default=True, type=int)
@click.option("--eval-every", default=1, show_default=True, type=click.IntRange(min=1))
@data_option
@device_option
@click.option("--resume", is_flag=True, help="Continue the student in --out from its checkpoint.")
def distill(teacher, out, width, blocks, resume, **options):
    """Distil trained generators into the single TIPS generator on the full 2D pose.

    TEACHER is a run folder or checkpoint of `train` (runs/torso+legs, say); the
    student matches its depths by mean squared error (TIPS eq. 7)."""
    from .checkpoint import CheckpointError, load
    try:
        t_config = load(teacher)["config"]
    except CheckpointError as e:
        fail(str(e))
    config = dict(parts=["full"], combine=False, match_params=False, teacher=teacher,
                  width=width or t_config["width"], blocks=blocks or t_config["blocks"],
                  activation=t_config["activation"], dropout=0.0,
                  data=options.pop("data") or t_config.get("data"), **options)
    run_and_report(config, out, resume, "student")


@main.command()
@click.argument("model", type=click.Path())
@click.option("--input", "input_path", required=True, type=click.Path(dir_okay=False),
              help="2D poses in pixels: .json, .csv or .npy (see README, 'Lifting your own poses').")
@click.option("--output", "output_path", required=True, type=click.Path(dir_okay=False),
              help="3D poses: .json or .npy.")
@device_option
def lift(model, input_path, output_path, device):
    """Lift 2D poses (17 joints, or 16 keypoints without the root, in pixels) to 3D
    with a trained model: a run folder or checkpoint of train or distill."""
    from .backend import DeviceError, use_device
    from .checkpoint import CheckpointError, load, load_model
    from .lifting import LiftError, lift_poses, read_poses, write_poses
    try:
        pose_px = read_poses(input_path)
        gen, params, state = load_model(load(model), use_device(device), click.echo)
        pose_3d, pixels = lift_poses(gen, params, state, pose_px)
        write_poses(output_path, pose_3d, pixels)
    except (LiftError, CheckpointError, DeviceError) as e:
        fail(str(e))
    click.echo(f"lifted {len(pose_px)} pose(s) from {input_path} to {output_path}")


@main.command()
@click.argument("runs", nargs=-1, required=True, type=click.Path())
@click.option("--per-pose-sign", is_flag=True,
              help="Negate the legs' or the torso's depths of each pose that fails that part's "
                   "handedness test before scoring (see README, 'The depth sign').")
@data_option
@device_option
def evaluate(runs, per_pose_sign, data, device):
    """P-MPJPE (strict and reflection allowed), N-MPJPE, PCK3D and AUC per action
    on the test split for one or more trained models (run folders or checkpoint
    files), side by side. --data takes any file in the prepared layout."""
    from .backend import DeviceError, use_device
    from .checkpoint import CheckpointError
    from .evaluate import evaluate_runs, format_table
    from .h36m import DataError
    try:
        rows = evaluate_runs(runs, data, use_device(device), per_pose_sign, click.echo)
    except (DataError, CheckpointError, DeviceError) as e:
        fail(str(e))
    click.echo(format_table(rows))


@main.group()
def study():
    """The papers' studies: stability across seeds, keypoint correlations."""


def parse_parts_list(ctx, param, value):
    return [parse_parts_option(ctx, param, v) for v in value]


@study.command()
@click.option("--parts", "representations", multiple=True, required=True, callback=parse_parts_list,
              help="A representation to train (repeat: --parts full --parts torso,legs).")
@click.option("--seeds", default=5, show_default=True, type=click.IntRange(min=2))
@click.option("--epochs", default=40, show_default=True, type=click.IntRange(min=1))
@click.option("--window", default=0.4, show_default=True, type=click.FloatRange(0, 1, min_open=True),
              help="Summarise the last fraction of training (the papers: epochs 400/500-800 of 800).")
@click.option("--width", default=256, show_default=True, type=click.IntRange(8, 8192))
@click.option("--blocks", default=2, show_default=True, type=click.IntRange(1, 6))
@click.option("--batch-size", default=256, show_default=True, type=click.IntRange(min=2))
@click.option("--match-params", is_flag=True, help="As for train.")
@click.option("--gan", type=click.Choice(["bce", "lsgan"]), default="bce", show_default=True)
@click.option("--eval-every", default=1, show_default=True, type=click.IntRange(min=1))
@data_option
@device_option
@click.option("--out", default="runs/stability", show_default=True, type=click.Path(file_okay=False))
def stability(representations, seeds, epochs, window, out, **options):
    """Train each representation with several seeds (same data and budget) and
    summarise test P-MPJPE over epochs: the mean +- std curve, the last epoch,
    the last --window of training, and the best epoch; each also "sign resolved"
    (per epoch the better of the two depth signs). Finished runs are reused,
    unfinished ones resumed, so a long study can be interrupted."""
    from .backend import DeviceError
    from .checkpoint import CheckpointError, load
    from .h36m import DataError
    from .studies import (SIGN_RESOLVED, plot_stability, plotting, read_curve, summarise_stability,
                          write_stability_csv)
    from .train import Diverged
    from .train import train as run_training
    summaries = {}
    try:
        for parts in representations:
            name = "+".join(parts)
            logs = []
            for seed in range(seeds):
                run = os.path.join(out, name, f"seed{seed}")
                done = os.path.exists(os.path.join(run, "checkpoint.h5")) and load(run)["epoch"] >= epochs
                if done:
                    click.echo(f"{name} seed {seed}: finished before, reused")
                else:
                    resume = os.path.exists(os.path.join(run, "checkpoint.h5"))
                    click.echo(f"{name} seed {seed}: {'resuming' if resume else 'training'}")
                    run_training(dict(parts=parts, seed=seed, epochs=epochs, **options), run, resume,
                                 echo=lambda m: None, progressbar=progressbar)
                logs.append(os.path.join(run, "log.csv"))
            summaries[name] = summarise_stability([read_curve(p) for p in logs], window)
            summaries[name + SIGN_RESOLVED] = summarise_stability([read_curve(p, True) for p in logs], window)
    except (DataError, CheckpointError, DeviceError, Diverged, ValueError) as e:
        fail(str(e))
    csv_path = os.path.join(out, "stability.csv")
    write_stability_csv(csv_path, summaries)
    click.echo(f"\nTest P-MPJPE (mm), mean +- std over {seeds} seeds:")
    for name, s in summaries.items():
        lo, hi = s["window_epochs"]
        click.echo(f"  {name:44s} last {s['last'][0]:6.1f} +- {s['last'][1]:4.1f}   "
                   f"epochs {lo}-{hi} {s['window'][0]:6.1f} +- {s['window'][1]:4.1f}   "
                   f"best {s['best'][0]:6.1f} +- {s['best'][1]:4.1f}")
    click.echo(f"written: {csv_path}")
    if plotting() is None:
        click.echo("no plot: matplotlib is not installed (pip install -e '.[plot]')")
    else:
        plot_stability(os.path.join(out, "stability.png"), summaries)
        click.echo(f"written: {os.path.join(out, 'stability.png')}")


@study.command()
@click.argument("model", type=click.Path())
@click.option("--pair", default="left_elbow,right_ankle", show_default=True,
              help="Moved keypoint and depth whose curves are drawn (the paper's Fig. 2).")
@click.option("--poses", default=2000, show_default=True, type=click.IntRange(min=1),
              help="Test poses to perturb (a seeded random subset; the paper uses all).")
@data_option
@device_option
@click.option("--out", default=None, type=click.Path(file_okay=False),
              help="Folder for the CSV and plot [default: the model's run folder].")
def correlations(model, pair, poses, data, device, out):
    """Scale each 2D keypoint of the test poses, one at a time, from -95% to
    +105% in 1% steps, and report how much every predicted depth moves: the 16x16
    sensitivity matrix (representations paper, section 5)."""
    import numpy as np

    from .backend import DeviceError, use_device
    from .checkpoint import CheckpointError, load, load_model
    from .dataset import load as load_data
    from .h36m import DataError
    from .studies import plot_correlations, plotting, sensitivity, write_matrix_csv, write_pair_csv
    names = skeleton.JOINTS[1:]
    moved, depth = (p.strip() for p in (pair.split(",") + [""])[:2])
    if moved not in names or depth not in names:
        fail(f"--pair: expected two keypoints of {', '.join(names)}; got {pair!r}")
    try:
        ckpt = load(model)
        gen, params, state = load_model(ckpt, use_device(device), click.echo)
        test = load_data(data or ckpt["config"].get("data"), "test")
    except (DataError, CheckpointError, DeviceError) as e:
        fail(str(e))
    pick = np.sort(np.random.default_rng(0).permutation(len(test))[:poses])
    with click.progressbar(length=16, label=f"perturbing {len(pick)} poses, keypoint by keypoint",
                           file=sys.stderr) as bar:
        matrix, curves = sensitivity(gen, params, state, test.pose_2d[pick], progress=bar.update)
    out = out or (model if os.path.isdir(model) else os.path.dirname(model))
    os.makedirs(out, exist_ok=True)
    write_matrix_csv(os.path.join(out, "correlations.csv"), matrix)
    click.echo(f"written: {os.path.join(out, 'correlations.csv')}")
    i, j = names.index(moved), names.index(depth)
    write_pair_csv(os.path.join(out, "correlations_pair.csv"), curves, moved, depth)
    click.echo(f"written: {os.path.join(out, 'correlations_pair.csv')}")
    click.echo(f"moving the {moved} keypoint changes the depth of {depth} by {matrix[i, j]:.4f} "
               f"and its own depth by {matrix[i, i]:.4f} on average (normalised units)")
    if plotting() is None:
        click.echo("no plot: matplotlib is not installed (pip install -e '.[plot]')")
    else:
        png = os.path.join(out, "correlations.png")
        plot_correlations(png, matrix, curves, (moved, depth), f"{os.path.basename(os.path.normpath(out))}")
        click.echo(f"written: {png}")


@main.command()
@device_option
@click.option("--parts", default="torso,legs", show_default=True, callback=parse_parts_option)
@click.option("--width", default=1024, show_default=True, type=click.IntRange(8, 8192))
@click.option("--blocks", default=4, show_default=True, type=click.IntRange(1, 6))
@click.option("--batch", default=1024, show_default=True, type=click.IntRange(min=2))
@click.option("--steps", default=5, show_default=True, type=click.IntRange(min=1), help="Timed steps.")
@click.option("--warmup", default=2, show_default=True, type=click.IntRange(min=0))
@click.option("--out", default="bench.json", show_default=True, type=click.Path(dir_okay=False),
              help="JSON file for the figures.")
def bench(device, parts, width, blocks, batch, steps, warmup, out):
    """Time whole adversarial training steps (both networks, all losses) and
    report step time, poses/s, the share of time in matrix products, achieved
    GFLOP/s against the device's plain matrix product, and peak memory."""
    import json

    from .atomic import atomic_write
    from .backend import DeviceError
    from .bench import bench as run_bench
    try:
        r = run_bench(device, parts, width, blocks, batch, steps, warmup, echo=click.echo)
    except DeviceError as e:
        fail(str(e))
    with atomic_write(out) as tmp, open(tmp, "w") as f:
        json.dump(r, f, indent=2)
    click.echo(f"{r['device']}  {'+'.join(r['parts'])}  width {width}  blocks {blocks}  batch {batch}\n"
               f"step         {r['step_s_median'] * 1e3:9.1f} ms median "
               f"({r['step_s_min'] * 1e3:.1f}-{r['step_s_max'] * 1e3:.1f})\n"
               f"throughput   {r['poses_per_s']:9.0f} poses/s\n"
               f"matmuls      {r['matmul_share'] * 100:9.1f} % of the step "
               f"({r['matmuls_per_step']} products, {r['matmul_gflop_per_step']:.1f} GFLOP)\n"
               f"achieved     {r['achieved_gflops']:9.1f} GFLOP/s over the whole step = "
               f"{r['fraction_of_plain'] * 100:.1f} % of a plain matmul ({r['plain_matmul_gflops']:.1f} GFLOP/s)\n"
               f"peak memory  {r['peak_rss_mb']:9.0f} MB RSS" +
               (f", {r['gpu_pool_peak_mb']:.0f} MB GPU pool" if device == "cuda" else "") +
               f"\nwritten to {out}")


if __name__ == "__main__":
    main()
