"""The command line: prepare data, train, distil, evaluate, lift, study, bench.
It parses options and prints results; the work lives in the modules it calls,
imported when a command runs (so --help stays quick). It also tunes the machine
for the commands (machine.py): OpenBLAS's idle threads are quieted before NumPy
loads, just below, and glibc keeps freed memory once a command runs."""
import math
import os
import sys

from .tools import machine

machine.quiet_idle_blas_threads()  # before anything below loads NumPy

import click  # noqa: E402

from .errors import TipsError  # noqa: E402
from .io.keypoints import FORMATS  # noqa: E402
from .method import skeleton  # noqa: E402
from .method.cycle import PERSPECTIVE_MIN  # noqa: E402


def fail(message):
    """One line on stderr, exit status 1, no traceback."""
    click.echo(f"error: {message}", err=True)
    sys.exit(1)


class Commands(click.Group):
    """Every command's user-fixable failures (errors.TipsError) end in one line."""

    def invoke(self, ctx):
        machine.keep_freed_memory()  # (speed only: a warm training step faults no memory in)
        try:
            return super().invoke(ctx)
        except TipsError as e:
            fail(str(e))


@click.group(cls=Commands, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
def main():
    """tips-np: unsupervised adversarial 2D-to-3D human pose lifting (TIPS and the
    five 2D pose representations), written by hand on NumPy, with CuPy on a GPU.

    \b
    Typical use:
      python cli.py train --parts torso,legs      # TIPS teachers on the shipped sample
      python cli.py distill runs/torso+legs       # the single TIPS student
      python cli.py evaluate runs/torso+legs      # P-MPJPE table per action
    """


def options(*decorators):
    """Apply a list of click options (declared once, shared by several commands)."""
    def apply(f):
        for d in reversed(decorators):
            f = d(f)
        return f
    return apply


def parse_parts_option(ctx, param, value):
    try:
        return skeleton.parse_parts(value)
    except ValueError as e:
        raise click.BadParameter(str(e))


def check_perspective(ctx, param, value):
    if value and value <= PERSPECTIVE_MIN:
        raise click.BadParameter(f"{value} is too near: a camera nearer than {PERSPECTIVE_MIN:.3f} "
                                 "normalised units can have a turned joint behind it (0 is orthographic)")
    return value


class Finite(click.FloatRange):
    """click.FloatRange that also refuses nan and inf (nan passes every comparison)."""

    def convert(self, value, param, ctx):
        value = super().convert(value, param, ctx)
        if not math.isfinite(value):
            self.fail(f"{value} is not a finite number.", param, ctx)
        return value


def parse_parts_list(ctx, param, value):
    return [parse_parts_option(ctx, param, v) for v in value]


DATA = click.option("--data", type=click.Path(dir_okay=False), default=None,
                    help="Prepared HDF5 file [default: the shipped sample data/h36m_sample.h5].")
DEVICE = click.option("--device", type=click.Choice(["cpu", "cuda"]), default="cpu", show_default=True,
                      help="cpu runs on NumPy; cuda on CuPy (pip install -e '.[gpu]').")
# test-time choices of lift and evaluate (evaluate scores what lift does)
TEST_TIME = [
    click.option("--smooth", default=0.0, show_default=True, type=Finite(min=0), metavar="SIGMA",
                 help="Smooth each person's 2D track over time before lifting: a Gaussian of SIGMA frames "
                      "(5 at 50 Hz, 100 ms, was chosen on S8's detections; 0: off)."),
    click.option("--mirror-average", is_flag=True,
                 help="Average each pose's depths with those of its mirror image (twice the lifting work)."),
]
# the recipe of every training loop (train, distill, study stability)
RECIPE = [
    click.option("--recipe", type=click.Choice(["cpu", "paper"]), default="cpu", show_default=True,
                 help="cpu: the recipe that learned most per CPU second (docs/walkthrough.md, section 8); "
                      "paper: the papers' weights and optimiser. Options given explicitly override it."),
    click.option("--batch-size", default=256, show_default=True, type=click.IntRange(min=2),
                 help="Poses per step (papers: 8192)."),
    click.option("--lr", default=None, type=Finite(min=0, min_open=True),
                 help="Adam's learning rate [default: the recipe's; papers: 2e-4]."),
    click.option("--dropout", default=0.0, show_default=True, type=Finite(0, 1, max_open=True),
                 help="Dropout after every hidden unit of the generators (the TIPS authors' code: 0.5)."),
    click.option("--lr-schedule", type=click.Choice(["constant", "cosine"]), default=None,
                 help="constant (papers), or cosine from --lr down to 1% of it over the run's epochs "
                      "[default: the recipe's]."),
    click.option("--val-subject", default=None, type=click.Choice(["1", "5", "6", "7", "8"]),
                 callback=lambda ctx, param, value: None if value is None else int(value),
                 help="Hold this training subject out for validation (every 10th pose): it is scored "
                      "during training (val.csv), its best weights are kept (best.h5), and the test "
                      "split is scored once, at the end, on those."),
    click.option("--val-every", default=0, show_default=True, type=click.IntRange(min=0),
                 help="With --val-subject: also validate every k steps (0: after every epoch only)."),
    DATA, DEVICE,
]
# the adversarial method (train, study stability)
ADVERSARIAL = [
    click.option("--combine", is_flag=True,
                 help="Split and recombine: the parts' features feed one combining network "
                      "(default: the parts are independent)."),
    click.option("--match-params", is_flag=True,
                 help="Narrow the networks so the representation has about as many parameters as a "
                      "full-pose generator of --width (the representations paper's comparison)."),
    click.option("--width", default=256, show_default=True, type=click.IntRange(8, 8192),
                 help="Width of each network (papers: 1024; the full-data hour's runs: 512, "
                      "docs/results.md)."),
    click.option("--blocks", default=2, show_default=True, type=click.IntRange(1, 6),
                 help="Residual blocks per generator; the discriminator has one fewer (papers: 4)."),
    click.option("--gan", type=click.Choice(["bce", "lsgan"]), default="bce", show_default=True,
                 help="Adversarial loss: bce (TIPS eq. 6) or lsgan (representations paper eq. 6)."),
    click.option("--azimuth", default=180.0, show_default=True, type=Finite(0, 180),
                 help="Random azimuths are drawn in [-a, a] degrees (TIPS 180; representations paper 160)."),
    click.option("--perspective", default=None, type=Finite(min=0), callback=check_perspective,
                 help="Take the 2D poses as pinhole views from a camera this many normalised units in "
                      "front of the root: the cycle unprojects them at the lifted depths and projects the "
                      f"synthetic views in perspective (Human3.6M: about 5.5; more than {PERSPECTIVE_MIN:.3f}, "
                      "the nearest a turned joint can come); 0 is orthographic, as the papers "
                      "[default: the recipe's; cpu 5.5]."),
    click.option("--w-90", default=3.0, show_default=True, type=Finite(min=0),
                 help="Weight of the 90-degree consistency (TIPS eqs. 3-5); 0 leaves it out."),
    click.option("--w-inf", default=0.0, show_default=True, type=Finite(min=0),
                 help="Weight of the all-angle consistency of TIPS's appendix A.3 (forward-mode "
                      "derivatives); 0, the papers' method, leaves it out."),
    click.option("--adv-scale", default=None, type=Finite(min=0),
                 help="Multiply TIPS's adversarial weights (torso 0.08, legs 0.05) by this "
                      "[default: the recipe's; papers: 1]."),
    click.option("--real-label", default=None, type=Finite(0, 1, min_open=True),
                 help="The discriminator's target for real poses [default: the recipe's; papers: 1; "
                      "0.8 smooths it]."),
    click.option("--view-pitch", default=None, type=Finite(-45, 45),
                 help="Turn the synthetic views about the body's vertical axis as a camera looking down "
                      "this many degrees sees it (Human3.6M's cameras: about 12), not about the camera's "
                      "[default: the recipe's; papers: 0, the camera's axis]."),
    click.option("--weigh-facing", default=0.0, show_default=True, type=Finite(0, 1),
                 help="Weigh the discriminator's terms of the synthetic views by how often real poses "
                      "face that way, at this strength: real poses face the camera mostly from the front "
                      "or back, views turned by --azimuth 180 every way (0: not weighed, as in the papers; "
                      "1: full strength, for the full data, as its one-hour runs in docs/results.md)."),
    click.option("--d-lr-scale", default=None, type=Finite(min=0, min_open=True),
                 help="The discriminator's learning rate as a multiple of --lr [default: the recipe's; "
                      "papers: 1]."),
]


def progressbar(length, label):
    """click's bar; the text after it shows the running losses."""
    return click.progressbar(length=length, label=label, file=sys.stderr, item_show_func=lambda text: text)


@main.command("prepare-data")
@click.option("--h36m", "root", default=None, type=click.Path(file_okay=False),
              help="Human3.6M folder in the 3d-pose-baseline layout (cameras.h5, S*/MyPoses/3D_positions; "
                   "S*/StackedHourglass, where present, adds a detector's keypoints).")
@click.option("--keypoints", default=None, type=click.Path(),
              help="Instead of --h36m: your own 2D poses, any file or folder `lift` reads, as a training file "
                   "with no 3D poses (train --data on it; nothing to evaluate).")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="auto", show_default=True,
              help="With --keypoints: the layout of the file, as `lift --format`.")
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="HDF5 file to write.")
@click.option("--every", default=1, show_default=True, type=click.IntRange(min=1),
              help="Keep every N-th frame (the shipped sample uses 64).")
