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


if __name__ == "__main__":
    main()
