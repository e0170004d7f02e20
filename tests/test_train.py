"""Evaluation, checkpoints and the training loop."""
import csv
import functools
import json
import os
from types import SimpleNamespace

import h5py
import numpy as np
import pytest
from click.testing import CliRunner

from tips_np.cli import main
from tips_np.io import checkpoint, dataset
from tips_np.io.h36m import DataError
from tips_np.method import cycle
from tips_np.method.geometry import normalise_2d, rotation_matrices, unproject_view
from tips_np.method.model import predict_depths
from tips_np.tools import machine
from tips_np.tools.evaluate import auc, evaluate_depths, n_mpjpe, p_mpjpe, pck3d, procrustes_align
from tips_np.tools.train import DEFAULTS, LR_FLOOR, RECIPES, Diverged, learning_rate, resolve, train

TINY = dict(parts=["torso", "legs"], width=32, blocks=1, batch_size=256, epochs=3)
TINY_LR = DEFAULTS["lr"]


def test_atomic_write_leaves_the_old_file_on_failure(tmp_path):
    from tips_np.atomic import atomic_write
    target = tmp_path / "out.txt"
    target.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_write(str(target)) as tmp, open(tmp, "w") as f:
            f.write("half")
            raise RuntimeError("the writer failed")
    assert target.read_text() == "old" and os.listdir(tmp_path) == ["out.txt"]
    with atomic_write(str(target)) as tmp, open(tmp, "w") as f:
        f.write("new")
    assert target.read_text() == "new" and os.listdir(tmp_path) == ["out.txt"]


def test_procrustes_undoes_a_known_similarity_transform(rng):
    gt = rng.standard_normal((5, 17, 3)) * 300
    R = rotation_matrices(rng.uniform(-3, 3, 5), rng.uniform(-1, 1, 5), np.float64)
    pred = 0.004 * gt @ R + rng.standard_normal((5, 1, 3))
    np.testing.assert_allclose(procrustes_align(pred, gt), gt, atol=1e-8)
    assert p_mpjpe(pred, gt).max() < 1e-8


def test_procrustes_excludes_reflections(rng):
    gt = rng.standard_normal((4, 17, 3)) * 300
    mirrored = gt * np.array([1, 1, -1])
    assert p_mpjpe(mirrored, gt).min() > 10  # a mirror image is not aligned away


def test_reflection_allowed_aligns_a_mirror_image_away(rng):
    gt = rng.standard_normal((4, 17, 3)) * 300
    mirrored = gt * np.array([1, 1, -1])
    assert p_mpjpe(mirrored, gt, reflection=True).max() < 1e-8
    assert np.all(p_mpjpe(gt + 5, gt, reflection=True) < 1e-8)


def test_pck3d_and_auc_count_joints_within_thresholds():
    errors = np.array([[0.0, 10.0, 149.0, 151.0], [200.0, 200.0, 200.0, 200.0]])
    np.testing.assert_allclose(pck3d(errors), [75.0, 0.0])
    # thresholds 0, 5, ..., 150: 0 mm is below none of them (error < t), 10 mm below 29, 149 mm below 1
    np.testing.assert_allclose(auc(errors), [100 * (30 + 28 + 1 + 0) / (4 * 31), 0.0])


def test_n_mpjpe_aligns_scale_only(rng):
    gt = rng.standard_normal((3, 17, 3))
    assert n_mpjpe(0.01 * gt, gt).max() < 1e-12
    R = rotation_matrices(np.full(3, 0.5), np.zeros(3), np.float64)
    assert n_mpjpe(gt @ R, gt).min() > 0.1  # a rotation is not aligned away


def read_log(run):
    with open(os.path.join(run, "log.csv")) as f:
        return list(csv.DictReader(f))