@click.option("--subjects", default=",".join(map(str, skeleton.SUBJECTS)), show_default=True,
              help="Comma-separated subject numbers.")
@click.option("--distortion/--no-distortion", default=False, show_default=True,
              help="Apply the cameras' radial and tangential distortion when projecting.")
@click.option("--overwrite", is_flag=True, help="Replace --out if it exists.")
def prepare_data(root, keypoints, fmt, out, every, subjects, distortion, overwrite):
    """Project Human3.6M's 3D ground truth into each camera: 2D poses (pixels) and
    camera-frame 3D poses (mm) of the 17 joints, in one HDF5 file (with a detector's
    keypoints of the same frames where the folder has them). Or, with --keypoints,
    turn your own 2D poses into a training file."""
    import time

    from .atomic import make_folder
    from .io.h36m import list_sequences, prepare
    if (root is None) == (keypoints is None):
        fail("give one of --h36m (Human3.6M's folder) and --keypoints (your own 2D poses)")
    if keypoints is not None:
        from .io.dataset import prepare_2d
        from .io.lifting import read_poses
        refuse_existing(out, overwrite)
        poses = read_poses(keypoints, fmt)
        for line in poses.skipped[:5]:
            click.echo(f"warning: skipped {line}", err=True)
        make_folder(os.path.dirname(os.path.abspath(out)))
        n = prepare_2d(poses, out, keypoints)
        click.echo(f"wrote {n:,} 2D poses (no 3D) of {len(set(poses.person.tolist()))} person(s) from "
                   f"{keypoints} to {out}; {len(poses.skipped)} skipped")
        return
    try:
        subject_list = [int(s) for s in subjects.split(",") if s.strip()]
    except ValueError:
        fail(f"--subjects: expected comma-separated subject numbers, got {subjects!r}")
    bad = [s for s in subject_list if s not in skeleton.SUBJECTS]
    if bad:
        fail(f"--subjects: unknown subject {bad[0]} (Human3.6M has {skeleton.SUBJECTS})")
    twice = [s for i, s in enumerate(subject_list) if s in subject_list[:i]]
    if twice:
        fail(f"--subjects: subject {twice[0]} given twice")
    refuse_existing(out, overwrite)
    make_folder(os.path.dirname(os.path.abspath(out)))
    start = time.time()
    n_seq = len(list_sequences(root, subject_list))
    with click.progressbar(length=n_seq, label="sequences") as bar:
        n = prepare(root, out, every, subject_list, distortion, progress=bar.update)
    click.echo(f"wrote {n} 2D/3D pose pairs from {n_seq} sequences x 4 cameras to {out} "
               f"({os.path.getsize(out) / 1e6:.1f} MB, {time.time() - start:.1f} s)")
    import h5py
    import numpy as np
    with h5py.File(out, "r") as f:
        if "pose_2d_det" in f:
            has_3d = f["has_3d"][()]
            detected = np.isfinite(f["pose_2d_det"][:, 0, 0])
            click.echo(f"with a detector's keypoints (StackedHourglass, MPII mapped into the 17 joints) for "
                       f"{int((detected & has_3d).sum()):,} of them, and {int((~has_3d).sum()):,} detected 2D "
                       f"poses with no 3D (takes without a 3D sequence, for training)")


