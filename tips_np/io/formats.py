"""Reading the files 2D detectors write (docs/formats.md): each reader returns
Detections, the keypoints as the file holds them, with the file's own frame and
person ids; keypoints.py maps them into the 17 Human3.6M joints and tracking.py
keeps the people apart.

    OpenPose      {"people": [{"pose_keypoints_2d" (or 1.0's "pose_keypoints"): [x, y, c, ...]}]}
                  per frame: one file, a list of frames, or a folder of per-frame files
                  (--input DIR; frame id from the file name); BODY_25, BODY_25B or COCO-18
    AlphaPose     [{"image_id": "12.jpg", "keypoints": [...], "idx": track id}]: COCO-17,
                  Halpe-26 (or the body of Halpe-136 / COCO-WholeBody)
    MMPose        inferencer output: a list of instances ({"keypoints", "keypoint_scores",
                  "bbox"}), a list of frames ({"frame_id", "instances"}), or --save-predictions'
                  {"meta_info", "instance_info"}
    COCO          annotation files {"annotations": [{"image_id", "keypoints", "num_keypoints"}]},
                  and results [{"image_id": 42, "keypoints": [...], "score"}]: images, not a video
    VideoPose3D   data_2d_custom_*.npz: positions_2d[video]["custom"] = [(T, 17, 2)], metadata
    MPII          3d-pose-baseline's StackedHourglass/*.h5 ("poses" (T, 16, 2)), or arrays
"""
import glob
import json
import os
import pickle
import re
import zipfile
from typing import NamedTuple

import numpy as np

from .keypoints import KEYPOINT_SETS, KeypointError


class Detections(NamedTuple):
    """The keypoints of one file, as it holds them.
    xy (N, K, 2) pixels; score (N, K) (1 where the format has none: see notes);
    frame (N,): the file's own frame ids (numbers or names); time (N,) int: their
    order in time (the number in a name where there is one); person (N,): the file's
    person or track ids, -1 where it has none; keypoints: the set (KEYPOINT_SETS)
    or 'body25|body25b' where the geometry must decide; video: frames of a video
    (tracked and filled over time) or unrelated images; notes: lines for the user;
    skipped: a warning per person left out while reading."""
    xy: np.ndarray
    score: np.ndarray
    frame: np.ndarray
    time: np.ndarray
    person: np.ndarray
    keypoints: str
    video: bool
    notes: list
    skipped: list = []


def refuse_3d(path, where):
    raise KeypointError(f"{path}: {where} holds 3D keypoints (x, y, z): lift takes 2D keypoints "
                        f"(x, y[, score]) and makes the 3D itself")


def frame_number(name, default):
    """The last number in a frame's name ('video_000000000012_keypoints.json' -> 12)."""
    found = re.findall(r"\d+", os.path.basename(str(name)))
    return int(found[-1]) if found else default


def _stack(rows, path, layout, keypoints, video, notes, time=None):
    """rows: (xy, score, frame id, person id) -> Detections."""
    if not rows:
        raise KeypointError(f"{path}: no people in the {layout} file")
    xy, score, frame, person = zip(*rows)
    frame = np.array(frame, dtype=object)
    if time is None:
        order = {f: i for i, f in enumerate(dict.fromkeys(frame))}
        time = np.array([order[f] for f in frame])
    return Detections(np.stack(xy).astype(np.float64), np.stack(score).astype(np.float64), frame,
                      np.asarray(time, dtype=np.int64), np.array(person, dtype=object), keypoints, video, notes)


def _triples(flat, path, where):
    """[x, y, score, ...] -> ((K, 2), (K,)), checked."""
    try:
        arr = np.asarray(flat, dtype=np.float64)
    except (TypeError, ValueError):
        arr = np.zeros(1)
    if arr.ndim != 1 or arr.size % 3 or arr.size == 0:
        raise KeypointError(f"{path}: {where}: expected x, y, score per keypoint (a flat list of a multiple "
                            f"of 3 numbers), got {arr.size} values")
    arr = arr.reshape(-1, 3)
    return arr[:, :2], arr[:, 2]


# how many keypoints -> the set, for files of flat triples (AlphaPose, COCO); the whole-body
# sets start with a body set: Halpe-136 with Halpe-26, COCO-WholeBody (133) with COCO-17
BY_COUNT = {17: ("coco17", 17), 26: ("halpe26", 26), 136: ("halpe26", 26), 133: ("coco17", 17)}