def test_smoke_training_run_losses_fall(tmp_path, tiny_data):
    run = str(tmp_path / "run")
    config, result = train({**TINY, "data": tiny_data, "epochs": 6}, run, echo=lambda s: None)
    rows = read_log(run)
    assert [int(r["epoch"]) for r in rows] == [1, 2, 3, 4, 5, 6]
    for key in ("torso/total", "legs/total", "torso/l90", "legs/l90", "D"):
        assert float(rows[-1][key]) < 0.9 * float(rows[0][key]), key
    assert all(np.isfinite(float(r["p_mpjpe"])) for r in rows)
    assert set(result) == {"P-MPJPE", "P-MPJPE reflection allowed", "N-MPJPE", "PCK3D", "AUC",
                           "P-MPJPE mirrored", "P-MPJPE z=0", "P-MPJPE floor"}
    assert result["P-MPJPE floor"]["Average"] < result["P-MPJPE"]["Average"]   # true depths beat the lifter's
    assert len(result["P-MPJPE"]) == 16  # 15 actions and the average
    ckpt = checkpoint.load(run)
    assert ckpt["epoch"] == 6 and ckpt["config"]["parts"] == ["torso", "legs"]
    assert "G/torso/block0/fc1/W" in ckpt["params"] and "m/G/torso/block0/fc1/W" in ckpt["adam"]


@pytest.mark.parametrize("use_cores", ["products", pytest.param("groups", marks=pytest.mark.machine)])
def test_seeded_runs_repeat_and_resume_continues_exactly(tmp_path, tiny_data, use_cores, monkeypatch):
    """(With 'groups' the chooser switches between side by side and in turn every other
    step, and no number moves.)"""
    monkeypatch.setattr(machine, "best", lambda gen, batch: use_cores)
    if machine.use(use_cores) != use_cores:
        pytest.skip("NumPy's BLAS here is not an OpenBLAS whose threads can be set")
    monkeypatch.setattr(machine, "Chooser", functools.partial(machine.Chooser, every=1, trial=1, warmup=0))
    straight, halves, again = (str(tmp_path / n) for n in ("straight", "halves", "again"))
    quiet = dict(echo=lambda s: None)
    train({**TINY, "data": tiny_data}, straight, **quiet)
    train({**TINY, "data": tiny_data}, again, **quiet)
    train({**TINY, "data": tiny_data, "epochs": 1}, halves, **quiet)
    train({**TINY, "data": tiny_data}, halves, resume=True, **quiet)
    a, b, c = (checkpoint.load(r) for r in (straight, halves, again))
    for group in ("params", "adam"):
        for k in a[group]:
            np.testing.assert_array_equal(a[group][k], c[group][k])  # same seed, same numbers
            np.testing.assert_array_equal(a[group][k], b[group][k])  # resumed = uninterrupted
    assert [r["epoch"] for r in read_log(halves)] == ["1", "2", "3"]
    # the run's first epoch ended with a depth-sign flip, saved with the checkpoint it resumed from
    assert read_log(straight)[0]["legs/flipped"] == "1.0"

    def timeless(rows):
        return [{k: v for k, v in r.items() if k != "seconds"} for r in rows]
    assert timeless(read_log(halves)) == timeless(read_log(straight))
    assert machine.mode() in ({use_cores} if use_cores == "products" else {"groups", "turns"})


def test_resume_uses_the_runs_own_configuration(tmp_path, tiny_data):
    run = str(tmp_path / "run")
    args = ["--width", "16", "--blocks", "1", "--data", tiny_data, "--out", run]
    assert CliRunner().invoke(main, ["train", "--parts", "full", "--epochs", "1"] + args).exit_code == 0
    r = CliRunner().invoke(main, ["train", "--resume", "--epochs", "2", "--out", run])  # default --parts
    assert r.exit_code == 0, r.output
    assert checkpoint.load(run)["epoch"] == 2 and checkpoint.load(run)["config"]["parts"] == ["full"]
    r = CliRunner().invoke(main, ["train", "--resume", "--epochs", "2", "--out", run])  # nothing left
    assert r.exit_code == 0 and "P-MPJPE" in r.output, r.output


def test_divergence_stops_and_keeps_the_last_good_checkpoint(tmp_path, tiny_data, monkeypatch):
    run = str(tmp_path / "run")
    train({**TINY, "data": tiny_data, "epochs": 1}, run, echo=lambda s: None)
    good = checkpoint.load(run)["params"]["G/legs/fc_out/W"].copy()
    real = cycle.reprojection_loss
    monkeypatch.setattr(cycle, "reprojection_loss",
                        lambda *a: (real(*a)[0] * np.nan, real(*a)[1]))
    with pytest.raises(Diverged, match="epoch 2"):
        train({**TINY, "data": tiny_data, "epochs": 2}, run, resume=True, echo=lambda s: None)
    kept = checkpoint.load(run)
    assert kept["epoch"] == 1
    np.testing.assert_array_equal(kept["params"]["G/legs/fc_out/W"], good)