@main.command()
@click.option("--parts", default="torso,legs", show_default=True, callback=parse_parts_option,
              help="The 2D pose representation: full, torso,legs (TIPS) or larm,rarm,torso,lleg,rleg.")
@options(*ADVERSARIAL)
@click.option("--epochs", default=40, show_default=True, type=click.IntRange(min=1))
@options(*RECIPE)
@click.option("--seed", default=0, show_default=True, type=int)
@click.option("--out", type=click.Path(file_okay=False), default=None,
              help="Run folder for checkpoint.h5, log.csv and evaluation files [default: runs/<parts>].")
@click.option("--resume", is_flag=True, help="Continue the run in --out from its checkpoint, up to --epochs "
                                              "(any other option given must agree with the run's).")
@click.option("--overwrite", is_flag=True, help="Start over in an --out that holds a run (deleting it).")
@click.option("--show-config", is_flag=True,
              help="Print the configuration a fresh run takes (the defaults, then the recipe's values, then "
                   "the options given) as JSON, and stop.")
def train(parts, combine, out, resume, overwrite, show_config, **options):
    """Train generators of one 2D pose representation adversarially, with
    reprojection and 90-degree consistency, decide their depth sign by anatomy
    after every epoch, and evaluate them on the test split."""
    out = out or os.path.join("runs", "+".join(parts) + ("-combine" if combine else ""))
    if show_config:
        if resume:
            fail("--show-config shows a fresh run's configuration; a resumed run keeps its checkpoint's")
        import json

        from .tools.train import resolve
        config = resolve(dict(parts=parts, combine=combine, **options))
        click.echo("{\n" + ",\n".join(f"  {json.dumps(k)}: {json.dumps(v)}" for k, v in config.items()) + "\n}")
        return
    run_and_report(dict(parts=parts, combine=combine, **options), out, resume, overwrite, "+".join(parts))


