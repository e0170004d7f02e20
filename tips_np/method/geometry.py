"""The geometry of the self-consistency cycle, each function with its backward.

The 3D pose is (x, y, z_hat): x, y the normalised input 2D pose, z_hat the
generators' depths, root at the origin. Camera frame: x right, y down, z forward;
the vertical axis is y. A random view is
    R = R_x(elevation) R_y(azimuth),
    R_y(a) = [[cos a, 0, -sin a], [0, 1, 0], [sin a, 0, cos a]]   (TIPS eq. 11),
and P projects orthographically, P(x, y, z) = (x, y), as the 90-degree
derivation assumes; or, as an option, in perspective from a camera `depth` units
in front of the root, P(x, y, z) = (x, y) d / (d + z); the real 2D pose is then
taken as that camera's view too, so the 3D pose is (x, y) (d + z_hat) / d, z_hat
(unproject_view). The 90-degree turns (TIPS eqs. 3-5) stay orthographic. Angles
are drawn by the training loop and passed in.
"""
import numpy as np

from ..backend import get_array_module
from .skeleton import JOINTS

LEFT_HIP, RIGHT_HIP = (JOINTS.index(f"{side}_hip") for side in ("left", "right"))
LEFT_SHOULDER, RIGHT_SHOULDER = (JOINTS.index(f"{side}_shoulder") for side in ("left", "right"))


def normalise_2d(pose_2d):
    """(N, 17, 2) pixels -> (root-centred pose in [-1, 1], scale s (N,)).

    A pose whose points all coincide has s = 0 and cannot be normalised; the
    caller must refuse it (see lifting.py)."""
    centred = pose_2d - pose_2d[:, :1]
    scale = np.abs(centred).max(axis=(1, 2))
    with np.errstate(divide="ignore", invalid="ignore"):
        return centred / scale[:, None, None], scale


def pitch_matrix(pitch, dtype, xp=np):
    """T = R_x(pitch): the camera looks down `pitch` radians on the body's vertical axis."""
    cp, sp = np.cos(pitch), np.sin(pitch)
    return xp.asarray(np.array([[1, 0, 0], [0, cp, -sp], [0, sp, cp]], dtype))


def rotation_matrices(azimuth, elevation, dtype, pitch=0.0):
    """(N,) azimuths and elevations (radians) -> (N, 3, 3) rotations R_x(e) R_y(a), built
    in `dtype` (np.cos of a float64 angle would otherwise turn float32 poses into float64).

    pitch (radians, a constant): how far the camera looks down on the subject. R_y turns
    the pose about the camera's vertical axis, but a camera that looks down sees the
    body's own vertical axis tilted in depth by the pitch, and turning about the wrong
    axis makes the body lean sideways in the new view (by up to the pitch), as no real
    camera shows it. With a pitch the azimuth turns about the body's axis instead:
    R_x(e) T R_y(a) T^T, T = R_x(pitch). 0 (the papers'): about the camera's axis."""
    xp = get_array_module(azimuth)
    a, e = azimuth.astype(dtype), elevation.astype(dtype)
    ca, sa, ce, se = xp.cos(a), xp.sin(a), xp.cos(e), xp.sin(e)
    one, zero = xp.ones_like(a), xp.zeros_like(a)
    R_y = xp.stack([ca, zero, -sa, zero, one, zero, sa, zero, ca], axis=-1).reshape(-1, 3, 3)
    R_x = xp.stack([one, zero, zero, zero, ce, -se, zero, se, ce], axis=-1).reshape(-1, 3, 3)
    if not pitch:
        return R_x @ R_y
    T = pitch_matrix(pitch, dtype, xp)
    return R_x @ (T @ R_y @ T.T)


def rotate(pose_3d, R):
    """Rotate every joint: (N, J, 3) -> (N, J, 3), p' = R p.  R^-1 = R^T."""
    return pose_3d @ R.transpose(0, 2, 1)


