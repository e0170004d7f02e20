"""Writing files so that none is ever half-written, and a failure to write (a
read-only place, a full disk, a missing folder) is one line naming the file."""
import io
import os
import shutil
import tempfile
from contextlib import contextmanager

import h5py

from .errors import TipsError


class WriteError(TipsError, OSError):
    """A file or folder could not be written; the message names it and says why.
    Also an OSError, so code that catches those still does."""


def _reason(e):
    """The operating system's words for an OSError (h5py's long messages cut to them)."""
    return e.strerror or str(e).split(" (")[0] or type(e).__name__


def write_error(path, e):
    err = WriteError(f"{path}: cannot write it ({_reason(e)})")
    err.errno = e.errno
    return err


@contextmanager
def atomic_write(path, suffix=""):
    """Yield a temporary path beside `path` to write to; on success it is renamed
    onto `path`, on failure removed. `suffix` keeps an extension that a writer
    insists on (np.save appends '.npy' to a name without it). An OSError while
    writing becomes a WriteError naming `path`."""
    tmp = f"{path}.tmp{os.getpid()}{suffix}"
    try:
        yield tmp
        os.replace(tmp, path)
    except OSError as e:
        if isinstance(e, TipsError):
            raise
        raise write_error(path, e) from None
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def file_size_limit():
    """The largest file this process may write (`ulimit -f`), or None."""
    try:
        import resource
    except ImportError:  # not on Unix
        return None
    soft = resource.getrlimit(resource.RLIMIT_FSIZE)[0]
    return None if soft == resource.RLIM_INFINITY else soft


def _size(n_bytes):
    return f"{n_bytes / 1e6:.1f} MB" if n_bytes >= 1e5 else f"{n_bytes / 1e3:.1f} kB"


def check_space(path, n_bytes):
    """Refuse, before writing, a file of n_bytes that its disk (or `ulimit -f`) has no room for."""
    folder = os.path.dirname(os.path.abspath(path))
    free = shutil.disk_usage(folder).free
    limit = file_size_limit()
    if n_bytes > free:
        raise WriteError(f"{path}: cannot write it ({_size(n_bytes)}, but {_size(free)} are free on its disk)")
    if limit is not None and n_bytes > limit:
        raise WriteError(f"{path}: cannot write it ({_size(n_bytes)}, more than this process's file-size limit "
                         f"of {_size(limit)}, ulimit -f)")


@contextmanager
def hdf5_file(path):
    """Yield a new h5py.File built in memory; on success its bytes are checked
    against the free space and written to `path` atomically. HDF5 itself never
    writes to disk, so a full disk is a plain OSError (one line, never a crash
    inside the library)."""
    buffer = io.BytesIO()
    with h5py.File(buffer, "w") as f:
        yield f
    data = buffer.getbuffer()
    check_space(path, len(data))
    with atomic_write(path) as tmp, open(tmp, "wb") as out:
        out.write(data)


def make_folder(folder):
    """Create `folder` (and its parents) if need be and check that files can be
    written into it; a WriteError naming it otherwise."""
    try:
        os.makedirs(folder or ".", exist_ok=True)
        tempfile.TemporaryFile(dir=folder or ".").close()
    except OSError as e:
        raise WriteError(f"{folder}: cannot write into this folder ({_reason(e)})") from None
