"""Draw the walk-through's figures (docs/walkthrough.md) from the package's own functions.

    python docs/figures/draw.py [OUT_DIR]        # default: docs/figures (needs the `plot` extra)

Every pose is the shipped sample's (data/h36m_sample.h5), normalised as the method sees it,
and every rotation, projection and handedness test is the package's: the figures show what
the code does. tests/test_figures.py redraws them into a temporary folder.
"""
import os
import sys

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, ROOT)

from tips_np.io import dataset  # noqa: E402
from tips_np.method import geometry, orientation  # noqa: E402
from tips_np.method.skeleton import BONES, FIVE_LIMBS, JOINTS, PARTS, ROOT as ROOT_JOINT  # noqa: E402
from tips_np.tools.draw import plotting, side  # noqa: E402

SAMPLE = os.path.join(ROOT, "data", "h36m_sample.h5")
J = {name: i for i, name in enumerate(JOINTS)}
SIDE = {"right": "#d62728", "left": "#1f77b4", "centre": "#555555"}
PART = {"torso": "#2ca02c", "legs": "#9467bd", "root": "#000000",
        "larm": "#1f77b4", "rarm": "#d62728", "spine": "#2ca02c", "lleg": "#17becf", "rleg": "#ff7f0e"}
GHOST = "#bbbbbb"
DPI = 110


# ------------------------------------------------------------------ the pose and its pictures

def sample_pose():
    """A walking pose of the sample's training split, turned about 35 degrees from the
    camera, its knees clearly bent: (17, 3), root at the origin, scaled as the method
    scales (max |x|, |y| = 1), in the camera frame (x right, y down, z away)."""
    train = dataset.load(SAMPLE, "train")
    poses = train.pose_3d.astype(np.float64)
    poses /= np.abs(poses[..., :2]).max(axis=(1, 2), keepdims=True)
    facing = np.degrees(geometry.facing(poses))
    walking = (train.action == 12) & (np.abs(facing - 35) < 15)
    return poses[np.flatnonzero(walking)[np.argmax(orientation.legs_test(poses[walking]))]]


def standing_pose():
    """A pose of the sample's 'Directions' facing the camera, its wrists wide apart: every
    joint in sight, for the skeleton's parts."""
    train = dataset.load(SAMPLE, "train")
    poses = train.pose_3d.astype(np.float64)
    poses /= np.abs(poses[..., :2]).max(axis=(1, 2), keepdims=True)
    front = np.flatnonzero((train.action == 0) & (np.abs(np.degrees(geometry.facing(poses))) < 15))
    spread = poses[front, J["left_wrist"], 0] - poses[front, J["right_wrist"], 0]
    return poses[front[np.argmax(spread)]]


def facing_the_camera(pose):
    """The pose turned about its vertical axis until it faces the camera (geometry.facing 0)."""
    a = -geometry.facing(pose[None])
    return geometry.rotate(pose[None], geometry.rotation_matrices(a, np.zeros(1), np.float64))[0]


def bones(ax, points, colour=None, lw=2.2, ms=3.5, alpha=1.0, zorder=3):
    """The skeleton's bones between (17, 2) points, by the person's side (or one colour)."""
    for a, b in BONES:
        ax.plot(points[[a, b], 0], points[[a, b], 1], "-", color=colour or SIDE[side(b)], lw=lw, alpha=alpha,
                solid_capstyle="round", zorder=zorder)
    ax.plot(points[:, 0], points[:, 1], "o", ms=ms, color=colour or "#333333", alpha=alpha, zorder=zorder + 1)


def _panel(ax, title, lim, y_down):
    """An equal-scale panel without ticks, light frame, y pointing down or up."""
    ax.set_aspect("equal")
    ax.set_xlim(-lim, lim)
    ax.set_ylim((lim, -lim) if y_down else (-lim, lim))
    ax.set_xticks([])
    ax.set_yticks([])
    for s in ax.spines.values():
        s.set_color("#cccccc")
    if title:
        ax.set_title(title, fontsize=10)


def image_axes(ax, title=None, lim=1.25, xlabel=None, ylabel=None):
    """An image-style panel: equal scale, y pointing down (the person stands upright)."""
    _panel(ax, title, lim, y_down=True)
    if xlabel:
        ax.set_xlabel(xlabel, fontsize=9)
    if ylabel:
        ax.set_ylabel(ylabel, fontsize=9)


def top_axes(ax, title=None, lim=1.25):
    """Seen from above: x to the right, depth z pointing up the page (away from the camera,
    which stands below the panel)."""
    _panel(ax, title, lim, y_down=False)


