"""Reading and writing checkpoint files: the one reader, the one writer.

:func:`load_checkpoint_file` opens every checkpoint of mmsdae (CPU,
``weights_only`` with MMEngine's types allow-listed) and raises one error,
:class:`CheckpointFileError` (``"<path>: <what is wrong>"``);
:func:`unwrap_state_dict` finds the tensors inside. :func:`atomic_write`
(temporary file, fsync, ``os.replace``) never leaves a partial file under
the final name; :func:`save_checkpoint` and the ``'local_atomic'`` file
backend (:class:`AtomicLocalBackend`, used by ``AtomicCheckpointHook``)
write through it.
"""
import argparse
import os
import os.path as osp
import re
import tempfile
import zipfile
from typing import Any, BinaryIO, Callable, Dict, List, Tuple, Union

import torch
from mmengine.fileio import LocalBackend, register_backend
from mmengine.utils import mkdir_or_exist

from .safe_globals import allow_mmengine_checkpoint_globals

StateDict = Dict[str, torch.Tensor]
ZIP_MAGIC = b'PK\x03\x04'  # torch.save's format since PyTorch 1.6
# Plain attribute bags that released training checkpoints (MAE, DeiT, DINO)
# keep their argparse options in: safe to rebuild under weights_only.
EXTRA_SAFE_GLOBALS = [argparse.Namespace]


class CheckpointFileError(ValueError):
    """A checkpoint file that cannot be read (``str()``: ``path: reason``)."""

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f'{path}: {reason}')
        self.path = path
        self.reason = reason


class CheckpointNotFoundError(CheckpointFileError, FileNotFoundError):
    """A checkpoint path that is no file."""


def _describe_head(head: bytes) -> str:
    text = head.lstrip()
    if text[:1] in (b'{', b'['):
        kind = 'it looks like JSON'
    elif head.startswith(b'\x89PNG') or head.startswith(b'\xff\xd8\xff'):
        kind = 'it looks like an image'
    elif head.startswith(b'\x1f\x8b'):
        kind = 'it is gzip-compressed (a .tar.gz? unpack it first)'
    elif all(32 <= b < 127 or b in b'\t\r\n' for b in head):
        kind = 'it looks like text'
    else:
        kind = 'unknown binary content'
    return (f'is not a readable PyTorch checkpoint: it starts with '
            f'{head[:16]!r} ({kind}); a torch.save file starts with '
            f'{ZIP_MAGIC!r}.')


def _check_file(path: str) -> bool:
    """Raise for a path that cannot hold a checkpoint; True for a zip
    (memory-mappable) file, False for a legacy pickle one."""
    if not osp.exists(path):
        raise CheckpointNotFoundError(path, 'does not exist.')
    if osp.isdir(path):
        raise CheckpointNotFoundError(path,
                                      'is a folder, not a checkpoint file.')
    size = osp.getsize(path)
    if size == 0:
        raise CheckpointFileError(
            path, 'is empty (0 bytes): its save was interrupted.')
    with open(path, 'rb') as f:
        head = f.read(64)
    if head.startswith(ZIP_MAGIC):
        if not zipfile.is_zipfile(path):
            raise CheckpointFileError(
                path, f'is truncated or corrupt ({size} bytes, the end of its '
                'zip archive is missing): the save or copy was cut short.')
        return True
    if head[:1] == b'\x80':  # pickle: torch.save before PyTorch 1.6
        return False
    raise CheckpointFileError(path, _describe_head(head))


def load_checkpoint_file(
        path: str,
        weights_only: bool = True,
        mmap: bool = False,
        unsafe_fix: str = 'load it with weights_only=False') -> dict:
    """The checkpoint dict at ``path``, loaded on the CPU (``mmap``: memory-
    mapped when it is a zip file). ``unsafe_fix`` tells the user how to load
    a trusted file with other Python objects (e.g. ``'pass --unsafe-load'``).
    """
    path = os.fspath(path)
    is_zip = _check_file(path)
    allow_mmengine_checkpoint_globals()
    try:
        with torch.serialization.safe_globals(EXTRA_SAFE_GLOBALS):
            ckpt = torch.load(path, map_location='cpu',
                              weights_only=weights_only,
                              mmap=mmap and is_zip)
    except Exception as exc:  # torch raises many types here
        message = str(exc)
        refused = re.search(r'Unsupported global: GLOBAL (\S+)', message)
        if weights_only and 'Weights only load failed' in message:
            what = f'unsupported global {refused.group(1)}' if refused \
                else _first_line(message)
            raise CheckpointFileError(
                path, 'holds Python objects besides tensors that '
                f'torch.load(weights_only=True) refuses ({what}): if you '
                f'trust the file, {unsafe_fix}.') from exc
        raise CheckpointFileError(
            path, 'is not a readable PyTorch checkpoint '
            f'({type(exc).__name__}: {_first_line(message)}).') from exc
    if not isinstance(ckpt, dict):
        raise CheckpointFileError(
            path, f'holds a {type(ckpt).__name__}, not a checkpoint dict.')
    return ckpt


def _first_line(message: str) -> str:
    lines = [line.strip() for line in message.splitlines() if line.strip()]
    return lines[0] if lines else ''


def unwrap_state_dict(ckpt: dict,
                      strip_module: bool = True
                      ) -> Tuple[StateDict, List[str]]:
    """``(tensors, skipped non-tensor keys)`` of ``ckpt['state_dict']``,
    ``ckpt['model']``, ``ckpt`` itself, or its dicts of tensors flattened as
    ``<entry>.<key>`` (RC-MAE's and DINO's releases), ``module.`` stripped
    with ``strip_module``."""
    for key in ('state_dict', 'model'):
        if isinstance(ckpt.get(key), dict):
            ckpt = ckpt[key]
            break
    else:
        nested = {
            f'{outer}.{inner}': value
            for outer, sub in ckpt.items() if isinstance(sub, dict)
            for inner, value in sub.items() if torch.is_tensor(value)
        }
        if nested and not any(torch.is_tensor(v) for v in ckpt.values()):
            ckpt = nested
        if not any(torch.is_tensor(v) for v in ckpt.values()):
            raise ValueError(
                'no state dict in the checkpoint (top-level keys: '
                f'{sorted(map(str, ckpt))[:20]}): expected a "state_dict" or '
                '"model" entry, or a dict of tensors.')
    state, skipped = {}, []
    for key, value in ckpt.items():
        if not torch.is_tensor(value):
            skipped.append(str(key))
            continue
        if strip_module and key.startswith('module.'):
            key = key[len('module.'):]
        state[key] = value
    return state, skipped


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
    """Call ``write(f)`` on a temporary file and rename it to ``dst`` (mode
    0666 less the umask); on any error ``dst`` is left as it was."""
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


def save_checkpoint(obj: Any, dst: str, overwrite: bool = False) -> None:
    """``torch.save(obj, dst)`` through :func:`atomic_write`."""
    if osp.exists(dst) and not overwrite:
        raise FileExistsError(
            f'destination exists: {dst} (pass --force to overwrite it).')
    atomic_write(dst, lambda f: torch.save(obj, f))


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