def given_only(config):
    """For --resume: the options given on the command line (each is checked against
    the run's configuration), the epochs and the device (which a resume may change)."""
    ctx = click.get_current_context()
    return {k: v for k, v in config.items() if k in ("epochs", "device") or ctx.get_parameter_source(k)
            in (click.core.ParameterSource.COMMANDLINE, click.core.ParameterSource.ENVIRONMENT)}


def refuse_existing(path, overwrite):
    """Nothing replaced unasked (nor a read-only file even when asked)."""
    if os.path.exists(path) and not overwrite:
        fail(f"{path} exists; --overwrite replaces it")
    if os.path.exists(path) and not os.access(path, os.W_OK):
        fail(f"{path} is read-only; make it writable to replace it")


def run_and_report(config, out, resume, overwrite, label):
    """Train (or distil) with a progress bar, then save and print the test table."""
    from .tools.evaluate import format_table, save_results
    from .tools.train import train as run_training
    config, result = run_training(given_only(config) if resume else config, out, resume, echo=click.echo,
                                  progressbar=progressbar, overwrite=overwrite)
    if result is None:
        click.echo(f"{config['data']} has no 3D poses (2D only): nothing evaluated; lift with "
                   f"`python cli.py lift {out} --input ...`")
        return
    save_results(out, result, data=config["data"])
    click.echo(f"\nTest split, mm and % ({os.path.join(out, 'evaluation.csv')}):")
    click.echo(format_table({f"{label} {m}": result[m] for m in result}))


@main.command()
@click.argument("teacher", type=click.Path())
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Run folder of the student.")
@click.option("--width", default=None, type=click.IntRange(8, 8192),
              help="Student width [default: the teachers' width].")
@click.option("--blocks", default=None, type=click.IntRange(1, 6),
              help="Student residual blocks [default: the teachers'].")
@click.option("--epochs", default=20, show_default=True, type=click.IntRange(min=1))
@options(*RECIPE)
@click.option("--seed", default=0, show_default=True, type=int)
@click.option("--resume", is_flag=True, help="Continue the student in --out from its checkpoint "
                                              "(any other option given must agree with the run's).")
@click.option("--overwrite", is_flag=True, help="Start over in an --out that holds a run (deleting it).")
def distill(teacher, out, width, blocks, resume, overwrite, **options):
    """Distil trained generators into the single TIPS generator on the full 2D pose.

    TEACHER is a run folder or checkpoint of `train` (runs/torso+legs, say); the
    student matches its depths by mean squared error (TIPS eq. 7)."""
    from .io.checkpoint import load
    t_config = load(teacher)["config"]
    config = dict(parts=["full"], combine=False, match_params=False, teacher=teacher,
                  width=width or t_config["width"], blocks=blocks or t_config["blocks"],
                  activation=t_config["activation"], data=options.pop("data") or t_config.get("data"),
                  **options)
    run_and_report(config, out, resume, overwrite, "student")


@main.command()
@click.argument("run", type=click.Path())
@click.option("--out", required=True, type=click.Path(dir_okay=False),
              help="Model file to write (the shipped one is data/tips_student.h5).")
@click.option("--overwrite", is_flag=True, help="Replace --out if it exists.")
def export(run, out, overwrite):
    """Write a run's generator alone (weights, batch-norm statistics and
    configuration, float32; no optimiser or discriminator): a small file that
    lift and evaluate take like a run."""
    from .io.checkpoint import export as export_model
    refuse_existing(out, overwrite)
    n = export_model(run, out)
    click.echo(f"wrote {out}: {n:,} parameters, {os.path.getsize(out) / 1e6:.2f} MB")


@main.command()
@click.argument("model", type=click.Path())
@click.option("--layout", type=click.Choice(["mpii", "noise"]), default=None,
              help="mpii: a detector's MPII keypoints (the data's Stacked Hourglass detections) against the "
                   "projections; noise: the projections with Gaussian noise against themselves.")
@click.option("--lifter", is_flag=True,
              help="Instead of an adapter: fine-tune MODEL's lifter (which holds both adapters) on the poses "
                   "its adapters give, by distillation from itself on the clean projections (no 3D label).")
@click.option("--data", type=click.Path(dir_okay=False), required=True,
              help="Prepared file (prepare-data; for mpii, of a Human3.6M tree with StackedHourglass folders).")
@click.option("--val-subject", default="8", show_default=True, type=click.Choice(["1", "5", "6", "7", "8"]),
              help="The training subject held out: its adapted poses are lifted and scored after every "
                   "epoch, and the best epoch is kept.")
