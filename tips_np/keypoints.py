"""2D keypoints as detectors write them, turned into the 17 Human3.6M joints.

Layouts read (by `lift --format`, or recognised from the file):
    h36m          today's formats: the 17 joints (or 16 keypoints) in skeleton.JOINTS order
    coco17        COCO's 17 keypoints as an array (N, 17, 2), or (N, 17, 3) with scores
    mmpose        MMPose inferencer JSON: instances[].keypoints and keypoint_scores, per frame
    coco-results  COCO results JSON: [{"image_id", "keypoints": [x, y, score, ...] (17 x 3)}]
    openpose      OpenPose JSON: people[].pose_keypoints_2d, BODY_25 or COCO-18 (per frame)
    alphapose     AlphaPose JSON: COCO results with file-name image ids and "idx" track ids

COCO-17 to Human3.6M, the mapping MMPose's pose-lifting demo and MotionBERT use:
root = mid(hips), thorax = mid(shoulders), spine = mid(root, thorax), neck/nose = nose,
head = mid(eyes), hips, knees, ankles, shoulders, elbows and wrists one to one. A joint
made from several keypoints is missing when any of them is, and its score is their lowest.
These are not Human3.6M's markers (its "head" sits higher, its "spine" is a marker on the
back), so expect a larger error than on Human3.6M's own joints.
"""
from typing import NamedTuple

import numpy as np

from .errors import TipsError

FORMATS = ("auto", "h36m", "coco17", "mmpose", "coco-results", "openpose", "alphapose")

COCO17 = ["nose", "left_eye", "right_eye", "left_ear", "right_ear", "left_shoulder", "right_shoulder",
          "left_elbow", "right_elbow", "left_wrist", "right_wrist", "left_hip", "right_hip",
          "left_knee", "right_knee", "left_ankle", "right_ankle"]
# OpenPose's layouts, as indices of the COCO-17 keypoints in COCO-17 order
OPENPOSE_TO_COCO17 = {
    25: [0, 16, 15, 18, 17, 5, 2, 6, 3, 7, 4, 12, 9, 13, 10, 14, 11],   # BODY_25
    18: [0, 15, 14, 17, 16, 5, 2, 6, 3, 7, 4, 11, 8, 12, 9, 13, 10],    # COCO-18
}
# each Human3.6M joint as the COCO-17 keypoints it averages (skeleton.JOINTS order);
# spine (7) averages the root and the thorax, made first
C = {name: i for i, name in enumerate(COCO17)}
H36M_FROM_COCO17 = [
    ("left_hip", "right_hip"), ("right_hip",), ("right_knee",), ("right_ankle",), ("left_hip",),
    ("left_knee",), ("left_ankle",), None, ("left_shoulder", "right_shoulder"), ("nose",),
    ("left_eye", "right_eye"), ("left_shoulder",), ("left_elbow",), ("left_wrist",),
    ("right_shoulder",), ("right_elbow",), ("right_wrist",),
]


class KeypointError(TipsError):
    """A detector file that cannot be read as the layout it claims."""


class Detections(NamedTuple):
    """Keypoints of one file: xy (N, J, 2) pixels, score (N, J) (1 where the format
    has none), and each row's frame and person ids (N,)."""
    xy: np.ndarray
    score: np.ndarray
    frame: np.ndarray
    person: np.ndarray


def coco17_to_h36m(xy, score):
    """(N, 17, 2) COCO-17 keypoints and (N, 17) scores -> the 17 Human3.6M joints."""
    out_xy = np.zeros((len(xy), 17, 2))
    out_score = np.zeros((len(xy), 17))
    for j, sources in enumerate(H36M_FROM_COCO17):
        if sources is not None:
            idx = [C[s] for s in sources]
            out_xy[:, j] = xy[:, idx].mean(axis=1)
            out_score[:, j] = score[:, idx].min(axis=1)
    out_xy[:, 7] = (out_xy[:, 0] + out_xy[:, 8]) / 2            # spine = mid(root, thorax)
    out_score[:, 7] = np.minimum(out_score[:, 0], out_score[:, 8])
    return out_xy, out_score


def _triples(flat, path, where, count=None):
    """[x, y, score, ...] -> ((J, 2), (J,)), checked."""
    arr = np.asarray(flat, dtype=np.float64)
    if arr.ndim != 1 or arr.size % 3 or (count is not None and arr.size != 3 * count):
        expected = f"{3 * count}" if count else "a multiple of 3"
        raise KeypointError(f"{path}: {where}: expected {expected} numbers (x, y, score per keypoint), "
                            f"got {arr.size}")
    arr = arr.reshape(-1, 3)
    return arr[:, :2], arr[:, 2]


def _stack(rows, path, layout):
    if not rows:
        raise KeypointError(f"{path}: no people in the {layout} file")
    xy, score, frame, person = zip(*rows)
    return Detections(np.stack(xy), np.stack(score), np.array(frame), np.array(person))