def camera_below(ax, lim=1.25, label="camera"):
    ax.annotate("", xy=(0, -lim * 0.55), xytext=(0, -lim * 0.95),
                arrowprops=dict(arrowstyle="-|>", color="#444444", lw=1.5))
    ax.text(0.08, -lim * 0.9, label, fontsize=8, color="#444444", va="bottom")


def legend_sides(ax, loc="lower left"):
    plt = plotting()
    handles = [plt.Line2D([], [], color=c, lw=2.2, label=f"person's {k}" if k != "centre" else "spine, head")
               for k, c in SIDE.items()]
    ax.legend(handles=handles, loc=loc, fontsize=7.5, frameon=False)


# ------------------------------------------------------------------ 1. the cycle

def pose_in_3d(ax, pose_3d, title=None, ghost=None, elev=14, azim=-62):
    """A 3D pose on matplotlib's 3D axes, drawn in the camera frame: (x, z, -y) so that
    y points down and z away from the viewer of the image panels."""
    show = (lambda p: (p[..., 0], p[..., 2], -p[..., 1]))
    for pts, colour, lw, alpha in ((ghost, GHOST, 1.5, 0.9), (pose_3d, None, 1.8, 1.0)):
        if pts is None:
            continue
        for i, j in BONES:
            X, Z, Y = show(pts[[i, j]])
            ax.plot(X, Z, Y, color=colour or SIDE[side(j)], lw=lw, alpha=alpha)
    ax.set_xlim(-1.1, 1.1), ax.set_ylim(-1.1, 1.1), ax.set_zlim(-1.1, 1.1)
    ax.set_box_aspect((1, 1, 1))
    ax.view_init(elev=elev, azim=azim)
    ax.set_xticklabels([]), ax.set_yticklabels([]), ax.set_zticklabels([])
    ax.set_xlabel("x", labelpad=-14, fontsize=8), ax.set_ylabel("z", labelpad=-14, fontsize=8)
    for axis in (ax.xaxis, ax.yaxis, ax.zaxis):
        axis.set_pane_color((0.97, 0.97, 0.97, 1.0))
    if title:
        ax.set_title(title, fontsize=10, y=0.97)
    return show


