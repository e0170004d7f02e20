"""Checkpoints in HDF5, one file per run, keyed by the shared naming scheme:

    params/G/torso/block0/fc1/W     weights and biases
    state/G/torso/block0/bn1/running_mean
    adam/m/G/torso/block0/fc1/W     Adam's moments
    attrs: config (JSON), epoch, adam_t, rng (JSON of the NumPy generator state)

Written to a temporary file and renamed, so a checkpoint is never half-written.
"""
import hashlib
import json
import os

import h5py
import numpy as np

from ..atomic import hdf5_file
from ..backend import to_device, to_numpy
from ..errors import TipsError
from ..method.model import build
from ..method.orientation import describe, orient, orientation_poses
from . import dataset

FORMAT = "tips-np checkpoint 1"
# the pretrained TIPS student shipped with the package (docs/results.md: how it was trained)
PRETRAINED = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
                          "data", "tips_student.h5")


class CheckpointError(TipsError):
    """Not a readable tips-np checkpoint; the message names the file."""


def save(path, config, params, state, adam=None, epoch=0, rng=None, extra=None, compress=False):
    """Write a checkpoint (built in memory, then written and renamed: a full disk
    leaves the previous one), carrying the checksum that load verifies. compress:
    the weights gzipped (a shipped lifter: about 9% smaller; h5py reads it as any)."""
    put = lambda f, name, v: (f.create_dataset(name, data=v, compression="gzip", compression_opts=9, shuffle=True)
                              if compress and v.size >= 1024 else f.create_dataset(name, data=v))
    with hdf5_file(path) as f:
        f.attrs["format"] = FORMAT
        f.attrs["config"] = json.dumps(config)
        f.attrs["epoch"] = epoch
        if rng is not None:
            f.attrs["rng"] = json.dumps(rng.bit_generator.state)
        if adam is not None:
            f.attrs["adam_t"] = adam.t
            for k, v in adam.state.items():
                f[f"adam/{k}"] = to_numpy(v)
        for group, arrays in (("params", params), ("state", state)):
            for k, v in arrays.items():
                put(f, f"{group}/{k}", to_numpy(v))
        for k, v in (extra or {}).items():
            f.attrs[k] = json.dumps(v)
        f.attrs["checksum"] = checksum(f)


def save_generator(path, config, params, state, epoch=0, extra=None):
    """The generator alone: its weights and batch-norm statistics (the 'G/' entries,
    and any 2D adapter's, 'A/': adapter.py) and the configuration; no optimiser, random
    state or discriminator. Written for a run's best weights (best.h5) and by export."""
    generator = lambda arrays: {k: v for k, v in arrays.items() if k.startswith(("G/", "A/"))}
    save(path, config, generator(params), generator(state), epoch=epoch, extra={"oriented": True, **(extra or {})},
         compress=True)


def export(src, dst):
    """Write the generator of a run (its weights, batch-norm statistics and
    configuration; no optimiser state, random state or discriminator) to `dst`, in
    float32: a small file that `lift` and `evaluate` load like a run. The data
    file it trained on is recorded in the attribute 'trained_on', not as the
    model's default data. Returns the number of parameters."""
    ckpt = load(src)
    gen, params, state = load_model(ckpt)
    config = {**ckpt["config"], "data": None, "teacher": None}
    as32 = lambda arrays: {k: np.asarray(to_numpy(v), np.float32) for k, v in arrays.items()}
    save_generator(dst, config, as32(params), as32(state), ckpt["epoch"],
                   {"trained_on": ckpt["config"].get("data"), "exported_from": ckpt["path"]})
    return gen.n_params()


def checksum(f):
    """SHA-256 of everything a checkpoint holds (every dataset's name, type, shape and
    bytes, every attribute but this one), so a file damaged in place, at the same
    size, is caught on loading."""
    digest = hashlib.sha256()
    names = []
    f.visititems(lambda k, v: names.append(k) if isinstance(v, h5py.Dataset) else None)
    for k in sorted(names):
        a = np.ascontiguousarray(f[k][()])
        digest.update(f"{k} {a.dtype.str} {a.shape}\n".encode())
        digest.update(a.tobytes())
    for k in sorted(f.attrs):
        if k != "checksum":
            v = f.attrs[k]
            digest.update(f"{k}={v.item() if hasattr(v, 'item') else v}\n".encode())
    return "sha256:" + digest.hexdigest()


