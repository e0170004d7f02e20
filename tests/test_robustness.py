"""Nothing lost, nothing half-said (issue 33): no file replaced unasked, resumes that
refuse options they cannot honour, options checked at the door, and a read-only
place, a full disk, a missing folder or a damaged file answered in one line.

Read-only folders and full disks are simulated without root: a folder's mode is
set read-only (which root ignores) and, as the kernel would, every file opened
for writing under it is refused; a full disk refuses writes with ENOSPC, and
`ulimit -f` limits a subprocess's files."""
import builtins
import contextlib
import errno
import importlib
import json
import os
import shutil
import subprocess
import sys

import h5py
import numpy as np
import pytest
from click.testing import CliRunner

from tips_np.cli import main
from tips_np.io import checkpoint

from test_data import _swap_yz, _tiny_tree

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SMALL = ["--width", "16", "--blocks", "1", "--recipe", "paper"]


def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def one_line_error(r, *words):
    """Exit status 1, one line 'error: ...' holding each of `words`, no traceback."""
    assert r.exit_code == 1 and isinstance(r.exception, SystemExit), (r.output, r.exception)
    lines = r.output.strip().splitlines()
    assert lines[-1].startswith("error: ") and "Traceback" not in r.output, r.output
    assert all(w in lines[-1] for w in words), (words, lines[-1])
    return lines[-1]


def snapshot(folder):
    """Every file of a folder and its bytes."""
    return {n: open(os.path.join(folder, n), "rb").read() for n in sorted(os.listdir(folder))}


@pytest.fixture(scope="module")
def run(tmp_path_factory, tiny_data):
    """A one-epoch run at width 16 (copy it before changing it)."""
    path = str(tmp_path_factory.mktemp("robust") / "run")
    r = invoke("train", *SMALL, "--epochs", 1, "--data", tiny_data, "--out", path)
    assert r.exit_code == 0, r.output
    return path


@pytest.fixture
def copy_of(tmp_path):
    def make(src, name="copy"):
        dst = str(tmp_path / name)
        shutil.copytree(src, dst)
        return dst
    return make


def _refusing_writes(monkeypatch, folders, error):
    """Every file opened for writing under one of `folders` gets `error(path)` (raised
    on opening, or by its first write when error is ENOSPC, as a full disk does)."""
    real_open, real_os_open = builtins.open, os.open

    def under(path):
        if not isinstance(path, (str, bytes, os.PathLike)):
            return False
        p = os.path.abspath(os.fsdecode(path))
        return any(p == f or p.startswith(f + os.sep) for f in folders)

    class Full:
        def __init__(self, f):
            self.f = f

        def write(self, data):
            raise error(self.f.name)

        def __getattr__(self, name):
            return getattr(self.f, name)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.f.close()

    def fake_open(file, mode="r", *args, **kwargs):
        if any(c in mode for c in "wax+") and under(file):
            if error(file).errno == errno.ENOSPC:
                return Full(real_open(file, mode, *args, **kwargs))
            raise error(file)
        return real_open(file, mode, *args, **kwargs)

    def fake_os_open(path, flags, *args, **kwargs):
        if flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT) and under(path) and error(path).errno != errno.ENOSPC:
            raise error(path)
        return real_os_open(path, flags, *args, **kwargs)
    monkeypatch.setattr(builtins, "open", fake_open)
    monkeypatch.setattr(os, "open", fake_os_open)


@pytest.fixture
def read_only(monkeypatch):
    folders = []
    _refusing_writes(monkeypatch, folders, lambda p: PermissionError(errno.EACCES, "Permission denied", p))

    def make(folder):
        folders.append(os.path.abspath(folder))
        os.chmod(folder, 0o555)
    yield make
    for f in folders:
        os.chmod(f, 0o755)


@pytest.fixture
def full_disk(monkeypatch):
    folders = []
    _refusing_writes(monkeypatch, folders, lambda p: OSError(errno.ENOSPC, "No space left on device", p))
    return lambda folder: folders.append(os.path.abspath(folder))


# --- train and distill: nothing overwritten unasked, resumes that mean what they say ----------------------