def _set_by_count(n, path, where, counts=BY_COUNT):
    if n not in counts:
        raise KeypointError(f"{path}: {where}: {n} keypoints; expected "
                            f"{' or '.join(f'{k} ({v[0]})' for k, v in counts.items())}")
    return counts[n]


def track_id(value):
    """A person id as files write it: absent, a number, "3", [3], [[3.0], [3.0]] -> int, str or -1."""
    while isinstance(value, (list, tuple)):
        if not value:
            return -1
        value = value[0]
    if value is None:
        return -1
    if isinstance(value, str):
        return int(value) if value.strip().lstrip("-").isdigit() else value
    if isinstance(value, (int, float)) and float(value).is_integer():
        return int(value)
    return str(value)


# --- OpenPose -----------------------------------------------------------------------------
OPENPOSE_COUNTS = {25: ("body25|body25b", 25), 18: ("coco18", 18), 17: ("coco17", 17)}


def read_openpose(frames, path, names=None, forced=None):
    """frames: a list of {"people": [...]} (names: each frame's file name, for its id)."""
    rows = []
    for f, frame in enumerate(frames):
        fname = names[f] if names else None
        fid = frame_number(fname, f) if names else f
        where_f = f"{fname}" if fname else f"frame {fid}"
        if not isinstance(frame, dict) or "people" not in frame:
            raise KeypointError(f"{path}: {where_f}: expected an OpenPose frame {{'people': [...]}}")
        for p, person in enumerate(frame["people"]):
            key = next((k for k in ("pose_keypoints_2d", "pose_keypoints") if k in person), None)
            if key is None:
                if "pose_keypoints_3d" in person:
                    refuse_3d(path, f"{where_f}, person {p}: 'pose_keypoints_3d'")
                raise KeypointError(f"{path}: {where_f}, person {p}: no 'pose_keypoints_2d' "
                                    f"(or OpenPose 1.0's 'pose_keypoints')")
            where = f"{where_f}, person {p} ('{key}')"
            if isinstance(person[key], list) and not person[key]:
                continue                      # OpenPose (and tools after it) write empty lists for nobody
            xy, score = _triples(person[key], path, where)
            if not np.any(score > 0):
                continue
            rows.append((xy, score, fid, track_id(person.get("person_id", -1)), where))
    # the file's keypoint count is its people's usual one; a person with another is left out
    counts = [len(r[0]) for r in rows]
    usual = max(set(counts), key=counts.count) if rows else 18
    kset, _ = _set_by_count(usual, path, rows[counts.index(usual)][4] if rows else "people", OPENPOSE_COUNTS)
    skipped = [f"{path}: {r[4]}: {len(r[0])} keypoints where the file's people have {usual}"
               for r in rows if len(r[0]) != usual]
    rows = [r[:4] for r in rows if len(r[0]) == usual]
    if forced in ("body25", "body25b") and kset == "body25|body25b":
        kset = forced
    elif forced in ("body25", "body25b", "coco18", "coco17") and forced != kset and kset != "body25|body25b":
        raise KeypointError(f"{path}: --format {forced}, but the file holds {kset} keypoints")
    time = [r[2] for r in rows] if names else None
    return _stack(rows, path, "OpenPose", kset, True, [], time)._replace(skipped=skipped)


def read_openpose_folder(folder, forced=None):
    """A folder of OpenPose's per-frame files (*.json), in file-name order."""
    files = sorted(glob.glob(os.path.join(folder, "*.json")))
    if not files:
        raise KeypointError(f"{folder}: a folder must hold OpenPose's per-frame .json files; none found")
    numbers = [frame_number(f, None) for f in files]
    if None in numbers or len(set(numbers)) != len(numbers):
        numbers = list(range(len(files)))     # no frame numbers in the names: the names' order
        names = None
    else:
        files = [f for _, f in sorted(zip(numbers, files))]
        names = files
    frames = []
    for f in files:
        try:
            with open(f) as fh:
                frames.append(json.load(fh))
        except (ValueError, OSError) as e:
            raise KeypointError(f"{f}: cannot read json ({e})") from None
    det = read_openpose(frames, folder, [os.path.basename(f) for f in names] if names else None, forced)
    return det._replace(notes=det.notes + [f"{len(files)} frame files"])