def _read_group(f, name):
    out = {}
    if name in f:
        f[name].visititems(lambda k, v: out.__setitem__(k, v[()]) if isinstance(v, h5py.Dataset) else None)
    return out


def load(path):
    """Return a dict: config, params, state, adam (t and moments), epoch, rng_state, attrs."""
    if os.path.isdir(path):
        path = os.path.join(path, "checkpoint.h5")
    if not os.path.isfile(path):
        raise CheckpointError(f"{path}: checkpoint not found")
    try:
        f = h5py.File(path, "r")
    except OSError as e:
        raise CheckpointError(f"{path}: not a readable HDF5 file (truncated or not a checkpoint: {e})") from None
    with f:
        try:
            if f.attrs.get("format") != FORMAT:
                raise CheckpointError(f"{path}: not a tips-np checkpoint (attribute 'format' is missing)")
            if "checksum" in f.attrs and f.attrs["checksum"] != checksum(f):  # (older checkpoints carry none)
                raise CheckpointError(f"{path}: damaged checkpoint (its contents do not match the checksum it "
                                      f"was written with; if you edited it on purpose, delete its attribute "
                                      f"'checksum')")
            ckpt = {
                "path": path,
                "config": json.loads(f.attrs["config"]),
                "epoch": int(f.attrs["epoch"]),
                "rng_state": json.loads(f.attrs["rng"]) if "rng" in f.attrs else None,
                "adam_t": int(f.attrs.get("adam_t", 0)),
                "params": _read_group(f, "params"),
                "state": _read_group(f, "state"),
                "adam": _read_group(f, "adam"),
                "attrs": {k: f.attrs[k] for k in f.attrs},
            }
        except (KeyError, OSError, ValueError, TypeError, RuntimeError) as e:
            raise CheckpointError(f"{path}: damaged checkpoint ({e})") from None
    if not ckpt["params"]:
        raise CheckpointError(f"{path}: checkpoint holds no parameters")
    for group in ("params", "state"):
        for k, v in ckpt[group].items():
            if not np.all(np.isfinite(v)):
                raise CheckpointError(f"{path}: {'parameter' if group == 'params' else 'statistic'} '{k}' holds "
                                      f"NaN or infinite values (a diverged run or a damaged file); it cannot lift")
    return ckpt


def check_names(path, expected, found, what):
    """Refuse a checkpoint whose parameters do not match the model it claims to be."""
    missing, extra = sorted(set(expected) - set(found)), sorted(set(found) - set(expected))
    if missing:
        raise CheckpointError(f"{path}: {what} '{missing[0]}' is missing "
                              f"(a checkpoint of another representation?)")
    if extra:
        raise CheckpointError(f"{path}: unexpected {what} '{extra[0]}' "
                              f"(a checkpoint of another representation or version?)")
    for k, shape in expected.items():
        if found[k].shape != shape:
            raise CheckpointError(f"{path}: {what} '{k}' has shape {found[k].shape}, expected {shape}")


def load_model(ckpt, xp=np, echo=print):
    """(generator, params, state) of a loaded checkpoint, checked against its
    config (the generator's entries must match exactly; a discriminator is left
    out). A checkpoint saved before the depth sign was decided by anatomy is
    oriented now, on the shipped sample's training 2D poses, and `echo` says so."""
    gen, _ = build(ckpt["config"])
    params, state = gen.init(np.random.default_rng(0))
    found = {group: {k: v for k, v in ckpt[group].items() if k.startswith("G/")} for group in ("params", "state")}
    check_names(ckpt["path"], {k: v.shape for k, v in params.items()}, found["params"], "parameter")
    check_names(ckpt["path"], {k: v.shape for k, v in state.items()}, found["state"], "statistic")
    params, state = to_device(found["params"], xp), to_device(found["state"], xp)
    if not json.loads(ckpt["attrs"].get("oriented", "false")):
        report = orient(gen, params, state, orientation_poses(dataset.load(None, "train").pose_2d))
        echo(f"{ckpt['path']} predates the depth-sign decision; oriented by anatomy: {describe(report)}")
    return gen, params, state
