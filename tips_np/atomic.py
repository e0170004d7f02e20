"""Writing files so that none is ever half-written."""
import os
from contextlib import contextmanager


@contextmanager
def atomic_write(path, suffix=""):
    """Yield a temporary path beside `path` to write to; on success it is renamed
    onto `path`, on failure removed. `suffix` keeps an extension that a writer
    insists on (np.save appends '.npy' to a name without it)."""
    tmp = f"{path}.tmp{os.getpid()}{suffix}"
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