# --- COCO results, AlphaPose, COCO annotations --------------------------------------------
def read_coco_results(data, path, layout="coco-results"):
    """A list of {"image_id", "keypoints": [x, y, score, ...]}: COCO results (images) or
    AlphaPose (a video where every image id holds a frame number)."""
    rows, sets, count = [], set(), {}
    for i, entry in enumerate(data):
        if not isinstance(entry, dict) or "image_id" not in entry or "keypoints" not in entry:
            raise KeypointError(f"{path}: entry {i}: expected 'image_id' and 'keypoints'")
        xy, score = _triples(entry["keypoints"], path, f"entry {i} ('keypoints')")
        kset, n = _set_by_count(len(xy), path, f"entry {i} ('keypoints')")
        sets.add(kset)
        image = entry["image_id"]
        place = count[image] = count.get(image, -1) + 1
        person = track_id(entry.get("idx")) if layout == "alphapose" else place
        rows.append((xy[:n], score[:n], image, person))
    if len(sets) > 1:
        raise KeypointError(f"{path}: entries of different keypoint sets ({', '.join(sorted(sets))})")
    numbers = [frame_number(r[2], None) for r in rows]
    video = layout == "alphapose" and None not in numbers
    return _stack(rows, path, layout, sets.pop() if sets else "coco17", video, [],
                  numbers if video else None)


def read_coco_annotations(data, path):
    """{"images", "annotations": [{"image_id", "keypoints", "num_keypoints", "id"}], "categories"}:
    v = 0 (not labelled) is unseen, v = 1 (labelled, hidden) and 2 (visible) seen."""
    rows, empty, sets = [], 0, set()
    for i, ann in enumerate(data.get("annotations") or []):
        if not isinstance(ann, dict) or "image_id" not in ann:
            raise KeypointError(f"{path}: annotations[{i}]: expected 'image_id'")
        if "keypoints" not in ann or not ann.get("num_keypoints", 1):
            empty += 1                        # a box without keypoints (crowds, small people)
            continue
        xy, v = _triples(ann["keypoints"], path, f"annotations[{i}] ('keypoints')")
        kset, n = _set_by_count(len(xy), path, f"annotations[{i}] ('keypoints')")
        sets.add(kset)
        rows.append((xy[:n], (v[:n] > 0).astype(float), ann["image_id"], track_id(ann.get("id", i))))
    notes = [f"{empty} annotation(s) without keypoints left out"] if empty else []
    if not rows:
        raise KeypointError(f"{path}: no annotation with keypoints in the COCO file")
    return _stack(rows, path, "COCO annotation", sets.pop(), False, notes)


# --- MMPose ------------------------------------------------------------------------------
MMPOSE_SETS = {"coco": "coco17", "halpe": "halpe26", "h36m": "h36m", "mpii": "mpii"}