def draw_cycle(path, pose):
    """Y -> G -> (x, y, z_hat) -> R -> P -> Y~ (-> D) -> G -> R^-1 -> P -> Y back: L2D."""
    plt = plotting()
    patches = plt.matplotlib.patches
    y, z_hat = pose[:, :2], pose[:, 2]      # the true depths stand in for a trained G's
    R = geometry.rotation_matrices(np.radians([70.0]), np.radians([8.0]), np.float64)
    pose_3d = geometry.compose(y[None], z_hat[None])
    turned = geometry.rotate(pose_3d, R)
    y_tilde, scale, _ = geometry.max_normalise(geometry.project(turned))
    lifted_again = geometry.compose(y_tilde, turned[..., 2] / scale[:, None]) * scale[:, None, None]
    back = geometry.project(geometry.rotate(lifted_again, R.transpose(0, 2, 1)))[0]

    fig = plt.figure(figsize=(13, 6.2))
    w, h = 0.145, 0.33
    top, bottom = 0.53, 0.1
    xs = [0.025, 0.225, 0.425, 0.625, 0.825]
    mid_top, mid_bottom = top + h / 2, bottom + h / 2
    ax = fig.add_axes([xs[0], top, w, h])
    image_axes(ax, "real 2D pose Y = (x, y)", 1.3)
    bones(ax, y, lw=1.8, ms=2.5)
    ax = fig.add_axes([xs[1] - 0.02, top - 0.03, w + 0.04, h + 0.06], projection="3d")
    pose_in_3d(ax, pose_3d[0], "3D pose (x, y, ẑ)")
    ax = fig.add_axes([xs[2] - 0.02, top - 0.03, w + 0.04, h + 0.06], projection="3d")
    pose_in_3d(ax, turned[0], "turned: R (x, y, ẑ)", ghost=pose_3d[0])
    ax = fig.add_axes([xs[3], top, w, h])
    image_axes(ax, "reprojected Ỹ = P R (x, y, ẑ) / s", 1.3)
    bones(ax, y_tilde[0], lw=1.8, ms=2.5)
    ax = fig.add_axes([xs[2] - 0.02, bottom - 0.03, w + 0.04, h + 0.06], projection="3d")
    pose_in_3d(ax, lifted_again[0], "lifted again: (Ỹ, G(Ỹ)) s")
    ax = fig.add_axes([xs[1], bottom, w, h])
    image_axes(ax, "back: P R⁻¹ (Ỹ, G(Ỹ)) s", 1.3)
    bones(ax, y, GHOST, lw=5, ms=0, alpha=0.7, zorder=1)
    bones(ax, back, lw=1.8, ms=2.5)
    ax = fig.add_axes([xs[0], bottom, w, h])
    image_axes(ax, "Y", 1.3)
    bones(ax, y, lw=1.8, ms=2.5)

    def arrow(a, b, label, colour="#222222", box="#f3f3f3", rad=0.0, style="-|>", ls="-", at=None):
        fig.patches.append(patches.FancyArrowPatch(a, b, transform=fig.transFigure, arrowstyle=style,
                                                   mutation_scale=14, lw=1.6, color=colour, linestyle=ls,
                                                   connectionstyle=f"arc3,rad={rad}"))
        if label:
            x, y_ = at or ((a[0] + b[0]) / 2, (a[1] + b[1]) / 2 + 0.04)
            fig.text(x, y_, label, ha="center", va="center", fontsize=10,
                     bbox=dict(boxstyle="round,pad=0.3", fc=box, ec=colour, lw=1))

    green, pale_green = "#2ca02c", "#e9f6e9"
    arrow((xs[0] + w + 0.005, mid_top), (xs[1] - 0.005, mid_top), "G (eq. 1)", green, pale_green)
    arrow((xs[1] + w + 0.01, mid_top), (xs[2] - 0.005, mid_top), "R: random view")
    arrow((xs[2] + w + 0.01, mid_top), (xs[3] - 0.005, mid_top), "P, normalise")
    arrow((xs[3] + w / 2, top - 0.02), (xs[2] + w + 0.015, mid_bottom), "G", green, pale_green, rad=-0.3,
          at=(xs[3] + 0.045, mid_bottom + 0.02))
    arrow((xs[2] - 0.01, mid_bottom), (xs[1] + w + 0.005, mid_bottom), "R⁻¹, P")
    arrow((xs[1] - 0.005, mid_bottom), (xs[0] + w + 0.005, mid_bottom), "L2D (eq. 2)", "#1f77b4", "#e8f1fa",
          style="<|-|>", ls="--")
    red = "#d62728"
    arrow((xs[3] + w + 0.005, mid_top), (xs[4] + 0.03, mid_top), "", red)
    fig.text(xs[4] + 0.085, mid_top, "D\nreal or\nreprojected?", ha="center", va="center", fontsize=10,
             bbox=dict(boxstyle="round,pad=0.5", fc="#fdeaea", ec=red, lw=1.2))
    fig.text(xs[4] + 0.085, mid_top - 0.11, "L_adv (eq. 6): D learns\nto tell real Y from Ỹ;\n"
             "G wants Ỹ to pass", ha="center", va="top", fontsize=9, color="#a01010")
    fig.text(xs[3] + 0.085, bottom + 0.02, "A consistent G lifts Ỹ to the turned pose:\n"
             "turned back and projected, it gives Y again\n(grey under it: Y). Here the true depths\n"
             "stand in for G's, so L2D = 0. L90 (eqs. 3-5)\nasks the same of three fixed turns.",
             fontsize=9, va="bottom", color="#333333")
    handles = [plt.Line2D([], [], color=c, lw=2.2, label=f"person's {k}" if k != "centre" else "spine, head")
               for k, c in SIDE.items()]
    fig.legend(handles=handles, loc="lower left", bbox_to_anchor=(0.02, 0.0), ncol=3, fontsize=8.5, frameon=False)
    fig.suptitle("The self-consistency cycle of one training step (cycle.adversarial_step)", fontsize=12,
                 y=0.985)
    fig.savefig(path, dpi=DPI)
    plt.close(fig)


# ------------------------------------------------------------------ 2. the view rotation and its axes

