"""Crash-safe file writes: a temporary file next to the target, renamed.

A job killed while writing a checkpoint (pre-emption, OOM killer, a full
disk) must not leave a half-written file under the final name: ``--resume``
would then pick it up, or the previous checkpoint of the same name would be
gone. :func:`atomic_write` writes ``.<name>.<random>.tmp`` in the target's
folder, flushes and fsyncs it, and ``os.replace``-s it onto the target, which
is atomic on POSIX and Windows within one file system: readers see the old
file or the complete new one, never a part. A killed writer leaves at most
the hidden ``.tmp`` file, which matches none of the checkpoint patterns.

:class:`AtomicLocalBackend` is MMEngine's ``LocalBackend`` with these writes,
registered as the file backend ``'local_atomic'``
(``backend_args=dict(backend='local_atomic')``); :class:`AtomicCheckpointHook`
(``mmsdae.engine``) uses it for checkpoints and ``last_checkpoint``.
"""
import os
import os.path as osp
import tempfile
from typing import BinaryIO, Callable, Union

from mmengine.fileio import LocalBackend, register_backend
from mmengine.utils import mkdir_or_exist


def _fsync_dir(directory: str) -> None:
    """Make the rename itself durable (POSIX; a no-op where unsupported)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write(dst: Union[str, os.PathLike],
                 write: Callable[[BinaryIO], None]) -> None:
    """Call ``write(f)`` on a temporary file and rename it to ``dst``.

    The file gets the permissions ``open(dst, 'wb')`` would give it (0666
    less the umask). On any error, including ``KeyboardInterrupt``, the
    temporary file is removed and ``dst`` is left as it was.

    Raises:
        FileNotFoundError: if the folder of ``dst`` does not exist.
    """
    dst = osp.abspath(os.fspath(dst))
    directory = osp.dirname(dst)
    if not osp.isdir(directory):
        raise FileNotFoundError(
            f'destination directory does not exist: {directory}')
    fd, tmp = tempfile.mkstemp(
        prefix=f'.{osp.basename(dst)}.', suffix='.tmp', dir=directory)
    try:
        with os.fdopen(fd, 'wb') as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp creates it 0600
        os.replace(tmp, dst)
    except BaseException:
        if osp.exists(tmp):
            os.unlink(tmp)
        raise
    _fsync_dir(directory)


@register_backend('local_atomic')
class AtomicLocalBackend(LocalBackend):
    """MMEngine's local file backend whose ``put`` / ``put_text`` are
    :func:`atomic_write`-s (reading, listing and removing are unchanged)."""

    def put(self, obj: bytes, filepath: Union[str, os.PathLike]) -> None:
        mkdir_or_exist(osp.dirname(osp.abspath(os.fspath(filepath))))
        atomic_write(filepath, lambda f: f.write(obj))

    def put_text(self,
                 obj: str,
                 filepath: Union[str, os.PathLike],
                 encoding: str = 'utf-8') -> None:
        self.put(obj.encode(encoding), filepath)
