"""The command line: prepare data, train, distil, evaluate, lift, study, bench.
It parses options and prints results; the work lives in the modules it calls,
imported when a command runs (so --help stays quick)."""
import os
import sys

import click

from . import skeleton
from .cycle import PERSPECTIVE_MIN
from .errors import TipsError
from .keypoints import FORMATS


def fail(message):
    """One line on stderr, exit status 1, no traceback."""
    click.echo(f"error: {message}", err=True)
    sys.exit(1)


class Commands(click.Group):
    """Every command's user-fixable failures (errors.TipsError) end in one line."""

    def invoke(self, ctx):
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


def parse_parts_list(ctx, param, value):
    return [parse_parts_option(ctx, param, v) for v in value]


DATA = click.option("--data", type=click.Path(dir_okay=False), default=None,
                    help="Prepared HDF5 file [default: the shipped sample data/h36m_sample.h5].")
DEVICE = click.option("--device", type=click.Choice(["cpu", "cuda"]), default="cpu", show_default=True,
                      help="cpu runs on NumPy; cuda on CuPy (pip install -e '.[gpu]').")
# the recipe of every training loop (train, distill, study stability)
RECIPE = [
    click.option("--recipe", type=click.Choice(["cpu", "paper"]), default="cpu", show_default=True,
                 help="cpu: the recipe that learned most per CPU second (README, 'Accuracy per CPU hour'); "
                      "paper: the papers' weights and optimiser. Options given explicitly override it."),
    click.option("--batch-size", default=256, show_default=True, type=click.IntRange(min=2),
                 help="Poses per step (papers: 8192)."),
    click.option("--lr", default=None, type=click.FloatRange(min=0, min_open=True),
                 help="Adam's learning rate [default: the recipe's; papers: 2e-4]."),
    click.option("--dropout", default=0.0, show_default=True, type=click.FloatRange(0, 1, max_open=True),
                 help="Dropout after every hidden unit of the generators (the TIPS authors' code: 0.5)."),
    click.option("--lr-schedule", type=click.Choice(["constant", "cosine"]), default=None,
                 help="constant (papers), or cosine from --lr down to 1% of it over the run's epochs "
                      "[default: the recipe's]."),
    click.option("--eval-every", default=1, show_default=True, type=click.IntRange(min=1),
                 help="Evaluate on the test split every k epochs (and after the last)."),
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
                      "README 'Accuracy per CPU hour')."),
    click.option("--blocks", default=2, show_default=True, type=click.IntRange(1, 6),
                 help="Residual blocks per generator; the discriminator has one fewer (papers: 4)."),
    click.option("--betas", default=(0.9, 0.999), show_default=True, nargs=2,
                 type=click.FloatRange(0, 1, max_open=True), help="Adam's betas (the papers do not say)."),
    click.option("--gan", type=click.Choice(["bce", "lsgan"]), default="bce", show_default=True,
                 help="Adversarial loss: bce (TIPS eq. 6) or lsgan (representations paper eq. 6)."),
    click.option("--azimuth", default=180.0, show_default=True, type=click.FloatRange(0, 180),
                 help="Random azimuths are drawn in [-a, a] degrees (TIPS 180; representations paper 160)."),
    click.option("--perspective", default=None, type=click.FloatRange(min=0), callback=check_perspective,
                 help="Take the 2D poses as pinhole views from a camera this many normalised units in "
                      "front of the root: the cycle unprojects them at the lifted depths and projects the "
                      f"synthetic views in perspective (Human3.6M: about 5.5; more than {PERSPECTIVE_MIN:.3f}, "
                      "the nearest a turned joint can come); 0 is orthographic, as the papers "
                      "[default: the recipe's; cpu 5.5]."),
    click.option("--activation", type=click.Choice(["relu", "leaky_relu"]), default="relu", show_default=True,
                 help="Hidden activation of the generators (the discriminator uses leaky_relu)."),
    click.option("--w-90", default=3.0, show_default=True, type=click.FloatRange(min=0),
                 help="Weight of the 90-degree consistency (TIPS eqs. 3-5); 0 leaves it out."),
    click.option("--w-inf", default=0.0, show_default=True, type=click.FloatRange(min=0),
                 help="Weight of the all-angle consistency of TIPS's appendix A.3 (forward-mode "
                      "derivatives); 0, the papers' method, leaves it out."),
    click.option("--adv-scale", default=None, type=click.FloatRange(min=0),
                 help="Multiply TIPS's adversarial weights (torso 0.08, legs 0.05) by this "
                      "[default: the recipe's; papers: 1]."),
    click.option("--real-label", default=None, type=click.FloatRange(0, 1, min_open=True),
                 help="The discriminator's target for real poses [default: the recipe's; papers: 1; "
                      "0.8 smooths it]."),
    click.option("--view-pitch", default=None, type=click.FloatRange(-45, 45),
                 help="Turn the synthetic views about the body's vertical axis as a camera looking down "
                      "this many degrees sees it (Human3.6M's cameras: about 12), not about the camera's "
                      "[default: the recipe's; papers: 0, the camera's axis]."),
    click.option("--weigh-facing", default=0.0, show_default=True, type=click.FloatRange(0, 1),
                 help="Weigh the discriminator's terms of the synthetic views by how often real poses "
                      "face that way, at this strength: real poses face the camera mostly from the front "
                      "or back, views turned by --azimuth 180 every way (0: not weighed, as in the papers; "
                      "1: the full-data hour's runs, README 'Accuracy per CPU hour')."),
    click.option("--d-lr-scale", default=None, type=click.FloatRange(min=0, min_open=True),
                 help="The discriminator's learning rate as a multiple of --lr [default: the recipe's; "
                      "papers: 1]."),
    click.option("--d-every", default=None, type=click.IntRange(min=1),
                 help="Update the discriminator on one step in k (the generators on every step) "
                      "[default: the recipe's; papers: 1]."),
]