def test_train_into_a_run_refuses_unless_resume_or_overwrite(tiny_data, run, copy_of):
    run = copy_of(run)
    before = snapshot(run)
    r = invoke("train", *SMALL, "--epochs", 1, "--data", tiny_data, "--out", run)
    one_line_error(r, run, "already holds a run", "--resume", "--overwrite")
    assert snapshot(run) == before
    r = invoke("train", *SMALL, "--epochs", 1, "--data", tiny_data, "--out", run, "--resume", "--overwrite")
    one_line_error(r, "--resume", "--overwrite")
    with open(os.path.join(run, "evaluation.other.json"), "w") as f:
        f.write("{}")  # an evaluation of the run it replaces
    r = invoke("train", *SMALL, "--epochs", 1, "--data", tiny_data, "--out", run, "--overwrite", "--seed", 1)
    assert r.exit_code == 0, r.output
    assert checkpoint.load(run)["config"]["seed"] == 1 and not os.path.exists(os.path.join(run, "evaluation.other.json"))


def test_resume_refuses_options_that_differ_from_the_runs_naming_each(tiny_data, run, copy_of, tmp_path):
    run = copy_of(run)
    before = snapshot(run)
    other = str(tmp_path / "other.h5")
    shutil.copy(tiny_data, other)
    r = invoke("train", "--resume", "--out", run, "--epochs", 2, "--parts", "full", "--width", 32, "--data", other)
    line = one_line_error(r, "--parts full (the run's: torso,legs)", "--width 32 (the run's: 16)",
                          "--data", "--overwrite")
    assert "--epochs" not in line  # the epochs may change
    r = invoke("train", "--resume", "--out", run, "--epochs", 2, "--lr", 1e-3)
    one_line_error(r, "--lr 0.001 (the run's: 0.0002)")
    assert snapshot(run) == before
    r = invoke("train", "--resume", "--out", str(tmp_path / "empty"), "--epochs", 2)
    one_line_error(r, "no checkpoint.h5 to resume", "leave out --resume")
    # the options it was trained with, given again, are accepted (the same data by another path too)
    r = invoke("train", "--resume", "--out", run, "--epochs", 1, "--width", 16, "--recipe", "paper",
               "--data", os.path.relpath(tiny_data))
    assert r.exit_code == 0, r.output


def test_distill_refuses_a_run_folder_and_foreign_resume_options(run, copy_of):
    student = copy_of(run, "student")
    before = snapshot(student)
    one_line_error(invoke("distill", run, "--out", student, "--epochs", 1), "already holds a run", "--resume")
    one_line_error(invoke("distill", run, "--out", student, "--resume", "--width", 99), "--width 99 (the run's: 16)")
    assert snapshot(student) == before


@pytest.mark.parametrize("option,value", [("--lr", "nan"), ("--lr", "inf"), ("--d-lr-scale", "nan"),
                                          ("--dropout", "nan"), ("--w-90", "inf")])
def test_learning_rates_and_weights_must_be_finite(tmp_path, option, value):
    r = invoke("train", "--epochs", 1, "--out", tmp_path / "run", option, value)
    assert r.exit_code == 2 and option in r.output and "Traceback" not in r.output, r.output
    assert not os.path.exists(tmp_path / "run")


def test_the_python_interface_checks_learning_rates_too(tmp_path, tiny_data):
    from tips_np.tools.train import RunError, train
    for lr in (float("nan"), float("inf"), 0.0, -1.0):
        with pytest.raises(RunError, match="--lr"):
            train({"lr": lr, "data": tiny_data, "epochs": 1}, str(tmp_path / "run"), echo=lambda s: None)
    assert not os.path.exists(tmp_path / "run")


def test_a_batch_larger_than_the_training_set_is_refused(tmp_path, tiny_data):
    r = invoke("train", *SMALL, "--epochs", 1, "--data", tiny_data, "--batch-size", 10 ** 6, "--out", tmp_path / "run")
    one_line_error(r, "--batch-size 1000000", "training poses", "at most")
    assert not os.path.exists(tmp_path / "run")