@click.option("--epochs", default=None, type=click.IntRange(min=1),
              help="[default: 8 for an adapter, 1 for --lifter]")
@click.option("--width", default=128, show_default=True, type=click.IntRange(8, 4096))
@click.option("--blocks", default=2, show_default=True, type=click.IntRange(1, 6))
@click.option("--sigma", default=20.0, show_default=True, type=Finite(min=0, min_open=True),
              help="noise: the largest noise (pixels); each pose draws its sigma in [0, this].")
@click.option("--seed", default=0, show_default=True, type=int)
@click.option("--out", required=True, type=click.Path(dir_okay=False),
              help="The lifter with the adapter added (MODEL's other adapters kept).")
@click.option("--overwrite", is_flag=True, help="Replace --out if it exists.")
def adapt(model, layout, lifter, data, val_subject, epochs, width, blocks, sigma, seed, out, overwrite):
    """Fit a 2D adapter for MODEL (a lifter: `export`'s file, or data/tips_student.h5):
    a network that moves a detector's 2D poses (or noisy ones) towards the projections
    the lifter knows, trained on pairs of 2D poses only (docs/results.md, "Detector
    keypoints"); `lift` applies it to that layout's input. Or, with --lifter, fine-tune
    the lifter on what its adapters give."""
    from .tools.fit_adapter import fit, fit_student
    if (layout is None) == (not lifter):
        fail("give one of --layout (fit an adapter) and --lifter (fine-tune the lifter on its adapters' poses)")
    refuse_existing(out, overwrite)
    if lifter:
        fit_student(model, data, out, int(val_subject), epochs or 1, sigma_max=sigma, seed=seed, echo=click.echo,
                    progressbar=progressbar)
    else:
        fit(model, layout, data, out, int(val_subject), epochs or 8, width, blocks, sigma_max=sigma, seed=seed,
            echo=click.echo, progressbar=progressbar)


@main.command()
@click.argument("model", type=click.Path(), required=False)
@click.option("--input", "input_path", required=True, type=click.Path(),
              help="2D poses in pixels: .json, .csv or .npy of Human3.6M's joints, or a detector's file "
                   "(OpenPose, AlphaPose, MMPose, COCO, VideoPose3D .npz, Stacked Hourglass .h5) or a folder "
                   "of OpenPose's per-frame .json files (see docs/formats.md).")
@click.option("--output", "output_path", required=True, type=click.Path(dir_okay=False),
              help="3D poses with each pose's frame, person and flags: .json, .csv or .npy "
                   "(ids and flags then in <name>.ids.json).")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="auto", show_default=True,
              help="The input's layout (auto: recognised from the file; where a shape fits two "
                   "layouts and their geometry does not decide, lift says which to give).")
@click.option("--min-score", default=0.3, show_default=True, type=click.FloatRange(0, 1),
              help="Detector keypoints scored lower are unseen.")
@click.option("--max-gap", default=5, show_default=True, type=click.IntRange(0),
              help="Fill a joint missing for at most this many frames within one person's track "
                   "(linearly in time; never at a track's ends, never across images).")
@click.option("--strict", is_flag=True,
              help="Refuse a file with any pose missing a joint, instead of skipping that pose.")
@click.option("--plot", type=click.Path(dir_okay=False), default=None,
              help="Draw one pose (.png) or one person's sequence (.gif), 2D beside 3D.")
@click.option("--plot-frame", default=None, help="The frame --plot draws (the output's frame id).")
@click.option("--plot-person", default=None,
              help="The person --plot draws (default: the first pose with no filled joint).")
@click.option("--every", default=1, show_default=True, type=click.IntRange(1),
              help="A .gif draws every K-th pose of the person's sequence.")
@click.option("--per-pose-sign", is_flag=True,
              help="Negate the legs' or the torso's depths of each pose that fails that part's "
                   "handedness test (see docs/walkthrough.md, section 11).")
@click.option("--adapter", default="auto", show_default=True,
              help="The lifter's 2D adapter (`adapt`): auto moves MPII keypoints (Stacked Hourglass) by "
                   "A/mpii and any other detector's by A/noise, where the lifter has them, and lifts "
                   "Human3.6M-ordered poses as given; none; or an adapter's name (mpii, noise).")