def draw_view(path, pose):
    """The camera frame (x right, y down, z away), R = R_x(e) R_y(a), and what it shows."""
    plt = plotting()
    a, e = np.radians(60.0), np.radians(10.0)
    R = geometry.rotation_matrices(np.array([a]), np.array([e]), np.float64)
    turned = geometry.rotate(pose[None], R)[0]
    fig = plt.figure(figsize=(13, 5.0))
    grid = fig.add_gridspec(1, 3, width_ratios=[1.5, 1, 1])
    ax = fig.add_subplot(grid[0], projection="3d")
    show = pose_in_3d(ax, turned, ghost=pose, elev=20, azim=-48)
    o = np.array([0.0, 0.0, -2.0])      # the camera, 2 units in front of the root
    for vec, name in ((np.eye(3)[0], "x (right)"), (np.eye(3)[1], "y (down)"), (np.eye(3)[2], "z (away)")):
        X, Z, Y = show(np.stack([o, o + 0.7 * vec]))
        ax.plot(X, Z, Y, color="#222222", lw=1.8)
        ax.text(X[1], Z[1], Y[1], " " + name, fontsize=9)
    X, Z, Y = show(o)
    ax.scatter([X], [Z], [Y], color="#222222", s=40, marker="s")
    ax.text(X - 0.1, Z, Y + 0.15, "camera", fontsize=9, ha="right")
    X, Z, Y = show(np.array([[0, -1.3, 0], [0, 1.2, 0]]))
    ax.plot(X, Z, Y, "--", color="#ff7f0e", lw=1)
    t = np.linspace(0, a, 40)
    arc = np.stack([-0.8 * np.sin(t), np.full_like(t, -1.2), -0.8 * np.cos(t)], axis=-1)  # R_y(a) p: -z to -x
    X, Z, Y = show(arc)
    ax.plot(X, Z, Y, color="#ff7f0e", lw=2.2)
    ax.text(X[-1], Z[-1], Y[-1] + 0.12, "azimuth a\nabout y", color="#ff7f0e", fontsize=9, ha="right")
    ax.set_xlim(-1.2, 1.2), ax.set_ylim(-2.0, 1.2), ax.set_zlim(-1.2, 1.2)
    ax.set_box_aspect((2.4, 3.2, 2.4), zoom=1.15)
    ax.set_title("the camera frame; grey: the pose, colour: the pose turned by\n"
                 "R = R_x(e) R_y(a), azimuth a = 60°, elevation e = 10°", fontsize=10)
    ax2 = fig.add_subplot(grid[1])
    image_axes(ax2, "the camera sees P (x, y, z) = (x, y)", 1.3, "x (right)", "y (down)")
    bones(ax2, geometry.project(pose))
    legend_sides(ax2)
    ax3 = fig.add_subplot(grid[2])
    y_tilde, _, _ = geometry.max_normalise(geometry.project(turned[None]))
    image_axes(ax3, "turned, projected, normalised again: Ỹ", 1.3, "x (right)", "y (down)")
    bones(ax3, y_tilde[0])
    fig.text(0.5, 0.03, "a uniform in [−π, π] (TIPS) about the vertical axis y, e uniform in [−π/18, π/18] "
             "about x   (geometry.rotation_matrices, cycle.draw_randomness)", ha="center", fontsize=9, color="#333333")
    fig.subplots_adjust(left=0.0, right=0.98, top=0.88, bottom=0.1, wspace=0.08)
    fig.savefig(path, dpi=DPI)
    plt.close(fig)


# ------------------------------------------------------------------ 3. the 90-degree turn from above