@pytest.mark.parametrize("parts,extra", [("full", []), ("larm,rarm,torso,lleg,rleg", ["--combine"]),
                                         ("torso,legs", ["--gan", "lsgan", "--match-params"])])
def test_cli_train_and_evaluate(tmp_path, tiny_data, parts, extra):
    run = str(tmp_path / "run")
    r = CliRunner().invoke(main, ["train", "--parts", parts, "--width", "16", "--blocks", "1",
                                  "--epochs", "1", "--data", tiny_data, "--out", run] + extra)
    assert r.exit_code == 0, r.output
    assert "parameters" in r.output and "P-MPJPE" in r.output and "Avg." in r.output
    r = CliRunner().invoke(main, ["evaluate", run])
    assert r.exit_code == 0, r.output
    assert "P-MPJPE mirrored" in r.output and "WalkT." in r.output
    assert os.path.exists(os.path.join(run, "evaluation.csv"))


@pytest.mark.parametrize("args,message", [
    (["train", "--parts", "torso"], "cover the 16 keypoints"),
    (["train", "--parts", "arms,legs"], "unknown part"),
    (["train", "--width", "0"], "--width"),
    (["train", "--batch-size", "1"], "--batch-size"),
    (["train", "--data", "/no/such.h5", "--epochs", "1"], "data file not found"),
    (["evaluate", "/no/such/run"], "checkpoint not found"),
])
def test_cli_refuses_bad_options(args, message):
    r = CliRunner().invoke(main, args)
    assert r.exit_code != 0 and message in r.output and "Traceback" not in r.output


def test_evaluate_refuses_files_that_are_not_checkpoints(tmp_path, tiny_data):
    junk = tmp_path / "junk.h5"
    junk.write_bytes(b"\x89HDF\r\n" + b"0" * 100)
    plain = tmp_path / "plain.h5"
    with h5py.File(plain, "w") as f:
        f["x"] = 1
    for path, message in ((junk, "not a readable HDF5 file"), (plain, "not a tips-np checkpoint")):
        r = CliRunner().invoke(main, ["evaluate", str(path)])
        assert r.exit_code == 1 and message in r.output, r.output


def test_bench_runs_and_writes_json(tmp_path):
    import json
    out = tmp_path / "bench.json"
    r = CliRunner().invoke(main, ["bench", "--width", "16", "--blocks", "1", "--batch", "64",
                                  "--steps", "2", "--warmup", "1", "--out", str(out)])
    assert r.exit_code == 0, r.output
    figures = json.loads(out.read_text())
    assert figures["matmuls_per_step"] > 0 and 0 < figures["matmul_share_min"] <= figures["matmul_share"] \
        <= figures["matmul_share_max"] < 1 and len(figures["matmul_shares"]) == 5
    assert figures["step_s_median"] > 0 and figures["plain_matmul_gflops"] > 0
    assert "poses/s" in r.output


@pytest.mark.machine
@pytest.mark.parametrize("use_cores", ["products", "groups"])
def test_a_warm_training_step_page_faults_no_memory_in(use_cores):
    """glibc's default hands a step's freed arrays back to the kernel, and the next step
    faults them in again (about 2,900 pages per step at this size, every step);
    keep_freed_memory keeps them (measured: 0 per step once warm). A warm step may still
    fault now and then, once: with the groups on their own threads (machine.py), the
    thread that takes a group can change between steps, and its heap grows once to hold
    it (seen: 768 pages in one step of 40 on a loaded machine). So most warm steps, not
    every one, fault nothing."""
    resource = pytest.importorskip("resource")
    from tips_np.tools.machine import keep_freed_memory
    from tips_np.tools.bench import one_step_setup
    if not keep_freed_memory():
        pytest.skip("not glibc: no mallopt")
    if machine.use(use_cores) != use_cores:
        pytest.skip("NumPy's BLAS here is not an OpenBLAS whose threads can be set")
    step, _ = one_step_setup("cpu", ("torso", "legs"), 256, 2, 256)
    for _ in range(15):
        step()
    faults = []
    for _ in range(9):
        before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        step()
        faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
    assert sorted(faults)[4] < 50, faults     # the median step


