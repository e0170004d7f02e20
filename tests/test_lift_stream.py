"""lift streams Human3.6M-ordered .npy and .csv files: chunk by chunk, the same
bytes as lifting the whole file at once, memory flat in the number of poses, and
every refusal of bad input still one line with nothing written."""
import json
import os
import tracemalloc

import numpy as np
import pytest
from click.testing import CliRunner

from tips_np.cli import main
from tips_np.io import checkpoint, dataset, lifting
from tips_np.tools.fit_adapter import load_adapters


@pytest.fixture(scope="module")
def sample_pixels():
    """The shipped sample's test 2D poses, in pixels (N, 17, 2)."""
    test = dataset.load(None, "test")
    return test.pose_2d.astype(np.float64) * test.scale[:, None, None] + test.root[:, None]


@pytest.fixture(scope="module")
def lifter():
    ckpt = checkpoint.load(checkpoint.PRETRAINED)
    return ckpt, checkpoint.load_model(ckpt), load_adapters(ckpt)


def _write_input(path, pixels, ext):
    if ext == ".npy":
        np.save(path, pixels)
    else:   # a header row, and each number as Python writes it (float() reads it back exactly)
        with open(path, "w") as f:
            f.write(",".join(f"j{j}_{c}" for j in range(pixels.shape[1]) for c in "xy") + "\n")
            f.write("\n".join(",".join(repr(float(v)) for v in p.ravel()) for p in pixels) + "\n")


def _outputs(path):
    files = [path] + ([lifting.ids_path(path)] if path.endswith(".npy") else [])
    return [open(f, "rb").read() for f in files]


@pytest.mark.parametrize("ext_in", [".npy", ".csv"])
@pytest.mark.parametrize("ext_out", [".npy", ".csv", ".json"])
def test_a_streamed_lift_is_the_whole_lift_byte_for_byte(tmp_path, sample_pixels, lifter, monkeypatch, ext_in,
                                                         ext_out):
    """BLAS gives a row of a product bits that depend on the batch it is in, so a
    stream's chunks are whole batches of the networks (lifting.CHUNK): here batches of
    256 poses, chunks of 512, and 3000 poses, whose last chunk is a part batch."""
    import functools
    monkeypatch.setattr(lifting, "predict_depths", functools.partial(lifting.predict_depths, batch_size=256))
    monkeypatch.setattr(lifting, "adapt", functools.partial(lifting.adapt, batch_size=256))
    ckpt, (gen, params, state), adapters = lifter
    pixels = sample_pixels[:3000].copy()
    if ext_in == ".csv":
        pixels = pixels[:, 1:]      # 16 keypoints: the root is the hips' midpoint
    src = str(tmp_path / f"in{ext_in}")
    _write_input(src, pixels, ext_in)
    # the in-memory path: the whole file read, lifted and written at once
    poses = lifting.read_poses(src)
    args = dict(per_pose_sign=True, perspective=ckpt["config"].get("perspective"), adapter=adapters.get("noise"))
    pose_3d, px = lifting.lift_poses(gen, params, state, poses.pixels, **args)
    whole = str(tmp_path / f"whole{ext_out}")
    lifting.write_poses(whole, poses, pose_3d, px)
    # streamed in chunks of 512 poses
    stream = lifting.open_stream(src)
    assert stream is not None and stream.notes == poses.notes
    streamed = str(tmp_path / f"streamed{ext_out}")
    line = lifting.lift_stream(stream, streamed, lambda p: lifting.lift_poses(gen, params, state, p, **args), chunk=512)
    assert _outputs(streamed) == _outputs(whole)
    assert line == lifting.summary(poses, lifting.pose_flags(poses, pose_3d), src, streamed)
    assert line.startswith(f"lifted {len(pixels)} pose(s) of 1 person/people")
    assert sorted(os.listdir(tmp_path)) == sorted(     # no temporary file left
        [os.path.basename(f) for f in (src, whole, streamed)]
        + [os.path.basename(lifting.ids_path(f)) for f in (whole, streamed) if f.endswith(".npy")])


def _peak_memory(args):
    tracemalloc.start()
    r = CliRunner().invoke(main, args)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert r.exit_code == 0, r.output
    return peak