def test_a_new_run_that_diverges_at_once_leaves_no_folder_and_names_no_checkpoint(tmp_path, tiny_data, monkeypatch):
    from tips_np.method import cycle
    real = cycle.reprojection_loss
    monkeypatch.setattr(cycle, "reprojection_loss", lambda *a: (real(*a)[0] * np.nan, real(*a)[1]))
    r = invoke("train", *SMALL, "--epochs", 1, "--data", tiny_data, "--out", tmp_path / "run")
    line = one_line_error(r, "diverged in epoch 1", "nothing kept")
    assert "checkpoint.h5" not in line and not os.path.exists(tmp_path / "run")


# --- train: read-only, full disk ------------------------------------------------------------------------

def test_train_into_a_read_only_folder_stops_before_training(tmp_path, tiny_data, read_only, monkeypatch):
    train_module = importlib.import_module("tips_np.tools.train")
    monkeypatch.setattr(train_module, "train_step", lambda *a: pytest.fail("trained into a read-only folder"))
    parent = tmp_path / "ro"
    parent.mkdir()
    read_only(parent)
    r = invoke("train", *SMALL, "--epochs", 1, "--data", tiny_data, "--out", parent / "run")
    one_line_error(r, str(parent / "run"), "cannot write")


def test_a_full_disk_leaves_the_previous_checkpoint_and_a_log_that_matches_it(run, copy_of, full_disk, tiny_data):
    run = copy_of(run)
    before = snapshot(run)
    full_disk(run)
    r = invoke("train", "--resume", "--out", run, "--epochs", 2)
    one_line_error(r, run, "No space left on device")
    assert snapshot(run) == before and checkpoint.load(run)["epoch"] == 1


def test_a_new_run_on_a_full_disk_leaves_nothing(tmp_path, tiny_data, monkeypatch):
    import collections
    monkeypatch.setattr(shutil, "disk_usage", lambda p: collections.namedtuple("u", "total used free")(10 ** 9, 10 ** 9, 1000))
    r = invoke("train", *SMALL, "--epochs", 1, "--data", tiny_data, "--out", tmp_path / "run")
    one_line_error(r, "checkpoint.h5", "are free on its disk")
    assert not os.path.exists(tmp_path / "run")


def test_a_run_stopped_between_its_checkpoint_and_its_log_resumes_with_the_log_whole(run, copy_of, monkeypatch):
    train_module = importlib.import_module("tips_np.tools.train")
    run = copy_of(run)
    real = train_module._appending_csv

    class Killed(Exception):
        pass

    def killed_after_the_checkpoint(path, row, key="epoch"):
        with real(path, row, key):
            yield
            raise Killed  # the log's new version is never renamed into place
    monkeypatch.setattr(train_module, "_appending_csv", contextlib.contextmanager(killed_after_the_checkpoint))
    with pytest.raises(Killed):
        train_module.train({"epochs": 2}, run, resume=True, echo=lambda s: None)
    assert checkpoint.load(run)["epoch"] == 2
    with open(os.path.join(run, "log.csv")) as f:
        assert [line.split(",")[0] for line in f.read().splitlines()[1:]] == ["1"]
    monkeypatch.setattr(train_module, "_appending_csv", real)
    train_module.train({"epochs": 2}, run, resume=True, echo=lambda s: None)  # nothing left to train
    with open(os.path.join(run, "log.csv")) as f:
        rows = f.read().splitlines()[1:]
    assert [row.split(",")[0] for row in rows] == ["1", "2"]


# --- checkpoints: checksums, non-finite weights ----------------------------------------------------------

