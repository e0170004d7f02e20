"""Pictures of lifted poses (the `plot` extra): the input 2D pose beside the 3D
skeleton seen from the front and from the side, the person's left and right
limbs in two colours; a .gif animates a sequence (matplotlib's Pillow writer)."""
import numpy as np

from ..method.skeleton import BONES, JOINTS

COLOURS = {"right": "tab:red", "left": "tab:blue", "centre": "0.3"}
NO_PLOT = "no plot: matplotlib is not installed (pip install -e '.[plot]')"


def plotting():
    """matplotlib.pyplot, or None when the `plot` extra is not installed."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        return plt
    except ImportError:
        return None


def side(joint):
    name = JOINTS[joint]
    return "right" if name.startswith("right") else "left" if name.startswith("left") else "centre"


def _draw(ax, points):
    """Bones between (17, 2) points, coloured by the side of the child joint."""
    lines = []
    for a, b in BONES:
        (line,) = ax.plot(points[[a, b], 0], points[[a, b], 1], "-o", ms=3, lw=2, color=COLOURS[side(b)])
        lines.append(line)
    return lines


def _panels(plt, pose_px, pose_3d, title):
    fig, axes = plt.subplots(1, 3, figsize=(13, 5))
    views = [(pose_px, "input 2D pose (pixels)", "x (px)"),
             (pose_3d[:, :2], "3D, front view", "x (right)"),
             (pose_3d[:, [2, 1]], "3D, side view", "z: <- towards the camera | away ->")]
    artists = []
    for ax, (points, name, xlabel) in zip(axes, views):
        artists.append(_draw(ax, points))
        ax.set_title(name)
        ax.set_xlabel(xlabel)
        ax.set_ylabel("y (down)")
        ax.set_aspect("equal")
        ax.invert_yaxis()  # image y points down: the person stands upright
    for ax in axes[1:]:
        ax.set_xlim(-1.2, 1.2)
        ax.set_ylim(1.2, -1.2)
    handles = [plt.Line2D([], [], color=c, lw=2, label=f"person's {k}" if k != "centre" else "spine, head")
               for k, c in COLOURS.items()]
    fig.legend(handles=handles, loc="lower center", ncol=3, fontsize=8, frameon=False)  # off the skeletons
    fig.suptitle(title)
    fig.tight_layout(rect=(0, 0.05, 1, 1))
    return fig, axes, artists


def plot_pose(path, pose_px, pose_3d, title):
    """One pose: (17, 2) pixels and (17, 3) normalised 3D, into a .png."""
    plt = plotting()
    fig, _, _ = _panels(plt, pose_px, pose_3d, title)
    fig.savefig(path, dpi=100)
    plt.close(fig)


def animate_poses(path, pose_px, pose_3d, frames, title, fps=10, progress=None):
    """A sequence (T, 17, 2) / (T, 17, 3) into a .gif, one frame per pose;
    progress(i, T) after each frame drawn."""
    plt = plotting()
    from matplotlib.animation import FuncAnimation, PillowWriter
    fig, axes, artists = _panels(plt, pose_px[0], pose_3d[0], title)
    pad = 0.1 * np.ptp(pose_px.reshape(-1, 2), axis=0).max()
    lo, hi = pose_px.reshape(-1, 2).min(0) - pad, pose_px.reshape(-1, 2).max(0) + pad
    axes[0].set_xlim(lo[0], hi[0])
    axes[0].set_ylim(hi[1], lo[1])

    def update(t):
        for lines, points in zip(artists, (pose_px[t], pose_3d[t, :, :2], pose_3d[t][:, [2, 1]])):
            for line, (a, b) in zip(lines, BONES):
                line.set_data(points[[a, b], 0], points[[a, b], 1])
        fig.suptitle(f"{title}, frame {frames[t]}")
        return [line for lines in artists for line in lines]

    FuncAnimation(fig, update, frames=len(pose_px), blit=False).save(path, writer=PillowWriter(fps=fps),
                                                                  progress_callback=progress)
    plt.close(fig)


def plot_lifted(path, poses, pose_3d, title, rows=None, progress=None):
    """A .png of one pose or a .gif of a sequence: rows of poses, in time order
    (lifting.plot_rows; default the first pose, or the first person's sequence); False when matplotlib
    is missing. poses: lifting.Poses; pose_3d (N, 17, 3); progress(i, n) per frame."""
    if plotting() is None:
        return False
    if rows is None:
        rows = np.flatnonzero(poses.person == poses.person[0]) if path.lower().endswith(".gif") else [0]
    rows = np.asarray(rows)
    if path.lower().endswith(".gif"):
        animate_poses(path, poses.pixels[rows], pose_3d[rows], poses.frame[rows],
                      f"{title}: person {poses.person[rows[0]]}", progress=progress)
    else:
        i = rows[0]
        plot_pose(path, poses.pixels[i], pose_3d[i], f"{title}: frame {poses.frame[i]}, person {poses.person[i]}")
        if progress:
            progress(0, 1)
    return True

