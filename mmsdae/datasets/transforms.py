"""Image loading that survives a corrupt file in a days-long run.

MMCV's ``LoadImageFromFile`` raises on an unreadable file, inside a
dataloader worker, and the run dies hours in; with ``ignore_empty=True`` it
returns ``None`` and MMEngine's ``BaseDataset`` silently draws another
image. :class:`SafeLoadImageFromFile` makes the choice explicit: skip the
file with a warning that names it and count it, or stop with an error that
names it and the option to change. :class:`~mmsdae.engine.BadImageHook`
reports the count and stops a run whose data is mostly unreadable.
"""
import logging
import multiprocessing
from typing import Optional

from mmcv.transforms import LoadImageFromFile
from mmengine.logging import print_log
from mmpretrain.registry import TRANSFORMS

ON_ERROR = ('skip', 'raise')


class BadImageError(OSError):
    """An image file that cannot be read or decoded (one-argument
    constructor, so a dataloader worker can re-raise it in the main
    process with its message intact)."""


class SharedCounter:
    """An integer shared by this process and the dataloader workers it
    starts (forked, or spawned: the value travels to a spawned worker with
    the dataset). Copies of a dataset (``get_subset`` deep-copies its
    pipeline) keep counting into the same total."""

    def __init__(self) -> None:
        self._value = multiprocessing.Value('q', 0)

    def increment(self) -> int:
        with self._value.get_lock():
            self._value.value += 1
            return self._value.value

    @property
    def value(self) -> int:
        return self._value.value

    def __deepcopy__(self, memo) -> 'SharedCounter':
        return self


@TRANSFORMS.register_module()
class SafeLoadImageFromFile(LoadImageFromFile):
    """``LoadImageFromFile`` that skips (and counts) or rejects, by config,
    a file that cannot be read or decoded.

    ``on_error='skip'`` logs the file, counts it in :attr:`skipped` and
    returns ``None`` (MMEngine's dataset then loads another random image;
    test-mode datasets refuse ``None``, so evaluation keeps ``'raise'``);
    ``'raise'`` raises :class:`BadImageError`. ``max_consecutive_errors``
    failures in a row stop the run even when skipping (wrong folder,
    unmounted disk). Other arguments: as ``LoadImageFromFile``, without
    ``ignore_empty``.
    """

    def __init__(self,
                 on_error: str = 'skip',
                 max_consecutive_errors: int = 50,
                 **kwargs) -> None:
        if on_error not in ON_ERROR:
            raise ValueError(f'on_error={on_error!r}: choose one of '
                             f'{ON_ERROR}.')
        if kwargs.pop('ignore_empty', False):
            raise ValueError('SafeLoadImageFromFile: use on_error=\'skip\' '
                             'instead of ignore_empty=True.')
        super().__init__(**kwargs)
        self.on_error = on_error
        self.max_consecutive_errors = int(max_consecutive_errors)
        self.skipped = SharedCounter()
        self._consecutive = 0  # per process: each worker has its own

    def transform(self, results: dict) -> Optional[dict]:
        path = results['img_path']
        try:
            results = super().transform(results)
        except Exception as exc:
            return self._bad_image(path, exc)
        self._consecutive = 0
        return results

    def _bad_image(self, path: str, exc: Exception) -> None:
        # mmcv asserts when OpenCV decodes nothing (it returns None).
        reason = ('not a decodable image' if isinstance(exc, AssertionError)
                  else f'{type(exc).__name__}: {exc}')
        if self.on_error == 'raise':
            raise BadImageError(
                f'cannot read image {path!r} ({reason}). Remove or replace '
                'the file, or set on_error=\'skip\' on the pipeline\'s '
                'SafeLoadImageFromFile to skip unreadable files (each is '
                'logged and counted).') from exc
        self._consecutive += 1
        if self._consecutive >= self.max_consecutive_errors:
            raise BadImageError(
                f'{self._consecutive} images in a row could not be read, the '
                f'last {path!r} ({reason}): the data is not images, or not '
                'readable. Check data_root / data_prefix / ann_file and the '
                'disk.') from exc
        count = self.skipped.increment()
        print_log(
            f'Skipped unreadable image {path!r} ({reason}); another image '
            f'is used instead ({count} skipped so far). Set on_error='
            '\'raise\' on SafeLoadImageFromFile to stop instead.',
            logger='current',
            level=logging.WARNING)
        return None

    def __repr__(self) -> str:
        return (super().__repr__()[:-1] + f", on_error='{self.on_error}')")