def progressbar(length, label):
    """click's bar; the text after it shows the running losses."""
    return click.progressbar(length=length, label=label, file=sys.stderr, item_show_func=lambda text: text)


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

    from .h36m import list_sequences, prepare
    try:
        subject_list = [int(s) for s in subjects.split(",") if s.strip()]
    except ValueError:
        fail(f"--subjects: expected comma-separated subject numbers, got {subjects!r}")
    bad = [s for s in subject_list if s not in skeleton.SUBJECTS]
    if bad:
        fail(f"--subjects: unknown subject {bad[0]} (Human3.6M has {skeleton.SUBJECTS})")
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    start = time.time()
    n_seq = len(list_sequences(root, subject_list))
    with click.progressbar(length=n_seq, label="sequences") as bar:
        n = prepare(root, out, every, subject_list, distortion, progress=bar.update)
    click.echo(f"wrote {n} 2D/3D pose pairs from {n_seq} sequences x 4 cameras to {out} "
               f"({os.path.getsize(out) / 1e6:.1f} MB, {time.time() - start:.1f} s)")


@main.command()
@click.option("--parts", default="torso,legs", show_default=True, callback=parse_parts_option,
              help="The 2D pose representation: full, torso,legs (TIPS) or larm,rarm,torso,lleg,rleg.")
@options(*ADVERSARIAL)
@click.option("--epochs", default=40, show_default=True, type=click.IntRange(min=1))
@options(*RECIPE)
@click.option("--seed", default=0, show_default=True, type=int)
@click.option("--out", type=click.Path(file_okay=False), default=None,
              help="Run folder for checkpoint.h5, log.csv and evaluation files [default: runs/<parts>].")
@click.option("--resume", is_flag=True, help="Continue the run in --out from its checkpoint, up to --epochs.")
def train(parts, combine, out, resume, **options):
    """Train generators of one 2D pose representation adversarially, with
    reprojection and 90-degree consistency, decide their depth sign by anatomy
    after every epoch, and evaluate them on the test split."""
    out = out or os.path.join("runs", "+".join(parts) + ("-combine" if combine else ""))
    options["betas"] = list(options["betas"])
    run_and_report(dict(parts=parts, combine=combine, **options), out, resume, "+".join(parts))


def run_and_report(config, out, resume, label):
    """Train (or distil) with a progress bar, then save and print the test table."""
    from .evaluate import format_table, save_results
    from .train import train as run_training
    _, result = run_training(config, out, resume, echo=click.echo, progressbar=progressbar)
    save_results(out, result)
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
@click.option("--resume", is_flag=True, help="Continue the student in --out from its checkpoint.")
def distill(teacher, out, width, blocks, resume, **options):
    """Distil trained generators into the single TIPS generator on the full 2D pose.

    TEACHER is a run folder or checkpoint of `train` (runs/torso+legs, say); the
    student matches its depths by mean squared error (TIPS eq. 7)."""
    from .checkpoint import load
    t_config = load(teacher)["config"]
    config = dict(parts=["full"], combine=False, match_params=False, teacher=teacher,
                  width=width or t_config["width"], blocks=blocks or t_config["blocks"],
                  activation=t_config["activation"], data=options.pop("data") or t_config.get("data"),
                  **options)
    run_and_report(config, out, resume, "student")


@main.command()
@click.argument("run", type=click.Path())
@click.option("--out", required=True, type=click.Path(dir_okay=False),
              help="Model file to write (the shipped one is data/tips_student.h5).")
def export(run, out):
    """Write a run's generator alone (weights, batch-norm statistics and
    configuration, float32; no optimiser or discriminator): a small file that
    lift and evaluate take like a run."""
    from .checkpoint import export as export_model
    n = export_model(run, out)
    click.echo(f"wrote {out}: {n:,} parameters, {os.path.getsize(out) / 1e6:.2f} MB")