def read_mmpose(data, path):
    """One frame ({"instances": [...]} or a list of instances) or a list of frames."""
    if isinstance(data, dict):
        data = [data]
    frames = data if data and isinstance(data[0], dict) and "instances" in data[0] else [{"instances": data}]
    rows = []
    for f, frame in enumerate(frames):
        fid = frame.get("frame_id", f)
        for p, inst in enumerate(frame.get("instances", [])):
            where = f"frame {fid}, instance {p}"
            try:
                xy = np.asarray(inst["keypoints"], dtype=np.float64)
                score = np.asarray(inst.get("keypoint_scores", np.ones(len(xy))), dtype=np.float64)
            except (KeyError, TypeError, ValueError) as e:
                raise KeypointError(f"{path}: {where}: expected 'keypoints' [[x, y], ...] and "
                                    f"'keypoint_scores' ({e})") from None
            if xy.shape != (17, 2) or score.shape != (17,):
                raise KeypointError(f"{path}: {where}: expected 17 COCO keypoints of (x, y) and 17 scores, "
                                    f"got shapes {xy.shape} and {score.shape}")
            rows.append((xy, score, fid, inst.get("track_id", p)))
    return _stack(rows, path, "MMPose")


def read_coco_results(data, path, layout="coco-results"):
    """COCO results (or AlphaPose): one entry per person, grouped into frames by image_id."""
    frames, counts, rows = {}, {}, []
    for i, entry in enumerate(data):
        try:
            image = entry["image_id"]
            xy, score = _triples(entry["keypoints"], path, f"entry {i} ('keypoints')", 17)
        except (KeyError, TypeError) as e:
            raise KeypointError(f"{path}: entry {i}: expected 'image_id' and 'keypoints' ({e})") from None
        fid = frames.setdefault(image, len(frames))
        person = entry.get("idx", counts.get(fid, 0))   # else the person's place in its frame
        counts[fid] = counts.get(fid, 0) + 1
        if isinstance(person, list):   # AlphaPose's tracker may write [id]
            person = person[0]
        rows.append((xy, score, fid, int(person)))
    return _stack(rows, path, layout)


def read_openpose(data, path):
    """One frame ({"people": [...]}) or a list of frames; BODY_25 or COCO-18."""
    frames = data if isinstance(data, list) else [data]
    rows = []
    for f, frame in enumerate(frames):
        for p, person in enumerate(frame.get("people", [])):
            where = f"frame {f}, person {p} ('pose_keypoints_2d')"
            if "pose_keypoints_2d" not in person:
                raise KeypointError(f"{path}: frame {f}, person {p}: no 'pose_keypoints_2d'")
            xy, score = _triples(person["pose_keypoints_2d"], path, where)
            if len(xy) not in OPENPOSE_TO_COCO17:
                raise KeypointError(f"{path}: {where}: expected BODY_25 (75 numbers) or COCO-18 (54), "
                                    f"got {3 * len(xy)}")
            idx = OPENPOSE_TO_COCO17[len(xy)]
            pid = person.get("person_id", -1)
            pid = pid[0] if isinstance(pid, list) else pid
            rows.append((xy[idx], score[idx], f, p if pid in (-1, None) else int(pid)))
    return _stack(rows, path, "OpenPose")


def read_coco17_array(arr, path):
    """(17, 2|3) or (N, 17, 2|3) COCO-17 keypoints (scores 1 where absent)."""
    arr = np.asarray(arr, dtype=np.float64)
    if arr.ndim == 2:
        arr = arr[None]
    if arr.ndim != 3 or arr.shape[1] != 17 or arr.shape[2] not in (2, 3):
        raise KeypointError(f"{path}: COCO-17 keypoints should have shape (N, 17, 2) or (N, 17, 3) "
                            f"(x, y[, score]); got {arr.shape}")
    score = arr[..., 2] if arr.shape[2] == 3 else np.ones(arr.shape[:2])
    return Detections(arr[..., :2], score, np.arange(len(arr)), np.zeros(len(arr), int))


def detect_json_layout(data):
    """The layout of parsed JSON, or 'h36m' when it is none of the detectors'."""
    first = data[0] if isinstance(data, list) and data else data
    if isinstance(first, dict):
        if "people" in first:
            return "openpose"
        if "instances" in first or "keypoint_scores" in first:
            return "mmpose"
        if "keypoints" in first and "image_id" in first:
            return "alphapose" if isinstance(first["image_id"], str) else "coco-results"
    return "h36m"


READERS = {"mmpose": read_mmpose, "coco-results": read_coco_results, "openpose": read_openpose,
           "alphapose": lambda data, path: read_coco_results(data, path, "alphapose")}


def to_h36m(det, min_score):
    """Detections of COCO-17 keypoints -> (xy (N, 17, 2) with NaN where a joint is
    missing, frame, person). Missing: a score below min_score, or at (0, 0) as
    OpenPose writes an undetected point."""
    xy, score = coco17_to_h36m(det.xy, np.where(np.all(det.xy == 0, axis=-1), 0.0, det.score))
    xy[score < min_score] = np.nan
    return xy, det.frame, det.person