def test_bench_on_cuda_without_a_gpu_is_a_clear_error():
    from tips_np.backend import gpu_status
    if gpu_status()[0]:
        pytest.skip("a GPU is present")
    r = CliRunner().invoke(main, ["bench", "--device", "cuda", "--width", "16"])
    assert r.exit_code == 1 and "--device cuda is not available" in r.output and "Traceback" not in r.output


def test_a_short_default_run_lifts_better_than_flat_poses(tmp_path):
    """Eight epochs of the README's recipe (the command line's default, cpu) on the
    shipped sample: as measured, with the depth sign the model decided, better than
    z_hat = 0 and than its mirror (measured: 92.2 mm, z_hat = 0 105.4, mirror 174.3)."""
    _, result = train({"recipe": "cpu", "epochs": 8, "eval_every": 8}, str(tmp_path / "run"), echo=lambda s: None)
    mm = {k: v["Average"] for k, v in result.items()}
    assert mm["P-MPJPE"] < mm["P-MPJPE z=0"] - 5 and mm["P-MPJPE"] < mm["P-MPJPE mirrored"], mm


def test_dropout_trains_seeded_and_resumes_exactly(tmp_path, tiny_data):
    config = {**TINY, "data": tiny_data, "dropout": 0.5, "epochs": 2}
    straight, halves = str(tmp_path / "straight"), str(tmp_path / "halves")
    train(config, straight, echo=lambda s: None)
    train({**config, "epochs": 1}, halves, echo=lambda s: None)
    train(config, halves, resume=True, echo=lambda s: None)
    a, b = checkpoint.load(straight)["params"], checkpoint.load(halves)["params"]
    for k in a:
        np.testing.assert_array_equal(a[k], b[k])
    plain = str(tmp_path / "plain")
    train({**config, "dropout": 0.0}, plain, echo=lambda s: None)
    assert not np.array_equal(checkpoint.load(plain)["params"]["G/legs/fc_out/W"], a["G/legs/fc_out/W"])


def test_perspective_trains_end_to_end_and_is_bounded_by_the_geometry(tmp_path, tiny_data):
    r = CliRunner().invoke(main, ["train", "--perspective", "5.5", "--width", "16", "--blocks", "1",
                                  "--epochs", "1", "--data", tiny_data, "--out", str(tmp_path / "run")])
    assert r.exit_code == 0 and "P-MPJPE" in r.output, r.output
    assert checkpoint.load(str(tmp_path / "run"))["config"]["perspective"] == 5.5
    # its student sees its depths through the same camera (the cpu recipe's own 5.5 or not)
    r = CliRunner().invoke(main, ["distill", str(tmp_path / "run"), "--recipe", "paper", "--epochs", "1",
                                  "--width", "16", "--data", tiny_data, "--out", str(tmp_path / "tips")])
    assert r.exit_code == 0 and checkpoint.load(str(tmp_path / "tips"))["config"]["perspective"] == 5.5, r.output
    # and lift unprojects its depths through it: (x, y) = (u, v) (d + z_hat) / d
    pixels = np.random.default_rng(0).uniform(300, 700, (3, 17, 2))
    np.save(tmp_path / "in.npy", pixels)
    r = CliRunner().invoke(main, ["lift", str(tmp_path / "tips"), "--input", str(tmp_path / "in.npy"),
                                  "--output", str(tmp_path / "out.npy")])
    assert r.exit_code == 0, r.output
    pose_3d = np.load(tmp_path / "out.npy")[:, 0].astype(np.float64)
    np.testing.assert_allclose(pose_3d[..., :2], normalise_2d(pixels)[0] * (5.5 + pose_3d[..., 2:]) / 5.5, atol=1e-5)
    r = CliRunner().invoke(main, ["train", "--perspective", "1.5", "--out", str(tmp_path / "near")])
    assert r.exit_code == 2 and "--perspective" in r.output and not os.path.exists(tmp_path / "near")
    # no unprojected, turned joint comes nearer than PERSPECTIVE_MIN (any view, any pitch), and
    # the farthest corner of the unprojected pose lies exactly that far from the root
    d, rng = cycle.PERSPECTIVE_MIN, np.random.default_rng(0)
    pose = unproject_view(rng.uniform(-1, 1, (20000, 17, 2)), rng.uniform(-1, 1, (20000, 17)), d)
    R = rotation_matrices(rng.uniform(-np.pi, np.pi, 20000), rng.uniform(-cycle.ELEVATION, cycle.ELEVATION, 20000),
                          np.float64, np.radians(45))
    assert (pose @ R.transpose(0, 2, 1))[..., 2].min() > -d
    corner = unproject_view(np.array([[[1.0, 1.0]]]), np.array([[1.0]]), d)
    assert np.linalg.norm(corner) == pytest.approx(d)


