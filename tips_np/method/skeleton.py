"""The 17-joint Human3.6M skeleton used by lifting papers, and the papers' parts.

Poses are arrays (N, 17, 2|3): joint 0 is the root (hip midpoint, at the origin
once root-centred), joints 1..16 are the N = 16 keypoints the networks see.
"""
# Index of each of the 17 joints in Human3.6M's 32 (docs/data.md).
H36M_INDEX = [0, 1, 2, 3, 6, 7, 8, 12, 13, 14, 15, 17, 18, 19, 25, 26, 27]

JOINTS = ["hip", "right_hip", "right_knee", "right_ankle", "left_hip", "left_knee",
          "left_ankle", "spine", "thorax", "neck", "head", "left_shoulder", "left_elbow",
          "left_wrist", "right_shoulder", "right_elbow", "right_wrist"]
ROOT = 0
KEYPOINTS = list(range(1, 17))  # what the networks lift: every joint but the root
# Each joint's mirror image: left and right swapped (a pose seen in a mirror, x -> -x)
MIRROR = [JOINTS.index(j.replace("left", "right") if j.startswith("left") else j.replace("right", "left"))
          for j in JOINTS]
# The 16 bones (parent, child) between the 17 joints: what pictures draw, what plausibility measures
BONES = [(0, 1), (1, 2), (2, 3), (0, 4), (4, 5), (5, 6), (0, 7), (7, 8), (8, 9), (9, 10),
         (8, 11), (11, 12), (12, 13), (8, 14), (14, 15), (15, 16)]

# Parts as joint indices. TIPS: torso = spine, thorax, neck, head, shoulders,
# elbows, wrists (10); legs = hips, knees, ankles (6), the root omitted.
PARTS = {
    "full": KEYPOINTS,
    "torso": [7, 8, 9, 10, 11, 12, 13, 14, 15, 16],
    "legs": [1, 2, 3, 4, 5, 6],
    # the five limbs of the representations paper (3 or 4 keypoints each)
    "larm": [11, 12, 13],
    "rarm": [14, 15, 16],
    "spine": [7, 8, 9, 10],
    "lleg": [4, 5, 6],
    "rleg": [1, 2, 3],
}
# In the five-limb split the 'torso' limb is spine, thorax, neck and head.
FIVE_LIMBS = ["larm", "rarm", "spine", "lleg", "rleg"]

# The 15 Human3.6M actions, named as in the papers' tables; file names differ.
ACTIONS = ["Directions", "Discussion", "Eating", "Greeting", "Phoning", "TakingPhoto",
           "Posing", "Purchases", "Sitting", "SittingDown", "Smoking", "Waiting",
           "Walking", "WalkingDog", "WalkingTogether"]
ACTION_FROM_FILE = {"Photo": "TakingPhoto", "WalkDog": "WalkingDog",
                    "WalkTogether": "WalkingTogether"}
ACTION_ABBREV = ["Direct.", "Discuss", "Eat", "Greet", "Phone", "Photo", "Posing", "Purchase",
                 "Sit", "SitD.", "Smoke", "Wait", "Walk", "WalkD.", "WalkT."]

TRAIN_SUBJECTS = [1, 5, 6, 7, 8]
TEST_SUBJECTS = [9, 11]
SUBJECTS = TRAIN_SUBJECTS + TEST_SUBJECTS
CAMERA_IDS = ["54138969", "55011271", "58860488", "60457274"]


def parse_parts(text):
    """'torso,legs' -> ['torso', 'legs'], checking the names and that the parts
    cover every keypoint exactly once."""
    names = [p.strip() for p in text.split(",") if p.strip()]
    if "torso" in names and len(names) == 5:  # the papers call the fifth limb 'torso'
        names = ["spine" if p == "torso" else p for p in names]
    unknown = [p for p in names if p not in PARTS]
    if unknown:
        raise ValueError(f"unknown part {unknown[0]!r}: expected full, torso,legs or "
                         f"{','.join(FIVE_LIMBS)}")
    covered = sorted(j for p in names for j in PARTS[p])
    if covered != KEYPOINTS:
        raise ValueError(f"parts {','.join(names)} must cover the 16 keypoints exactly once")
    return names