def read_mmpose(data, path):
    """Inferencer output: one image's instances, a list of frames, or --save-predictions'
    {"meta_info", "instance_info"}. Scores: keypoint_scores, in every instance or in none
    (then every keypoint is taken as seen, and the user is told)."""
    meta = {}
    if isinstance(data, dict) and "instance_info" in data:
        meta, data = data.get("meta_info") or {}, data["instance_info"]
    if isinstance(data, dict):
        data = [data]
    video = bool(data) and isinstance(data[0], dict) and "instances" in data[0]
    frames = data if video else [{"frame_id": 0, "instances": data}]
    rows, no_scores, with_scores = [], [], 0
    for f, frame in enumerate(frames):
        fid = frame.get("frame_id", f) if isinstance(frame, dict) else f
        for p, inst in enumerate(frame.get("instances") or [] if isinstance(frame, dict) else []):
            where = f"frame {fid}, instance {p}"
            try:
                xy = np.asarray(inst["keypoints"], dtype=np.float64)
            except (KeyError, TypeError, ValueError) as e:
                raise KeypointError(f"{path}: {where}: expected 'keypoints' [[x, y], ...] ({e})") from None
            if xy.ndim == 2 and xy.shape[1] == 3:
                refuse_3d(path, f"{where}: 'keypoints'")
            if xy.ndim != 2 or xy.shape[1] != 2:
                raise KeypointError(f"{path}: {where}: expected 'keypoints' [[x, y], ...], got shape {xy.shape}")
            if "keypoint_scores" in inst:
                score = np.asarray(inst["keypoint_scores"], dtype=np.float64).reshape(-1)
                with_scores += 1
            else:
                score = np.ones(len(xy))
                no_scores.append(where)
            if score.shape != (len(xy),):
                raise KeypointError(f"{path}: {where}: {len(xy)} keypoints but {score.size} keypoint_scores")
            rows.append((xy, score, fid, track_id(inst.get("track_id", -1))))
    if no_scores and with_scores:
        raise KeypointError(f"{path}: {no_scores[0]}: no 'keypoint_scores' where other instances have them")
    counts = {len(r[0]) for r in rows}
    if len(counts) > 1:
        raise KeypointError(f"{path}: instances with different numbers of keypoints ({sorted(counts)})")
    n = counts.pop() if counts else 17
    name = str(meta.get("dataset_name", "")).lower()
    kset = MMPOSE_SETS.get(name) or _set_by_count(n, path, "instances' 'keypoints'")[0]
    if KEYPOINT_SETS[kset] and n < len(KEYPOINT_SETS[kset]):
        raise KeypointError(f"{path}: meta_info names {name!r} ({len(KEYPOINT_SETS[kset])} keypoints), "
                            f"but instances have {n}")
    keep = len(KEYPOINT_SETS[kset])
    rows = [(xy[:keep], s[:keep], f, p) for xy, s, f, p in rows]
    notes = ["no keypoint_scores in the file: every keypoint taken as seen"] if no_scores else []
    return _stack(rows, path, "MMPose", kset, video, notes, [r[2] for r in rows] if video else None)


# --- VideoPose3D's custom .npz (restricted unpickling) -------------------------------------
class _ArraysOnly(pickle.Unpickler):
    """Unpickles dicts, lists and NumPy arrays, nothing else: VideoPose3D pickles its
    positions_2d dictionary into the .npz, and an arbitrary pickle could run code."""
    ALLOWED = {("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
               ("numpy", "ndarray"), ("numpy", "dtype"), ("numpy.core.multiarray", "scalar"),
               ("numpy._core.multiarray", "scalar"), ("builtins", "dict"), ("builtins", "list"),
               ("collections", "OrderedDict")}

    def find_class(self, module, name):
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"refusing to unpickle {module}.{name}")
        return super().find_class(module, name)


def _load_object_array(zf, name):
    with zf.open(name + ".npy") as f:
        major, _ = np.lib.format.read_magic(f)
        read_header = np.lib.format.read_array_header_1_0 if major == 1 else np.lib.format.read_array_header_2_0
        shape, _, dtype = read_header(f)
        if dtype.hasobject:
            return _ArraysOnly(f, encoding="latin1").load()
        return np.frombuffer(f.read(), dtype=dtype).reshape(shape)


def read_videopose3d(path):
    """positions_2d[video][camera or 'custom'] = [(T, J, 2) arrays]; metadata's layout_name."""
    try:
        with zipfile.ZipFile(path) as zf:
            names = {n[:-4] for n in zf.namelist() if n.endswith(".npy")}
            if "positions_3d" in names and "positions_2d" not in names:
                refuse_3d(path, "'positions_3d'")
            if "positions_2d" not in names:
                raise KeypointError(f"{path}: expected VideoPose3D's 'positions_2d' (and 'metadata'); "
                                    f"found {', '.join(sorted(names)) or 'nothing'}")
            positions = _load_object_array(zf, "positions_2d")
            meta = _load_object_array(zf, "metadata") if "metadata" in names else {}
    except (zipfile.BadZipFile, pickle.UnpicklingError, ValueError, EOFError, OSError) as e:
        raise KeypointError(f"{path}: cannot read the .npz ({e})") from None
    positions = positions.item() if isinstance(positions, np.ndarray) and positions.dtype == object else positions
    meta = meta.item() if isinstance(meta, np.ndarray) and meta.dtype == object else meta
    if not isinstance(positions, dict):
        raise KeypointError(f"{path}: 'positions_2d' should be a dictionary video -> {{'custom': [arrays]}}")
    layout = str((meta or {}).get("layout_name", "coco")).lower()
    kset = {"coco": "coco17", "h36m": "h36m", "mpii": "mpii"}.get(layout)
    if kset is None:
        raise KeypointError(f"{path}: metadata layout_name {layout!r}: expected 'coco', 'h36m' or 'mpii'")
    rows = []
    for video, views in positions.items():
        for view, arrays in (views.items() if isinstance(views, dict) else [("custom", views)]):
            for c, arr in enumerate(arrays if isinstance(arrays, list) else [arrays]):
                arr = np.asarray(arr, dtype=np.float64)
                where = f"positions_2d[{video!r}][{view!r}][{c}]"
                if arr.ndim == 3 and arr.shape[2] == 3:
                    refuse_3d(path, where)
                if arr.ndim != 3 or arr.shape[1:] != (len(KEYPOINT_SETS[kset]), 2):
                    raise KeypointError(f"{path}: {where}: expected (T, {len(KEYPOINT_SETS[kset])}, 2) "
                                        f"({layout} keypoints), got {arr.shape}")
                person = str(video) if view == "custom" and c == 0 else f"{video}/{view}/{c}"
                rows += [(p, np.ones(len(p)), t, person) for t, p in enumerate(arr)]
    return _stack(rows, path, "VideoPose3D", kset, True, [], [r[2] for r in rows])


