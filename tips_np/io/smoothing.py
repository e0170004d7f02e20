"""Smoothing each person's 2D track over time, before lifting (lift --smooth).

A detector finds each frame's joints afresh, so they jitter from frame to frame where
the body moved smoothly. A Gaussian over the frames of one track, joint by joint,

    x'(t) = sum_k w(k) x(t + k) / sum_k w(k),   w(k) = exp(-k^2 / (2 sigma^2)),   |k| <= 3 sigma,

averages the jitter away; the sums run over the frames where that person's joint was
seen (a frame missing from the track, or a joint given as NaN, does not count, and a
joint not seen stays not seen: nothing is invented). sigma is in frames, the file's own
frame ids: 5 at Human3.6M's 50 Hz (100 ms) was chosen on S8's detections (docs/results.md);
at 25 frames a second the same time is 2.5. Tracks of unrelated images (COCO files: each image a
frame of its own) gain nothing and lose nothing: a pose alone keeps its values.
"""
import numpy as np

from ..errors import TipsError


class SmoothingError(TipsError):
    """Tracks that cannot be smoothed (a person twice in one frame)."""


def gaussian_weights(sigma):
    """w(k) for k = -r..r, r = ceil(3 sigma)."""
    r = int(np.ceil(3 * sigma))
    k = np.arange(-r, r + 1)
    return np.exp(-k ** 2 / (2 * sigma ** 2))


def smooth_run(values, weights):
    """x' of one run of frames (L, ...) with NaN where not seen: the weighted mean
    over the seen values within reach (weights (2r+1,)); NaN stays NaN."""
    r = len(weights) // 2
    seen = np.isfinite(values)
    padded = np.pad(np.where(seen, values, 0.0), [(r, r)] + [(0, 0)] * (values.ndim - 1))
    padded_seen = np.pad(seen.astype(np.float64), [(r, r)] + [(0, 0)] * (values.ndim - 1))
    num, den = np.zeros(values.shape), np.zeros(values.shape)
    for i, w in enumerate(weights):   # sum_k w(k) x(t + k), tap by tap
        num += w * padded[i:i + len(values)]
        den += w * padded_seen[i:i + len(values)]
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(seen, num / den, np.nan)


def smooth_tracks(pixels, track, frame, sigma):
    """Pixels (N, J, 2) with each track's poses (same `track` id, any type; frames
    `frame`, whole numbers) smoothed over time; a new float64 array, rows in the given order."""
    pixels = np.asarray(pixels, dtype=np.float64)
    if sigma <= 0 or len(pixels) == 0:
        return pixels.copy()
    try:
        frame = np.asarray(frame, dtype=np.float64)
    except (TypeError, ValueError):
        frame = np.array([np.nan])
    if not np.all(np.isfinite(frame)) or np.any(frame != np.round(frame)):
        raise SmoothingError("the frames are not numbered (frame ids that are not whole numbers): there is no "
                             "time to smooth over; leave out --smooth")
    frame = frame.astype(np.int64)
    names, track = np.unique(np.asarray([str(t) for t in track]), return_inverse=True)
    weights = gaussian_weights(sigma)
    reach = len(weights) // 2
    order = np.lexsort((frame, track))
    t, f = track[order], frame[order]
    same_track = t[1:] == t[:-1]
    if np.any(same_track & (f[1:] == f[:-1])):
        i = np.flatnonzero(same_track & (f[1:] == f[:-1]))[0]
        raise SmoothingError(f"person {names[t[i]]} appears twice in frame {f[i]}: their track cannot be smoothed "
                             f"(leave out --smooth)")
    # runs: a new one where the track changes or the frames are too far apart to meet
    starts = np.flatnonzero(np.concatenate([[True], ~same_track | (f[1:] - f[:-1] > 2 * reach)]))
    out = np.empty_like(pixels)
    for a, b in zip(starts, np.append(starts[1:], len(order))):
        rows, frames = order[a:b], f[a:b] - f[a]
        dense = np.full((frames[-1] + 1,) + pixels.shape[1:], np.nan)   # missing frames: not seen
        dense[frames] = pixels[rows]
        out[rows] = smooth_run(dense, weights)[frames]
    return out
