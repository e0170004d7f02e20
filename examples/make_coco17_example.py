"""Make examples/coco17_walking.json: SYNTHETIC COCO-17 keypoints in MMPose's
inferencer layout, made from the shipped sample's ground-truth 2D poses (subject 9,
Walking, camera 54138969, its first 12 sampled frames, 64 video frames apart).

Human3.6M has no eyes or ears: they are placed about its head joint, along the
shoulders' direction (eyes 0.12, ears 0.25 of the shoulder width to each side).
Scores are 0.9, except the left wrist of frame 5 (0.1, below lift's --min-score,
so lift fills it in from frames 4 and 6). Run from the repository root:
    python examples/make_coco17_example.py
"""
import json
import os

import h5py
import numpy as np

from tips_np.method.skeleton import JOINTS

HERE = os.path.dirname(os.path.abspath(__file__))
J = {name: i for i, name in enumerate(JOINTS)}
ONE_TO_ONE = {"left_shoulder": "left_shoulder", "right_shoulder": "right_shoulder", "left_elbow": "left_elbow",
              "right_elbow": "right_elbow", "left_wrist": "left_wrist", "right_wrist": "right_wrist",
              "left_hip": "left_hip", "right_hip": "right_hip", "left_knee": "left_knee",
              "right_knee": "right_knee", "left_ankle": "left_ankle", "right_ankle": "right_ankle"}
COCO17 = ["nose", "left_eye", "right_eye", "left_ear", "right_ear", "left_shoulder", "right_shoulder",
          "left_elbow", "right_elbow", "left_wrist", "right_wrist", "left_hip", "right_hip",
          "left_knee", "right_knee", "left_ankle", "right_ankle"]


def coco17(pose):
    """(17, 2) Human3.6M pixels -> (17, 2) COCO-17 pixels."""
    across = pose[J["left_shoulder"]] - pose[J["right_shoulder"]]   # towards the person's left
    head = pose[J["head"]]
    out = {"nose": pose[J["neck"]], "left_eye": head + 0.12 * across, "right_eye": head - 0.12 * across,
           "left_ear": head + 0.25 * across, "right_ear": head - 0.25 * across}
    out.update({k: pose[J[v]] for k, v in ONE_TO_ONE.items()})
    return np.array([out[k] for k in COCO17])


def main():
    with h5py.File(os.path.join(HERE, "..", "data", "h36m_sample.h5"), "r") as f:
        walking = list(f.attrs["actions"]).index("Walking")
        keep = (f["subject"][()] == 9) & (f["action"][()] == walking) & (f["camera"][()] == 0)
        take = f["take"][()][keep][0]
        keep &= f["take"][()] == take
        pixels, frames = f["pose_2d"][()][keep][:12], f["frame"][()][keep][:12]
    result = []
    for i, (pose, frame) in enumerate(zip(pixels, frames)):
        scores = np.full(17, 0.9)
        if i == 5:
            scores[COCO17.index("left_wrist")] = 0.1
        result.append({"frame_id": int(frame), "instances": [{
            "keypoints": np.round(coco17(pose.astype(np.float64)), 2).tolist(),
            "keypoint_scores": scores.tolist()}]})
    with open(os.path.join(HERE, "coco17_walking.json"), "w") as f:
        json.dump(result, f)


if __name__ == "__main__":
    main()