@options(*TEST_TIME)
@DEVICE
def lift(model, input_path, output_path, fmt, min_score, max_gap, strict, plot, plot_frame, plot_person, every,
         per_pose_sign, adapter, smooth, mirror_average, device):
    """Lift 2D poses to 3D with a trained model (a run folder or checkpoint of train
    or distill; without one, the pretrained TIPS student data/tips_student.h5):
    Human3.6M's 17 joints, or a 2D detector's keypoints. People are kept apart
    (the file's track ids, else a small tracker); a pose missing a joint that
    cannot be filled is skipped with a warning; every pose carries flags. A
    detector's keypoints first pass the lifter's 2D adapter (--adapter).
    Human3.6M-ordered .npy and .csv files of any size are read, lifted and written
    in chunks, in flat memory (without --plot or --smooth)."""
    from .backend import use_device
    from .io.checkpoint import PRETRAINED, load, load_model
    from .io.lifting import (SHOWN, check_output, lift_poses, lift_stream, open_stream, plot_rows, pose_flags,
                             read_poses, summary, write_poses)
    from .io.smoothing import smooth_tracks
    from .method.adapter import choose_adapter, suited
    from .tools.draw import NO_PLOT, plot_lifted
    from .tools.fit_adapter import load_adapters
    check_output(input_path, output_path)
    stream = None if plot or smooth else open_stream(input_path, fmt, min_score)  # Human3.6M .npy/.csv: in chunks
    poses = stream or read_poses(input_path, fmt, min_score, max_gap, strict)
    if smooth and not poses.video:
        fail(f"{input_path}: --smooth smooths a video's tracks over time, and this file holds single images "
             f"(unrelated frames): leave out --smooth")
    for line in poses.notes:
        click.echo(f"{input_path}: {line}")
    for line in poses.skipped[:SHOWN]:
        click.echo(f"warning: skipped {line}", err=True)
    if len(poses.skipped) > SHOWN:
        click.echo(f"warning: ... and {len(poses.skipped) - SHOWN} more pose(s) skipped", err=True)
    rows = plot_rows(poses, plot_frame, plot_person, bool(plot) and plot.lower().endswith(".gif")) if plot else None
    ckpt = load(model or PRETRAINED)
    xp = use_device(device)
    gen, params, state = load_model(ckpt, xp, click.echo)
    adapters = load_adapters(ckpt, xp)
    layout = choose_adapter(adapters, suited(poses.keypoints), adapter)
    if layout is not None:
        click.echo(f"{poses.keypoints} keypoints: the lifter's 2D adapter A/{layout} moves them towards the "
                   f"2D it was trained on (--adapter none lifts them as read)")
    if stream:
        click.echo(lift_stream(stream, output_path, lambda px: lift_poses(
            gen, params, state, px, per_pose_sign, ckpt["config"].get("perspective"), adapters.get(layout),
            mirror_average), progressbar=progressbar))
        return
    pose_px = poses.pixels
    if smooth:
        pose_px = smooth_tracks(pose_px, poses.person, poses.frame, smooth)
        click.echo(f"{input_path}: each person's 2D track smoothed over time (a Gaussian of {smooth:g} frames)")
    pose_3d, pixels = lift_poses(gen, params, state, pose_px, per_pose_sign, ckpt["config"].get("perspective"),
                                 adapters.get(layout), mirror_average)
    flags = pose_flags(poses, pose_3d)
    write_poses(output_path, poses, pose_3d, pixels, flags)
    click.echo(summary(poses, flags, input_path, output_path))
    if plot:
        rows = rows[::every]
        with click.progressbar(length=len(rows), label=f"drawing {plot}", file=sys.stderr) as bar:
            drawn = plot_lifted(plot, poses, pose_3d, os.path.basename(os.path.normpath(input_path)), rows,
                                lambda i, n: bar.update(1))
        click.echo(f"drawn: {plot}" if drawn else NO_PLOT)


@main.command()
@click.argument("runs", nargs=-1, required=True, type=click.Path())
@click.option("--per-pose-sign", is_flag=True,
              help="Negate the legs' or the torso's depths of each pose that fails that part's "
                   "handedness test before scoring (see docs/walkthrough.md, section 11).")
@DATA
@DEVICE
@click.option("--overwrite", is_flag=True, help="Replace result files that were computed on other data.")
@click.option("--inputs", type=click.Choice(["projections", "detections", "orthographic"]), default="projections",
              show_default=True, help="The 2D lifted: the projections of the 3D joints; a detector's keypoints "
                                      "of the same frames (prepare-data's pose_2d_det; training subjects only: "
                                      "give --subject); or the x, y of the camera-frame 3D pose (the TIPS "
                                      "authors' protocol, with 'reflection allowed').")
@click.option("--noise", default=0.0, show_default=True, type=Finite(min=0),
              help="Add Gaussian noise of this many pixels to the 2D (drawn from --seed).")
@click.option("--seed", default=0, show_default=True, type=int, help="The noise's seed.")
@click.option("--subject", default=None, type=click.Choice(["1", "5", "6", "7", "8"]),
              callback=lambda ctx, param, value: None if value is None else int(value),
              help="Score every 10th pose of this training subject instead of the test split (a subject "
                   "held out with --val-subject: its detections exist, the test subjects' do not).")