def _damage_in_place(path, name):
    """Overwrite some bytes of dataset `name`'s data, keeping the file's size."""
    with h5py.File(path, "r") as f:
        offset, size = f[name].id.get_offset(), f[name].id.get_storage_size()
    size_before = os.path.getsize(path)
    with open(path, "r+b") as f:
        f.seek(offset + size // 2)
        f.write(b"\x7f" * 8)
    assert os.path.getsize(path) == size_before


def test_a_checkpoint_damaged_at_the_same_size_is_refused(run, copy_of):
    run = copy_of(run)
    path = os.path.join(run, "checkpoint.h5")
    checkpoint.load(path)  # whole, it loads
    _damage_in_place(path, "params/G/legs/fc_out/W")
    for command in (["evaluate", run], ["export", run, "--out", os.path.join(run, "m.h5")]):
        one_line_error(invoke(*command), path, "damaged checkpoint", "checksum")
    one_line_error(invoke("train", "--resume", "--out", run, "--epochs", 2), "damaged checkpoint")


def test_a_checkpoint_without_a_checksum_still_loads(run, copy_of):
    run = copy_of(run)
    path = os.path.join(run, "checkpoint.h5")
    whole = checkpoint.load(path)
    assert whole["attrs"]["checksum"].startswith("sha256:")
    with h5py.File(path, "a") as f:
        del f.attrs["checksum"]  # as every checkpoint before checksums
    old = checkpoint.load(path)
    for k in whole["params"]:
        np.testing.assert_array_equal(old["params"][k], whole["params"][k])


def test_non_finite_weights_are_refused_in_one_line(run, copy_of):
    run = copy_of(run)
    path = os.path.join(run, "checkpoint.h5")
    with h5py.File(path, "a") as f:
        del f.attrs["checksum"]
        f["params/G/legs/fc_out/W"][0, 0] = np.nan
    before = snapshot(run)
    for command in (["evaluate", run], ["export", run, "--out", os.path.join(run, "m.h5")]):
        one_line_error(invoke(*command), path, "'G/legs/fc_out/W'", "NaN or infinite")
    assert snapshot(run) == before


# --- evaluate: results named by their data, never replaced by another's ------------------------------------

def test_evaluate_on_other_data_writes_beside_and_records_the_data(run, copy_of, tmp_path, tiny_data):
    run = copy_of(run)
    own = open(os.path.join(run, "evaluation.json")).read()
    assert json.loads(own)["data"] == os.path.abspath(tiny_data)
    other = tmp_path / "other.h5"
    shutil.copy(tiny_data, other)
    assert invoke("evaluate", run, "--data", other).exit_code == 0
    assert open(os.path.join(run, "evaluation.json")).read() == own  # the run's own results kept
    written = json.loads(open(os.path.join(run, "evaluation.other.json")).read())
    assert written["data"] == str(other) and "P-MPJPE" in written
    assert os.path.exists(os.path.join(run, "evaluation.other.csv"))
    # another file of the same name: refused, unless --overwrite
    (tmp_path / "elsewhere").mkdir()
    shutil.copy(tiny_data, tmp_path / "elsewhere" / "other.h5")
    r = invoke("evaluate", run, "--data", tmp_path / "elsewhere" / "other.h5")
    one_line_error(r, "evaluation.other.json", str(other), "--overwrite")
    assert json.loads(open(os.path.join(run, "evaluation.other.json")).read())["data"] == str(other)
    r = invoke("evaluate", run, "--data", tmp_path / "elsewhere" / "other.h5", "--overwrite")
    assert r.exit_code == 0, r.output
    assert json.loads(open(os.path.join(run, "evaluation.other.json")).read())["data"] == \
        str(tmp_path / "elsewhere" / "other.h5")


def test_evaluate_into_a_read_only_folder_is_one_line(run, copy_of, read_only):
    run = copy_of(run)
    read_only(run)
    one_line_error(invoke("evaluate", run), run, "cannot write")


# --- export ---------------------------------------------------------------------------------------------

def test_export_refuses_to_replace_a_file_unasked(run, tmp_path, read_only):
    out = tmp_path / "model.h5"
    out.write_bytes(b"precious")
    one_line_error(invoke("export", run, "--out", out), str(out), "--overwrite")
    assert out.read_bytes() == b"precious"
    assert invoke("export", run, "--out", out, "--overwrite").exit_code == 0
    assert checkpoint.load(str(out))["config"]["parts"] == ["torso", "legs"]
    (tmp_path / "ro").mkdir()
    read_only(tmp_path / "ro")
    one_line_error(invoke("export", run, "--out", tmp_path / "ro" / "m.h5"), "cannot write")


# --- prepare-data ---------------------------------------------------------------------------------------

@pytest.fixture
def tree(tmp_path):
    root = _tiny_tree(tmp_path)
    _swap_yz(root)
    return root


def prepare(root, out, *extra):
    return invoke("prepare-data", "--h36m", root, "--out", out, "--subjects", "1,9", *extra)


def test_prepare_data_refuses_an_existing_out_and_duplicate_subjects(tree, tmp_path):
    out = tmp_path / "out.h5"
    out.write_bytes(b"precious")
    one_line_error(prepare(tree, out), str(out), "--overwrite")
    assert out.read_bytes() == b"precious"
    assert prepare(tree, out, "--overwrite").exit_code == 0 and h5py.is_hdf5(out)
    r = invoke("prepare-data", "--h36m", tree, "--out", tmp_path / "twice.h5", "--subjects", "1,1")
    one_line_error(r, "--subjects", "subject 1 given twice")
    assert not (tmp_path / "twice.h5").exists()


@pytest.mark.parametrize("damage", ["empty", "truncated", "garbage", "damaged"])
def test_prepare_data_refuses_a_damaged_cameras_file_in_one_line(tree, tmp_path, damage, capfd):
    cameras = tree / "cameras.h5"
    data = cameras.read_bytes()
    if damage == "empty":
        cameras.write_bytes(b"")
    elif damage == "truncated":
        cameras.write_bytes(data[:len(data) // 2])
    elif damage == "garbage":
        cameras.write_bytes(b"\x89HDF\r\n\x1a\n" + bytes(range(256)) * 8)
    else:  # the same size, its middle overwritten
        cameras.write_bytes(data[:400] + b"\xff" * (len(data) - 800) + data[-400:])
    r = prepare(tree, tmp_path / "out.h5")
    one_line_error(r, str(cameras))
    assert not (tmp_path / "out.h5").exists() and "HDF5" not in capfd.readouterr().err  # (the library's own printing)


@pytest.mark.parametrize("damage", ["empty", "truncated", "text"])
def test_prepare_data_refuses_a_damaged_sequence_in_one_line(tree, tmp_path, damage):
    seq = tree / "S1" / "MyPoses" / "3D_positions" / "Walking.h5"
    data = seq.read_bytes()
    if damage == "empty":
        seq.write_bytes(b"")
    elif damage == "truncated":
        seq.write_bytes(data[:len(data) // 2])
    else:
        with h5py.File(seq, "w") as f:
            f["3D_positions"] = np.array([["a"] * 4] * 96, dtype="S1")
    r = prepare(tree, tmp_path / "out.h5")
    one_line_error(r, str(seq))
    assert not (tmp_path / "out.h5").exists()


def test_prepare_data_into_a_read_only_or_missing_folder(tree, tmp_path, read_only):
    assert prepare(tree, tmp_path / "new" / "deeper" / "out.h5").exit_code == 0  # a missing folder is made
    ro = tmp_path / "ro"
    ro.mkdir()
    read_only(ro)
    one_line_error(prepare(tree, ro / "out.h5"), str(ro), "cannot write")
    one_line_error(prepare(tree, ro / "sub" / "out.h5"), "cannot write")


def _prepare_in_a_subprocess(tree, out, limit, check_space=True):
    """prepare-data in a child process whose files may not exceed `limit` bytes (ulimit -f)."""
    import resource
    code = ("import tips_np.atomic as a\n"
            + ("" if check_space else "a.check_space = lambda path, n: None\n")
            + "from tips_np.cli import main\nmain()")
    return subprocess.run(
        [sys.executable, "-c", code, "prepare-data", "--h36m", str(tree), "--out", str(out), "--subjects", "1,9"],
        capture_output=True, text=True, cwd=ROOT, timeout=120,
        env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
        preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit)))


@pytest.mark.parametrize("check_space", [True, False])
def test_prepare_data_on_a_full_disk_is_one_line_and_no_crash(tree, tmp_path, check_space):
    pytest.importorskip("resource")
    out = tmp_path / "out.h5"
    p = _prepare_in_a_subprocess(tree, out, 4096, check_space)
    assert p.returncode == 1, (p.returncode, p.stderr[-2000:])
    lines = p.stderr.strip().splitlines()
    assert lines[-1].startswith(f"error: {out}: cannot write it") and "Traceback" not in p.stderr, p.stderr[-2000:]
    assert ("ulimit -f" if check_space else "File too large") in lines[-1]
    assert "HDF5-DIAG" not in p.stderr
    assert not out.exists() and not [n for n in os.listdir(tmp_path) if ".tmp" in n]