def test_refused_runs_leave_no_run_folder(tmp_path, monkeypatch, tiny_data):
    monkeypatch.chdir(tmp_path)
    for args in (["--data", "/no/such.h5"], ["--resume"], ["--parts", "full", "--combine", "--data", tiny_data]):
        r = CliRunner().invoke(main, ["train", "--epochs", "1"] + args)
        assert r.exit_code == 1 and "Traceback" not in r.output, r.output
    assert "--combine needs a split representation" in r.output
    assert not os.path.exists(tmp_path / "runs")


def test_match_params_narrows_each_split_representation_to_the_full_pose_count(tiny_data, tmp_path):
    from tips_np.method.model import Generator
    full = Generator(["full"]).n_params()
    for parts, combine in ((["torso", "legs"], False), (["torso", "legs"], True),
                           (["larm", "rarm", "spine", "lleg", "rleg"], False),
                           (["larm", "rarm", "spine", "lleg", "rleg"], True)):
        gen = Generator(parts, combine, match_params=True)
        assert abs(gen.n_params() - full) / full < 0.06 and gen.width % 8 == 0, (parts, combine, gen.width)
    r = CliRunner().invoke(main, ["train", "--parts", "torso,legs", "--match-params", "--epochs", "1",
                                  "--width", "64", "--blocks", "1", "--data", tiny_data, "--out", str(tmp_path / "m")])
    n_full = Generator(["full"], width=64, blocks=1).n_params()
    n_split = Generator(["torso", "legs"], width=64, blocks=1, match_params=True).n_params()
    assert r.exit_code == 0 and f"{n_split:,} parameters" in r.output and abs(n_split - n_full) / n_full < 0.06


def test_the_step_comparison_across_devices_sees_a_difference(monkeypatch):
    """compare_step (the first GPU run's check of CuPy against NumPy) reports nothing for
    the same step twice, and a difference once the second step starts from one weight
    nudged by 1e-3: the comparison can fail. With a GPU, CuPy's step is NumPy's to
    float32 rounding."""
    from tips_np.tools import bench
    from tips_np.backend import gpu_status
    same = bench.compare_step("cpu", width=16, blocks=1, batch=64)
    assert same["max_loss_rel_diff"] == 0 and same["max_param_rel_diff"] == 0
    setups, real = [], bench.one_step_setup

    def second_one_nudged(*args, **kwargs):
        step, params = real(*args, **kwargs)
        setups.append(params)
        if len(setups) == 2:
            params["G/legs/fc_out/W"][0, 0] += 1e-3
        return step, params
    monkeypatch.setattr(bench, "one_step_setup", second_one_nudged)
    nudged = bench.compare_step("cpu", width=16, blocks=1, batch=64)
    assert 0 < nudged["max_loss_rel_diff"] < 0.1 and 0 < nudged["max_param_rel_diff"] < 0.1, nudged
    monkeypatch.undo()
    if gpu_status()[0]:
        on_gpu = bench.compare_step("cuda", width=16, blocks=1, batch=64)
        assert on_gpu["max_loss_rel_diff"] < 1e-3 and on_gpu["max_param_rel_diff"] < 1e-3, on_gpu


def test_the_first_gpu_run_without_a_gpu_is_a_clear_error(tmp_path):
    from tips_np.backend import gpu_status
    if gpu_status()[0]:
        pytest.skip("a GPU is present")
    r = CliRunner().invoke(main, ["first-gpu-run", "--out", str(tmp_path / "r.json")])
    assert r.exit_code == 1 and "needs a GPU" in r.output and not (tmp_path / "r.json").exists()