@click.option("--adapter", default="auto", show_default=True,
              help="The model's 2D adapter to apply (adapt): auto takes mpii for --inputs detections and "
                   "noise for --noise, where the model has them; none; or a layout's name.")
@options(*TEST_TIME)
def evaluate(runs, per_pose_sign, data, device, overwrite, inputs, noise, seed, subject, adapter, smooth,
             mirror_average):
    """P-MPJPE (strict and reflection allowed), N-MPJPE, PCK3D and AUC per action
    on the test split for one or more trained models (run folders or checkpoint
    files), side by side, beside the floor of the 2D given (its x, y with the true
    depths: what no lifter that keeps them can beat) and z = 0. --data takes any file
    in the prepared layout. The tables are written beside each model:
    evaluation.json/.csv on the data it trained on, evaluation.<data file's
    name>.json/.csv on other data (each JSON records its file), with the input's
    variant in the name (evaluation.S8.detections.json, evaluation.noise10-seed0.json)."""
    from .backend import use_device
    from .tools.evaluate import evaluate_runs, format_table
    click.echo(format_table(evaluate_runs(runs, data, use_device(device), per_pose_sign, click.echo, overwrite,
                                          inputs, noise, seed, subject, adapter, smooth, mirror_average)))


@main.group()
def study():
    """The papers' studies: stability across seeds, keypoint correlations."""


@study.command()
@click.option("--parts", "representations", multiple=True, required=True, callback=parse_parts_list,
              help="A representation to train (repeat: --parts full --parts torso,legs).")
@click.option("--seeds", default=5, show_default=True, type=click.IntRange(min=2))
@click.option("--epochs", default=40, show_default=True, type=click.IntRange(min=1))
@click.option("--window", default=0.4, show_default=True, type=click.FloatRange(0, 1, min_open=True),
              help="Summarise the last fraction of training (the papers: epochs 400/500-800 of 800).")
@options(*ADVERSARIAL, *RECIPE)
@click.option("--out", default="runs/stability", show_default=True, type=click.Path(file_okay=False))
def stability(representations, seeds, epochs, window, out, **options):
    """Train each representation with seeds 0..SEEDS-1 (same data and budget) and
    summarise test P-MPJPE over epochs: the mean +- std curve, the last epoch,
    the last --window of training, and the best epoch; each also with the better
    depth sign per epoch, chosen by the test set's 3D poses (an oracle, labelled
    so). Finished runs are reused, unfinished ones resumed."""
    from .tools.draw import NO_PLOT
    from .tools.studies import format_stability, stability_study
    summaries, written = stability_study(representations, seeds, epochs, window, out, options,
                                         progressbar, click.echo)
    click.echo(f"\nTest P-MPJPE (mm), mean +- std over {seeds} seeds:\n{format_stability(summaries)}")
    click.echo("\n".join(f"written: {path}" for path in written) + ("" if len(written) > 1 else "\n" + NO_PLOT))


@study.command()
@click.argument("runs", nargs=-1, required=True, type=click.Path(file_okay=False))
@click.option("--out", default=None, type=click.Path(dir_okay=False),
              help="Draw the curves into this .png (needs the plot extra).")
def curves(runs, out):
    """Compare runs trained with --val-subject at equal CPU time: each run's
    validation P-MPJPE after 5, 10, 20, 30, 60 and 120 minutes of training (the
    last validation before; '-' where the run was shorter), its last and its
    best; --out draws the curves."""
    from .tools.draw import NO_PLOT, plotting
    from .tools.studies import format_curves, plot_curves, read_curves
    found = read_curves(runs)
    click.echo(format_curves(found))
    if out:
        if plotting() is None:
            fail(NO_PLOT)
        plot_curves(out, found)
        click.echo(f"written: {out}")


@study.command()
@click.argument("model", type=click.Path())
@click.option("--pair", default="left_elbow,right_ankle", show_default=True,
              help="Moved keypoint and depth whose curves are drawn (the paper's Fig. 2).")
@click.option("--poses", default=2000, show_default=True, type=click.IntRange(min=1),
              help="Test poses to perturb (a seeded random subset; the paper uses all).")
@DATA
@DEVICE
@click.option("--out", default=None, type=click.Path(file_okay=False),
              help="Folder for the CSV and plot [default: the model's run folder].")
