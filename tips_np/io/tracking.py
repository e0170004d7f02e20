"""People kept apart over a video's frames, and short gaps filled within one person.

A file's own person ids are used as tracks where they are consistent: every pose has
one, no id appears twice in a frame, and no id jumps further than MAX_JUMP body sizes
between its frames (AlphaPose without its tracker writes idx 0 for everyone; OpenPose
writes -1). Otherwise the greedy tracker below makes the tracks:

    frame by frame, in time order, every (pose, track) pair is scored by the mean
    distance of their joints seen in both, over the track's body size (the diagonal of
    its last pose's box); pairs are taken best first, each pose and track once, while
    the score is at most MAX_JUMP and the track was last seen at most max_gap + 1
    frames before. A pose left over starts a new track: people enter and leave.

Frames are counted in the file's own step (frame_steps: a file of every 64th frame
counts 64 frames as one). A video with one pose per frame is one person. Images that are not a video (COCO)
are never tracked or filled: each pose is its own.
Within a track, a joint missing for at most max_gap frames between two frames that
see it is filled by linear interpolation in time; at a track's ends nothing is held.
"""
import numpy as np

MAX_JUMP = 0.35      # a person moves less than a third of their size between nearby frames


def body_size(pose):
    """The diagonal of the box of a (17, 2) pose's seen joints."""
    seen = pose[~np.isnan(pose[:, 0])]
    return float(np.linalg.norm(seen.max(0) - seen.min(0))) if len(seen) > 1 else np.nan


def jump(a, b):
    """Mean distance of the joints seen in both (17, 2) poses, over the smaller body size
    (a huge spurious pose is not near everything)."""
    both = ~np.isnan(a[:, 0]) & ~np.isnan(b[:, 0])
    size = min(body_size(a), body_size(b))
    if not both.any() or not size > 0:
        return np.inf
    return float(np.linalg.norm(a[both] - b[both], axis=-1).mean() / size)


def consistent_ids(xy, time, person, max_gap):
    """Whether the file's person ids can be tracks (see the module's docstring); and why not."""
    if any(p == -1 for p in person):
        return False, "the file has no track ids"
    seen = set()
    for t, p in zip(time, person):
        if (t, p) in seen:
            return False, f"track id {p} is given to two people in frame {t}"
        seen.add((t, p))
    for p in dict.fromkeys(person):
        rows = [i for i in np.argsort(time, kind="stable") if person[i] == p]
        for a, b in zip(rows, rows[1:]):
            if time[b] - time[a] <= max_gap + 1 and jump(xy[b], xy[a]) > MAX_JUMP:
                return False, f"track id {p} jumps more than {MAX_JUMP} body sizes at frame {time[b]}"
    return True, "the file's track ids"


def greedy_tracks(xy, time, max_gap):
    """(N,) track numbers 0, 1, ... for poses (N, 17, 2) at times (N,) (docstring above)."""
    track = np.full(len(xy), -1)
    last = {}                     # track -> row of its last pose
    for t in np.unique(time):
        rows = np.flatnonzero(time == t)
        live = [k for k, r in last.items() if t - time[r] <= max_gap + 1]
        pairs = sorted((jump(xy[i], xy[last[k]]), i, k) for i in rows for k in live)
        used_rows, used_tracks = set(), set()
        for score, i, k in pairs:
            if score > MAX_JUMP:
                break
            if i not in used_rows and k not in used_tracks:
                track[i] = k
                used_rows.add(i)
                used_tracks.add(k)
        for i in rows:
            if track[i] < 0:
                track[i] = len(last)
                last[track[i]] = i
        for i in used_rows:
            last[track[i]] = i
    return track


def assign_tracks(xy, time, person, video, max_gap):
    """(track (N,) numbers, output ids (N,), how) for Human3.6M poses (N, 17, 2), NaN
    where unseen: the file's ids where consistent, else greedy_tracks; images: one each."""
    if not video:   # a pose with no id of the file's is numbered by its place in its image
        place = {}
        ids = [p if p != -1 else place.setdefault(t, []).append(i) or len(place[t]) - 1
               for i, (t, p) in enumerate(zip(time, person))]
        return np.arange(len(xy)), np.array(ids, dtype=object), "images, not a video: each pose alone"
    if len(np.unique(time)) == len(time):       # one pose per frame: one person
        ids = set(person)
        return np.zeros(len(xy), int), person if len(ids) == 1 and -1 not in ids else \
            np.zeros(len(xy), int).astype(object), "tracks: one person (one pose per frame)"
    ok, why = consistent_ids(xy, time, person, max_gap)
    if ok:
        numbers = {p: k for k, p in enumerate(dict.fromkeys(person))}
        return np.array([numbers[p] for p in person]), person, "tracks: the file's track ids"
    track = greedy_tracks(xy, time, max_gap)
    return track, track.astype(object), f"tracks: the greedy tracker ({why})"


def frame_steps(time):
    """Frame numbers (N,) -> steps of the file's own stride (their differences' greatest
    common divisor): a video subsampled every 64th frame counts 64 frames as one."""
    diffs = np.diff(np.unique(time))
    step = int(np.gcd.reduce(diffs)) if len(diffs) else 1
    return (time - time.min()) // max(step, 1)


def fill_gaps(xy, time, track, max_gap):
    """Fill each joint missing for at most max_gap frames between two frames of the same
    track that see it, linearly in time. Returns (xy, filled (N, 17) bool)."""
    xy = xy.copy()
    filled = np.zeros(xy.shape[:2], bool)
    for k in np.unique(track):
        rows = np.flatnonzero(track == k)
        rows = rows[np.argsort(time[rows], kind="stable")]
        missing = np.isnan(xy[rows, :, 0])
        for j in np.flatnonzero(missing.any(axis=0)):
            known = rows[~missing[:, j]]
            for i in rows[missing[:, j]]:
                before, after = known[time[known] < time[i]], known[time[known] > time[i]]
                if len(before) == 0 or len(after) == 0:
                    continue              # an end: never held
                a, b = before[-1], after[0]
                if time[b] - time[a] - 1 > max_gap:
                    continue
                w = (time[i] - time[a]) / (time[b] - time[a])
                xy[i, j] = (1 - w) * xy[a, j] + w * xy[b, j]
                filled[i, j] = True
    return xy, filled