def test_recipes_resolve_under_explicit_values():
    paper, cpu = resolve({"recipe": "paper"}), resolve({"recipe": "cpu", "lr": None, "adv_scale": 2.0})
    assert {k: paper[k] for k in RECIPES["paper"]} == RECIPES["paper"]
    assert paper["adv_scale"] == DEFAULTS["adv_scale"] == 1.0  # the Python defaults are the papers'
    assert cpu["lr"] == RECIPES["cpu"]["lr"] and cpu["adv_scale"] == 2.0  # None keeps the recipe's
    assert cpu["lr_schedule"] == RECIPES["cpu"]["lr_schedule"]
    assert cpu["perspective"] == 5.5 and paper["perspective"] is None
    assert resolve({"recipe": "cpu", "perspective": 0.0})["perspective"] is None  # 0: orthographic


def test_the_true_depths_score_zero_through_the_models_camera(rng):
    """evaluate_depths unprojects the 2D pose at z_hat by the model's camera: the pinhole
    views of known poses with their true depths score 0 mm, and as much error as before
    when the model is orthographic."""
    d = 5.5
    gt = rng.uniform(-1, 1, (64, 17, 3))
    gt -= gt[:, :1]
    views = SimpleNamespace(pose_2d=gt[..., :2] * d / (d + gt[..., 2:]), pose_3d=gt, action=np.zeros(64, int))
    pinhole, orthographic = (evaluate_depths(gt[..., 2], views, p)["P-MPJPE"]["Average"] for p in (d, None))
    assert pinhole < 1e-9 < 0.01 < orthographic


def test_learning_rate_schedules():
    steps = 101
    constant = [learning_rate({"lr": 1e-3, "lr_schedule": "constant"}, i, steps) for i in range(steps)]
    cosine = [learning_rate({"lr": 1e-3, "lr_schedule": "cosine"}, i, steps) for i in range(steps)]
    assert constant == [1e-3] * steps
    assert cosine[0] == 1e-3 and abs(cosine[-1] - LR_FLOOR * 1e-3) < 1e-15
    assert abs(cosine[50] - 1e-3 * (1 + LR_FLOOR) / 2) < 1e-12
    assert all(a > b for a, b in zip(cosine, cosine[1:]))


class Interrupted(Exception):
    pass


def test_a_held_out_subject_validates_and_the_test_split_is_scored_once(tmp_path, tiny_data, monkeypatch):
    """With --val-subject the subject's poses leave the training set, are scored
    every val_every steps and after every epoch (val.csv), the test split only at
    the end; such a run (cosine schedule, scaled adversarial weights, smoothed
    labels), killed after its first epoch's checkpoint, resumes bit for bit."""
    train_set, val_set = dataset.load(tiny_data, "train").hold_out(8)
    assert set(train_set.subject) == {1, 5, 6, 7} and set(val_set.subject) == {8}
    assert len(val_set) == (dataset.load(tiny_data, "train").subject == 8).sum() // 10 + 1
    config = {**TINY, "data": tiny_data, "epochs": 2, "val_subject": 8, "val_every": 4,
              "lr_schedule": "cosine", "adv_scale": 7.5, "real_label": 0.8}
    straight, halves = str(tmp_path / "straight"), str(tmp_path / "halves")
    _, result = train(config, straight, echo=lambda s: None)
    save = checkpoint.save

    def save_then_die(path, *args, **kwargs):
        save(path, *args, **kwargs)
        if path.endswith("checkpoint.h5"):
            raise Interrupted
    monkeypatch.setattr(checkpoint, "save", save_then_die)
    with pytest.raises(Interrupted):
        train(config, halves, echo=lambda s: None)
    monkeypatch.setattr(checkpoint, "save", save)
    train(config, halves, resume=True, echo=lambda s: None)
    per_epoch = len(train_set) // TINY["batch_size"]
    expected = sorted({*range(4, 2 * per_epoch, 4), per_epoch, 2 * per_epoch})
    for run in (straight, halves):
        with open(os.path.join(run, "val.csv")) as f:
            rows = list(csv.DictReader(f))
        assert [int(r["step"]) for r in rows] == expected
        assert all(0 < float(r["val_p_mpjpe"]) < 1000 for r in rows)
        assert float(rows[-1]["lr"]) == pytest.approx(LR_FLOOR * TINY_LR)
        log = read_log(run)
        assert "val_p_mpjpe" in log[-1] and "p_mpjpe" not in log[-1]  # the test split not seen per epoch
    # ... but scored once, at the end, on the weights that validated best (kept in best.h5)
    best = checkpoint.load(os.path.join(straight, "best.h5"))
    assert not best["adam"] and not any(k.startswith("D/") for k in best["params"])
    assert json.loads(best["attrs"]["best"])["val_p_mpjpe"] == min(float(r["val_p_mpjpe"]) for r in rows)
    test = dataset.load(tiny_data, "test")
    again = evaluate_depths(predict_depths(*checkpoint.load_model(best), test.pose_2d), test)
    assert again["P-MPJPE"]["Average"] == result["P-MPJPE"]["Average"]
    a, b = checkpoint.load(straight), checkpoint.load(halves)
    for group in ("params", "adam"):
        for k in a[group]:
            np.testing.assert_array_equal(a[group][k], b[group][k])
    timeless = lambda rows: [{k: v for k, v in r.items() if k != "seconds"} for r in rows]
    assert timeless(read_log(halves)) == timeless(read_log(straight))
    with pytest.raises(DataError, match="no poses of subject 9"):
        dataset.load(tiny_data, "train").hold_out(9)