def draw_quarter_turn(path, pose):
    """R_y(-pi/2): (x, y, z) -> (z, y, -x), seen from above and by the camera."""
    plt = plotting()
    pose = facing_the_camera(pose)
    quarter = geometry.rotation_matrices(np.array([-np.pi / 2]), np.array([0.0]), np.float64)
    turned = geometry.rotate(pose[None], quarter)[0]
    w = J["left_wrist"]
    fig, axes = plt.subplots(1, 3, figsize=(12.5, 4.5))
    ax = axes[0]
    top_axes(ax, "seen from above (x right, z away)", 1.3)
    bones(ax, pose[:, [0, 2]], GHOST, lw=1.6, ms=2.5)
    bones(ax, turned[:, [0, 2]], lw=1.8, ms=2.5)
    camera_below(ax, 1.3)
    for p, colour in ((pose, "#888888"), (turned, "#2ca02c")):
        fwd = orientation.torso_forward(p[None])[0]
        _arrow(ax, p[J["thorax"], [0, 2]], 0.5 * fwd[[0, 2]] / np.linalg.norm(fwd[[0, 2]]), colour)
    ax.plot(*pose[w, [0, 2]], "o", ms=9, mfc="none", mec="#444444", mew=1.5)
    ax.plot(*turned[w, [0, 2]], "o", ms=9, mfc="none", mec="#1f77b4", mew=1.5)
    t = np.linspace(np.arctan2(pose[w, 2], pose[w, 0]), np.arctan2(turned[w, 2], turned[w, 0]), 30)
    r = np.hypot(pose[w, 0], pose[w, 2])
    ax.plot(r * np.cos(t), r * np.sin(t), ":", color="#1f77b4", lw=1.5)
    ax.text(-1.25, 1.12, "grey: the pose; colour: turned 90°,\n(x, y, z) → (z, y, −x); circled: the\n"
            "left wrist; arrows: where the torso faces",
            fontsize=8, va="top")
    ax2 = axes[1]
    image_axes(ax2, "the camera sees (x, y); G gives z", 1.3)
    bones(ax2, pose[:, :2])
    ax2.text(-1.25, 1.2, f"left wrist: x = {pose[w, 0]:+.2f}, z = {pose[w, 2]:+.2f}", fontsize=8.5)
    ax3 = axes[2]
    image_axes(ax3, "after the turn it sees (z, y): G(z, y) must be −x", 1.3)
    bones(ax3, turned[:, :2])
    ax3.text(-1.25, 1.2, f"left wrist: x' = z = {turned[w, 0]:+.2f}, z' = −x = {turned[w, 2]:+.2f}", fontsize=8.5)
    for ax_ in (ax2, ax3):
        ax_.plot(*([pose, turned][ax_ is ax3][w, :2]), "o", ms=9, mfc="none", mec="#1f77b4", mew=1.5)
    fig.suptitle("The 90-degree constraints (TIPS eqs. 3-5): G(ẑ, y) = −x, G(−ẑ, y) = x, G(−x, y) = −ẑ",
                 fontsize=12)
    fig.tight_layout()
    fig.savefig(path, dpi=DPI)
    plt.close(fig)


# ------------------------------------------------------------------ 4. the mirror and the handedness tests

def _arrow(ax, start, vec, colour, label=None, offset=(0.04, 0.0)):
    ax.annotate("", xy=start + vec, xytext=start, arrowprops=dict(arrowstyle="-|>", color=colour, lw=1.8))
    if label:
        ax.text(*(start + vec + np.array(offset)), label, color=colour, fontsize=8.5, va="center")


def draw_mirror(path, pose):
    """M = diag(1, 1, -1): the same 2D pose, the opposite handedness."""
    plt = plotting()
    mirror = pose * [1, 1, -1]
    both = np.stack([pose, mirror])
    legs, torso = orientation.legs_test(both), orientation.torso_test(both)
    fig, axes = plt.subplots(1, 4, figsize=(13.5, 4.4))
    ax = axes[0]
    image_axes(ax, "both project to the same 2D pose", 1.3, "x", "y (down)")
    bones(ax, geometry.project(pose))
    legend_sides(ax)
    ax = axes[1]
    top_axes(ax, "seen from above: the pose and its mirror", 1.0)
    bones(ax, mirror[:, [0, 2]], GHOST, lw=1.6, ms=2.5)
    bones(ax, pose[:, [0, 2]], lw=1.8, ms=2.5)
    camera_below(ax, 1.0)
    ax.axhline(0, color="#999999", lw=0.8, ls="--")
    ax.text(0.97, 0.04, "z = 0", fontsize=8, ha="right", color="#777777")
    ax.text(-0.97, 0.95, "grey: depths negated, z → −z", fontsize=8, va="top")
    for ax, p, name, l_val, t_val in ((axes[2], pose, "the pose", legs[0], torso[0]),
                                      (axes[3], mirror, "its mirror", legs[1], torso[1])):
        # seen from the side: z to the right, y down
        image_axes(ax, f"{name}, from the side (z right, y down)", 1.3)
        ax.text(-1.25, 0.0, "← camera", fontsize=8, color="#444444", va="center")
        bones(ax, p[:, [2, 1]], lw=1.8, ms=2.5)
        fwd = orientation.torso_forward(p[None])[0]
        fwd = 0.45 * fwd / np.linalg.norm(fwd)
        _arrow(ax, p[J["thorax"], [2, 1]], fwd[[2, 1]], "#2ca02c")
        fwd_l = orientation._forward(p[None], "right_hip", "left_hip", ("right_hip", "left_hip"),
                                     ("right_ankle", "left_ankle"))[0]
        fwd_l = 0.45 * fwd_l / np.linalg.norm(fwd_l)
        for s in ("left", "right"):
            knee = p[J[f"{s}_knee"]]
            mid = (p[J[f"{s}_hip"]] + p[J[f"{s}_ankle"]]) / 2
            ax.plot(*np.stack([p[J[f"{s}_hip"]], p[J[f"{s}_ankle"]]])[:, [2, 1]].T, ":", color="#444444", lw=1)
            _arrow(ax, mid[[2, 1]], (knee - mid)[[2, 1]], "#ff7f0e")
        _arrow(ax, p[ROOT_JOINT, [2, 1]], fwd_l[[2, 1]], "#2ca02c")
        verdict = (lambda v: "passes" if v > 0 else "fails")
        ax.text(-1.25, 1.22, f"legs test {legs_value_text(l_val)}: {verdict(l_val)}\n"
                f"torso test {legs_value_text(t_val)}: {verdict(t_val)}", fontsize=8.5, va="bottom",
                color="#2ca02c" if l_val > 0 else "#d62728")
    axes[2].text(1.25, -1.22, "orange: knee − mid(hip, ankle)\ngreen: forward = up × right\n"
                 "(torso's at the thorax, legs' at the hip)", fontsize=8, ha="right", va="top")
    fig.suptitle("The mirror ambiguity and the handedness tests (orientation.py): every loss is blind to "
                 "z → −z, anatomy is not", fontsize=12)
    fig.tight_layout()
    fig.savefig(path, dpi=DPI)
    plt.close(fig)