@main.command()
@click.argument("model", type=click.Path(), required=False)
@click.option("--input", "input_path", required=True, type=click.Path(dir_okay=False),
              help="2D poses in pixels: .json, .csv or .npy (see README, 'Lifting your own poses').")
@click.option("--output", "output_path", required=True, type=click.Path(dir_okay=False),
              help="3D poses: .json, .csv or .npy.")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="auto", show_default=True,
              help="The input's layout: Human3.6M's 17 joints, or a detector's COCO-17 keypoints "
                   "(auto: recognised from the file; COCO-17 arrays without scores need coco17).")
@click.option("--min-score", default=0.3, show_default=True, type=click.FloatRange(0, 1),
              help="Detector keypoints scored lower are missing (filled over time within a sequence).")
@click.option("--plot", type=click.Path(dir_okay=False), default=None,
              help="Draw the first pose (.png) or the first person's sequence (.gif), 2D beside 3D.")
@click.option("--per-pose-sign", is_flag=True,
              help="Negate the legs' or the torso's depths of each pose that fails that part's "
                   "handedness test (see README, 'The depth sign').")
@DEVICE
def lift(model, input_path, output_path, fmt, min_score, plot, per_pose_sign, device):
    """Lift 2D poses to 3D with a trained model (a run folder or checkpoint of train
    or distill; without one, the pretrained TIPS student data/tips_student.h5):
    Human3.6M's 17 joints, or a 2D detector's keypoints (COCO-17, MMPose, COCO
    results, OpenPose, AlphaPose)."""
    from .backend import use_device
    from .checkpoint import PRETRAINED, load, load_model
    from .draw import NO_PLOT, plot_lifted
    from .lifting import lift_poses, read_poses, write_poses
    poses = read_poses(input_path, fmt, min_score)
    ckpt = load(model or PRETRAINED)
    gen, params, state = load_model(ckpt, use_device(device), click.echo)
    pose_3d, pixels = lift_poses(gen, params, state, poses.pixels, per_pose_sign, ckpt["config"].get("perspective"))
    write_poses(output_path, poses, pose_3d, pixels)
    filled = int(poses.filled.any(axis=1).sum())
    click.echo(f"lifted {len(pixels)} pose(s) from {input_path} to {output_path}"
               + (f" ({filled} with joints filled over time)" if filled else ""))
    if plot:
        click.echo(f"drawn: {plot}" if plot_lifted(plot, poses, pose_3d, input_path) else NO_PLOT)


@main.command()
@click.argument("runs", nargs=-1, required=True, type=click.Path())
@click.option("--per-pose-sign", is_flag=True,
              help="Negate the legs' or the torso's depths of each pose that fails that part's "
                   "handedness test before scoring (see README, 'The depth sign').")
@DATA
@DEVICE
def evaluate(runs, per_pose_sign, data, device):
    """P-MPJPE (strict and reflection allowed), N-MPJPE, PCK3D and AUC per action
    on the test split for one or more trained models (run folders or checkpoint
    files), side by side. --data takes any file in the prepared layout."""
    from .backend import use_device
    from .evaluate import evaluate_runs, format_table
    click.echo(format_table(evaluate_runs(runs, data, use_device(device), per_pose_sign, click.echo)))


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
    from .draw import NO_PLOT
    from .studies import format_stability, stability_study
    options["betas"] = list(options["betas"])
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
    from .draw import NO_PLOT, plotting
    from .studies import format_curves, plot_curves, read_curves
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
    from .draw import NO_PLOT
    from .studies import correlation_study
    names = skeleton.JOINTS[1:]
    moved, depth = (p.strip() for p in (pair.split(",") + [""])[:2])
    if moved not in names or depth not in names:
        fail(f"--pair: expected two keypoints of {', '.join(names)}; got {pair!r}")
    with click.progressbar(length=16, label="perturbing each keypoint in turn", file=sys.stderr) as bar:
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
@click.option("--cores", "use_cores", type=click.Choice(["groups", "products"]), default=None,
              help="How a CPU step uses the cores: each generator group on its own core ('groups') or every "
                   "product on all cores ('products'); default: as train decides (tips_np/cores.py).")
def bench(device, parts, width, blocks, batch, steps, warmup, instrumented, w_inf, out, use_cores):
    """Time whole adversarial training steps (both networks, all losses) and
    report step time, poses/s, the share of time in matrix products, achieved
    GFLOP/s against the device's plain matrix product, and peak memory."""
    from .bench import bench as run_bench
    from .bench import format_report, write_report
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
    from .bench import first_gpu_run as run_all
    from .bench import write_report
    report = run_all(data, run, click.echo)
    write_report(out, report)
    failed = [name for name, r in report.items() if "error" in r or r.get("exit_code")]
    click.echo(f"written to {out}" + (f"; failed: {', '.join(failed)}" if failed else "; every stage ran"))


if __name__ == "__main__":
    main()