# --- arrays and HDF5 ----------------------------------------------------------------------
def read_h5(path):
    """3d-pose-baseline's StackedHourglass/*.h5: 'poses' (T, 16, 2), MPII's keypoints."""
    import h5py
    try:
        with h5py.File(path, "r") as f:
            if "poses" not in f:
                if "3D_positions" in f:
                    refuse_3d(path, "'3D_positions'")
                raise KeypointError(f"{path}: expected a dataset 'poses' (T, 16, 2) (3d-pose-baseline's "
                                    f"Stacked Hourglass detections); found {', '.join(f) or 'nothing'}")
            arr = np.asarray(f["poses"][()], dtype=np.float64)
    except OSError as e:
        raise KeypointError(f"{path}: not a readable HDF5 file ({e})") from None
    if arr.ndim != 3 or arr.shape[1:] != (16, 2):
        raise KeypointError(f"{path}: 'poses' should have shape (T, 16, 2) (MPII's keypoints), got {arr.shape}")
    return array_detections(arr, np.ones(arr.shape[:2]), "mpii")


def array_detections(xy, score, kset):
    """One person's frames (N, K, 2), frames 0..N-1."""
    n = len(xy)
    return Detections(xy, score, np.arange(n).astype(object), np.arange(n), np.zeros(n, dtype=object),
                      kset, True, [])


def detect_json_layout(data):
    """The layout of parsed JSON, or 'h36m' when it is none of the detectors'."""
    if isinstance(data, dict):
        if "people" in data:
            return "openpose"
        if "instance_info" in data or "instances" in data:
            return "mmpose"
        if "annotations" in data:
            return "coco"
        return "h36m"
    first = data[0] if isinstance(data, list) and data else None
    if isinstance(first, dict):
        if "people" in first:
            return "openpose"
        if "instances" in first:
            return "mmpose"
        if "keypoints" in first and "image_id" in first:
            alpha = "idx" in first or "box" in first or isinstance(first["image_id"], str)
            return "alphapose" if alpha else "coco-results"
        if "keypoints" in first:
            return "mmpose"
    return "h36m"


def read_json(data, path, fmt):
    """Detections of a parsed detector JSON file of layout fmt."""
    if fmt in ("openpose", "body25", "body25b", "coco18"):
        frames = data if isinstance(data, list) else [data]
        return read_openpose(frames, path, forced=None if fmt == "openpose" else fmt)
    if fmt == "coco":
        if not isinstance(data, dict) or "annotations" not in data:
            raise KeypointError(f"{path}: --format coco expects a COCO annotation file {{'annotations': [...]}}")
        return read_coco_annotations(data, path)
    if fmt in ("coco-results", "alphapose"):
        if not isinstance(data, list):
            raise KeypointError(f"{path}: --format {fmt} expects a list of {{'image_id', 'keypoints'}}")
        return read_coco_results(data, path, fmt)
    if fmt == "mmpose":
        return read_mmpose(data, path)
    raise KeypointError(f"{path}: --format {fmt} is not a JSON layout")