@pytest.mark.parametrize("ext_in,ext_out", [(".npy", ".npy"), (".csv", ".csv"), (".npy", ".json")])
def test_memory_stays_flat_in_the_number_of_poses(tmp_path, sample_pixels, monkeypatch, ext_in, ext_out):
    """Twenty times the poses take about the same peak memory (tracemalloc sees NumPy's
    arrays): the file is held one chunk at a time."""
    monkeypatch.setattr(lifting, "CHUNK", 200)
    monkeypatch.setattr(lifting, "GEOMETRY_SAMPLE", 200)
    peaks = {}
    for n in (400, 8000):
        src, out = str(tmp_path / f"in{n}{ext_in}"), str(tmp_path / f"out{n}{ext_out}")
        _write_input(src, np.resize(sample_pixels, (n, 17, 2)), ext_in)
        peaks[n] = _peak_memory(["lift", "--input", src, "--output", out])
    assert peaks[8000] < 1.3 * peaks[400], peaks   # (the whole file at once: 17 MB, then 211 MB)
    n_out = len(np.load(out)) if ext_out == ".npy" else len(json.load(open(out))["frame"]) if ext_out == ".json" \
        else len(open(out).read().splitlines()) - 1
    assert n_out == 8000


def test_a_bad_pose_deep_in_a_stream_is_refused_in_one_line_and_nothing_written(tmp_path, sample_pixels,
                                                                               monkeypatch):
    monkeypatch.setattr(lifting, "CHUNK", 100)
    pixels = sample_pixels[:1000].copy()
    pixels[777, 3, 1] = np.inf
    degenerate = sample_pixels[:1000].copy()
    degenerate[555] = 420.0
    cases = [("inf.npy", pixels, "pose 777 has NaN or infinite coordinates"),
             ("inf.csv", pixels, "pose 777 has NaN or infinite coordinates"),
             ("flat.npy", degenerate, "pose 555 is degenerate")]
    for name, data, message in cases:
        src = str(tmp_path / name)
        _write_input(src, data, os.path.splitext(name)[1])
        for out in ("out.npy", "out.json", "out.csv"):
            r = CliRunner().invoke(main, ["lift", "--input", src, "--output", str(tmp_path / out)])
            assert r.exit_code == 1 and message in r.output and src in r.output, r.output
            assert len(r.output.strip().splitlines()) == 1 and "Traceback" not in r.output
    ragged = tmp_path / "ragged.csv"
    ragged.write_text("\n".join(",".join(["1.5"] * (34 if i != 321 else 33)) for i in range(400)))
    r = CliRunner().invoke(main, ["lift", "--input", str(ragged), "--output", str(tmp_path / "out.npy")])
    assert r.exit_code == 1 and "cannot read csv poses (pose 321 has 33 numbers" in r.output, r.output
    truncated = tmp_path / "truncated.npy"
    np.save(truncated, sample_pixels[:1000])
    truncated.write_bytes(truncated.read_bytes()[:-1000])
    r = CliRunner().invoke(main, ["lift", "--input", str(truncated), "--output", str(tmp_path / "out.npy")])
    assert r.exit_code == 1 and "the file ends before the 1000 poses" in r.output, r.output
    assert sorted(os.listdir(tmp_path)) == sorted([c[0] for c in cases] + ["ragged.csv", "truncated.npy"])


def test_a_large_input_shows_progress_and_other_inputs_are_read_whole(tmp_path, sample_pixels, monkeypatch):
    src, out = str(tmp_path / "in.npy"), str(tmp_path / "out.csv")
    np.save(src, sample_pixels[:2000])
    monkeypatch.setattr(lifting, "PROGRESS_BYTES", 1000)
    monkeypatch.setattr(lifting, "CHUNK", 500)
    r = CliRunner().invoke(main, ["lift", "--input", src, "--output", out])
    assert r.exit_code == 0 and "lifting" in r.stderr and "lifted 2000 pose(s)" in r.stdout, r.output
    monkeypatch.setattr(lifting, "PROGRESS_BYTES", 10 ** 12)
    r = CliRunner().invoke(main, ["lift", "--input", src, "--output", str(tmp_path / "out2.csv")])
    assert r.exit_code == 0 and "lifting" not in r.stderr, r.stderr
    assert lifting.open_stream(src) is not None
    # a detector's layout, keypoints with scores, JSON: read whole (read_poses)
    scored = str(tmp_path / "scored.npy")
    np.save(scored, np.concatenate([sample_pixels[:50], np.ones((50, 17, 1))], axis=2))
    as_json = tmp_path / "poses.json"
    as_json.write_text(json.dumps(sample_pixels[:50].tolist()))
    assert lifting.open_stream(src, "coco17") is None and lifting.open_stream(scored) is None
    assert lifting.open_stream(str(as_json)) is None