def legs_value_text(v):
    return f"{v:+.3f}"


# ------------------------------------------------------------------ 5. the parts on the skeleton

def draw_parts(path, pose):
    """skeleton.PARTS: TIPS's torso and legs, and the five limbs of the representations paper."""
    plt = plotting()
    fig, axes = plt.subplots(1, 2, figsize=(11, 5.6))
    points = facing_the_camera(standing_pose())[:, :2]
    for ax, names, title in ((axes[0], ["torso", "legs"], "TIPS: two generators, torso (10) and legs (6)"),
                             (axes[1], FIVE_LIMBS, "representations paper: five limbs")):
        image_axes(ax, title, 1.3)
        owner = {j: p for p in names for j in PARTS[p]}
        for a, b in BONES:
            colour = PART[owner[b]] if owner.get(a) == owner[b] else "#cccccc"
            ax.plot(points[[a, b], 0], points[[a, b], 1], "-", color=colour, lw=3, solid_capstyle="round")
        for j, (x, y) in enumerate(points):
            colour = PART["root"] if j == ROOT_JOINT else PART[owner[j]]
            ax.plot(x, y, "o", ms=8 if j == ROOT_JOINT else 6, color=colour, mec="white", mew=1, zorder=4)
            if ax is axes[0] and j == ROOT_JOINT:
                ax.text(x, y + 0.1, "root (hip)", fontsize=7.5, va="top", ha="center", color="#333333")
            elif ax is axes[0]:
                dx = 0.07 if x > points[ROOT_JOINT, 0] or JOINTS[j] in ("neck", "head") else -0.07
                ax.text(x + dx, y, JOINTS[j].replace("_", " "), fontsize=7.5, va="center",
                        ha="left" if dx > 0 else "right", color="#333333")
        handles = [plt.Line2D([], [], color=PART[p], lw=3, label=f"{p} ({len(PARTS[p])})") for p in names]
        handles.append(plt.Line2D([], [], color=PART["root"], marker="o", lw=0, label="root (hip): not lifted"))
        ax.legend(handles=handles, loc="lower right", fontsize=8, frameon=False)
    fig.suptitle("The parts each generator lifts (skeleton.PARTS); grey bones join two parts", fontsize=12)
    fig.tight_layout()
    fig.savefig(path, dpi=DPI)
    plt.close(fig)


FIGURES = {"cycle.png": draw_cycle, "view_rotation.png": draw_view, "quarter_turn.png": draw_quarter_turn,
           "mirror.png": draw_mirror, "parts.png": draw_parts}


def draw_all(out_dir):
    """Every figure into out_dir; returns the paths written."""
    if plotting() is None:
        raise SystemExit("no plot: matplotlib is not installed (pip install -e '.[plot]')")
    os.makedirs(out_dir, exist_ok=True)
    pose = sample_pose()
    written = []
    for name, draw in FIGURES.items():
        path = os.path.join(out_dir, name)
        draw(path, pose)
        written.append(path)
    return written


if __name__ == "__main__":
    for p in draw_all(sys.argv[1] if len(sys.argv) > 1 else os.path.dirname(os.path.abspath(__file__))):
        print("written:", p)