def test_recipe_paper_on_the_command_line_is_the_papers_method_bit_for_bit(tmp_path, tiny_data):
    """`--recipe paper` trains exactly what every run before recipes trained (the
    Python defaults), and the default recipe differs from it."""
    runs = {name: str(tmp_path / name) for name in ("cli_paper", "python", "cli_default")}
    args = ["train", "--width", "16", "--blocks", "1", "--epochs", "1", "--data", tiny_data]
    for name, extra in (("cli_paper", ["--recipe", "paper"]), ("cli_default", [])):
        r = CliRunner().invoke(main, args + extra + ["--out", runs[name]])
        assert r.exit_code == 0, r.output
    train({"width": 16, "blocks": 1, "epochs": 1, "data": tiny_data}, runs["python"], echo=lambda s: None)
    paper, python, default = (checkpoint.load(runs[n]) for n in ("cli_paper", "python", "cli_default"))
    for k in python["params"]:
        np.testing.assert_array_equal(paper["params"][k], python["params"][k])
    assert default["config"]["adv_scale"] == RECIPES["cpu"]["adv_scale"] != paper["config"]["adv_scale"]
    assert not np.array_equal(default["params"]["G/legs/fc_out/W"], python["params"]["G/legs/fc_out/W"])


def test_the_discriminator_is_updated_on_one_step_in_d_every(tmp_path, tiny_data, monkeypatch):
    """d_every 3 (a configuration key, no longer an option): train_step is told to
    update the discriminator on steps 0, 3, 6, ... only; --view-pitch reaches it in radians, --weigh-facing as given; these and
    --d-lr-scale are recorded in the run's configuration."""
    seen = []

    def recording_step(gen, disc, params, state, opt, pose_2d, randomness, objective, rng, update_disc):
        seen.append((update_disc, objective.pitch, objective.weigh_facing))
        return cycle.train_step(gen, disc, params, state, opt, pose_2d, randomness, objective, rng, update_disc)
    monkeypatch.setattr("tips_np.tools.train.train_step", recording_step)
    config, _ = train({**TINY, "epochs": 1, "data": tiny_data, "d_every": 3, "d_lr_scale": 0.5, "view_pitch": 12.0,
                       "weigh_facing": 0.5}, str(tmp_path / "run"), echo=lambda s: None)
    assert [u for u, _, _ in seen] == [i % 3 == 0 for i in range(len(seen))] and len(seen) > 3
    assert {(p, w) for _, p, w in seen} == {(np.radians(12.0), 0.5)}
    saved = checkpoint.load(str(tmp_path / "run"))["config"]
    assert (saved["d_every"], saved["d_lr_scale"], saved["view_pitch"], saved["weigh_facing"]) == (3, 0.5, 12.0, 0.5)
    assert (config["d_every"], config["d_lr_scale"]) == (3, 0.5)
