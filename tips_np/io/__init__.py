"""Data and formats, in and out: Human3.6M's preparation (h36m) and loading (dataset),
detectors' files and their keypoint layouts (formats, keypoints), people over frames
(tracking, smoothing), lifting a user's poses (lifting, plausibility), checkpoints.

May import method/, nn/, backend, errors and atomic (tests/test_layout.py); not tools/
or the command line.
"""