def facing(pose_3d, pitch=0.0):
    """Which way each body faces: (N,) radians about its vertical axis, the angle in the
    horizontal plane of the line from its right side to its left (hips and shoulders),
    seen in the body's frame (a camera looking down `pitch` radians: T^T p). 0: the
    body faces the camera (its left at +x); the turn T R_y(a) T^T adds a to it."""
    xp = get_array_module(pose_3d)
    side = pose_3d[:, LEFT_HIP] + pose_3d[:, LEFT_SHOULDER] - pose_3d[:, RIGHT_HIP] - pose_3d[:, RIGHT_SHOULDER]
    side = side @ pitch_matrix(pitch, side.dtype, xp)  # T^T p, as rows
    return xp.arctan2(side[:, 2], side[:, 0])


def rotate_backward(d_rotated, R):
    return d_rotated @ R


def compose(pose_2d, z_hat):
    """(x, y) (N, J, 2) and z_hat (N, J) -> the 3D pose (x, y, z_hat) (N, J, 3)."""
    xp = get_array_module(pose_2d)
    return xp.concatenate([pose_2d, z_hat[..., None]], axis=-1)


def project(pose_3d):
    """Orthographic projection P: (N, J, 3) -> (N, J, 2)."""
    return pose_3d[..., :2]


def project_backward(d_pose_2d):
    xp = get_array_module(d_pose_2d)
    return xp.concatenate([d_pose_2d, xp.zeros_like(d_pose_2d[..., :1])], axis=-1)


def project_view(pose_3d, depth=None):
    """P for the synthetic view: orthographic (depth None) or perspective.
    Returns (pose_2d, cache)."""
    if depth is None:
        return project(pose_3d), None
    f = depth / (depth + pose_3d[..., 2:])       # each joint's magnification
    return pose_3d[..., :2] * f, (pose_3d, f)


def project_view_backward(d_pose_2d, cache, depth=None):
    if depth is None:
        return project_backward(d_pose_2d)
    xp = get_array_module(d_pose_2d)
    pose_3d, f = cache
    d_xy = d_pose_2d * f
    # df/dz = -d / (d + z)^2 = -f^2 / d
    d_z = -(d_pose_2d * pose_3d[..., :2]).sum(axis=-1, keepdims=True) * (f * f / depth)
    return xp.concatenate([d_xy, d_z], axis=-1)


def unproject_view(pose_2d, z, depth=None):
    """The inverse of project_view given each joint's depth z: the 3D pose
    (x, y, z) with (x, y) = (u, v) (d + z) / d, or (u, v) when orthographic."""
    if depth is None:
        return compose(pose_2d, z)
    return compose(pose_2d * ((depth + z[..., None]) / depth), z)


def unproject_view_backward(d_pose_3d, pose_2d, z, depth=None):
    """Gradients (d pose_2d, d z) of unproject_view."""
    if depth is None:
        return d_pose_3d[..., :2], d_pose_3d[..., 2]
    d_uv = d_pose_3d[..., :2] * ((depth + z[..., None]) / depth)
    d_z = d_pose_3d[..., 2] + (d_pose_3d[..., :2] * pose_2d).sum(axis=-1) / depth
    return d_uv, d_z


def max_normalise(pose_2d):
    """Scale each root-centred 2D pose into [-1, 1]: Y = p / s, s = max |p|.

    Real poses have max |coordinate| exactly 1, so a reprojected pose is
    normalised again before it meets the discriminator or the generators.
    Returns (Y, s, cache)."""
    xp = get_array_module(pose_2d)
    flat = pose_2d.reshape(len(pose_2d), -1)
    arg = xp.abs(flat).argmax(axis=1)
    rows = xp.arange(len(flat))
    scale = xp.abs(flat[rows, arg])
    return pose_2d / scale[:, None, None], scale, (pose_2d, scale, arg)


def max_normalise_backward(d_normalised, d_scale, cache):
    """Gradient through Y = p / s and through s = |p_argmax| (d_scale: upstream
    gradient of s itself, e.g. from undoing the normalisation; may be None)."""
    xp = get_array_module(d_normalised)
    pose_2d, scale, arg = cache
    d_pose = d_normalised / scale[:, None, None]
    ds = -(d_normalised * pose_2d).sum(axis=(1, 2)) / scale ** 2
    if d_scale is not None:
        ds = ds + d_scale
    flat = d_pose.reshape(len(d_pose), -1)  # a view: the write below lands in d_pose
    rows = xp.arange(len(flat))
    flat[rows, arg] += ds * xp.sign(pose_2d.reshape(len(pose_2d), -1)[rows, arg])
    return d_pose