def correlations(model, pair, poses, data, device, out):
    """Scale each 2D keypoint of the test poses, one at a time, from -95% to
    +105% in 1% steps, and report how much every predicted depth moves: the 16x16
    sensitivity matrix (representations paper, section 5)."""
    from .backend import use_device
    from .tools.draw import NO_PLOT
    from .tools.studies import KEYPOINT_NAMES as names
    from .tools.studies import correlation_study
    moved, depth = (p.strip() for p in (pair.split(",") + [""])[:2])
    if moved not in names or depth not in names:
        fail(f"--pair: expected two keypoints of {', '.join(names)}; got {pair!r}")
    with click.progressbar(length=len(names), label="perturbing each keypoint in turn", file=sys.stderr) as bar:
        matrix, written = correlation_study(model, (moved, depth), poses, data, use_device(device), out,
                                            bar.update, click.echo)
    click.echo("\n".join(f"written: {path}" for path in written) + ("" if len(written) > 2 else "\n" + NO_PLOT))
    i, j = names.index(moved), names.index(depth)
    click.echo(f"moving the {moved} keypoint changes the depth of {depth} by {matrix[i, j]:.4f} "
               f"and its own depth by {matrix[i, i]:.4f} on average (normalised units)")


@main.command()
@DEVICE
@click.option("--parts", default="torso,legs", show_default=True, callback=parse_parts_option)
@click.option("--width", default=1024, show_default=True, type=click.IntRange(8, 8192))
@click.option("--blocks", default=4, show_default=True, type=click.IntRange(1, 6))
@click.option("--batch", default=1024, show_default=True, type=click.IntRange(min=2))
@click.option("--steps", default=5, show_default=True, type=click.IntRange(min=1), help="Timed steps.")
@click.option("--warmup", default=2, show_default=True, type=click.IntRange(min=0))
@click.option("--instrumented", default=5, show_default=True, type=click.IntRange(min=1),
              help="Further steps with every matrix product timed (the share's median and range).")
@click.option("--w-inf", default=0.0, show_default=True, type=click.FloatRange(min=0),
              help="Time the step with the all-angle consistency (any weight > 0).")
@click.option("--out", default="bench.json", show_default=True, type=click.Path(dir_okay=False),
              help="JSON file for the figures.")
@click.option("--cores", "use_cores", type=click.Choice(["groups", "turns", "products"]), default=None,
              help="How a CPU step uses the cores: each generator group on its own core ('groups'), the groups "
                   "in turn on one core ('turns', the same numbers) or every product on all cores ('products'); "
                   "default: each way train chooses from, timed (tips_np/tools/machine.py).")
def bench(device, parts, width, blocks, batch, steps, warmup, instrumented, w_inf, out, use_cores):
    """Time whole adversarial training steps (both networks, all losses) and
    report step time, poses/s, the share of time in matrix products, achieved
    GFLOP/s against the device's plain matrix product, and peak memory."""
    from .tools.bench import bench as run_bench
    from .tools.bench import format_report, write_report
    report = run_bench(device, parts, width, blocks, batch, steps, warmup, echo=click.echo, w_inf=w_inf,
                       instrumented=instrumented, use_cores=use_cores)
    write_report(out, report)
    click.echo(format_report(report) + f"\nwritten to {out}")


@main.command("first-gpu-run")
@click.option("--data", type=click.Path(dir_okay=False), default="data/h36m_full.h5", show_default=True,
              help="Prepared file for the paper-scale epoch (python cli.py prepare-data --h36m ...).")
@click.option("--out", default="gpu_report.json", show_default=True, type=click.Path(dir_okay=False))
@click.option("--run", default="runs/first-gpu-epoch", show_default=True, type=click.Path(file_okay=False))
def first_gpu_run(data, out, run):
    """On a machine with a GPU: the kernel tests, one training step on CuPy
    against NumPy, bench at width 1024 / 4 blocks / batch 8192, and one epoch at
    that scale, in one JSON report."""
    from .tools.bench import first_gpu_run as run_all
    from .tools.bench import write_report
    report = run_all(data, run, click.echo)
    write_report(out, report)
    failed = [name for name, r in report.items() if "error" in r or r.get("exit_code")]
    click.echo(f"written to {out}" + (f"; failed: {', '.join(failed)}" if failed else "; every stage ran"))


@main.command()
@click.option("--seed", default=0, show_default=True, type=int, help="Seed of the random inputs and weights.")
def gradcheck(seed):
    """Check every hand-written backward pass against central differences in
    float64 and print, for each layer, the forward mode, the geometry, each loss
    and the whole training step's objectives, the largest relative error of the
    analytic gradient a against the numerical n: |a - n| / (|a| + |n|), in norms.
    A few seconds; exit status 1 if any is above 1e-6."""
    from .tools.gradcheck_table import BOUND, format_table, gradcheck_table
    rows = gradcheck_table(seed, progress=lambda section: click.echo(f"checked: {section}", err=True))
    click.echo(format_table(rows))
    above = [f"{r.section}: {r.name}" for r in rows if not r.planted and not r.error < BOUND]
    if above:
        fail(f"relative error above {BOUND:g}: {'; '.join(above)}")
    click.echo(f"every backward within {BOUND:g} of central differences (a wrong one: about 1e-2 to 1, "
               "as the planted bug shows)")


if __name__ == "__main__":
    main()
