"""Crash-safe checkpoint saving and a clear error for foreign checkpoints.

:class:`AtomicCheckpointHook` is MMEngine's ``CheckpointHook`` whose files
are written to a temporary name and renamed (``mmsdae.utils.checkpoint``), so a
job killed while saving leaves the previous checkpoint and
``last_checkpoint`` valid (also with ``max_keep_ckpts``).
:class:`CheckpointCompatibilityHook` stops a run that loads or resumes from
a checkpoint of another architecture, which MMEngine would load with
warnings only.
"""
import os.path as osp
import shutil
import tempfile
from typing import List

from mmengine.dist import is_main_process
from mmengine.hooks import CheckpointHook, Hook
from mmengine.model import is_model_wrapper
from mmengine.runner.checkpoint import find_latest_checkpoint
from mmpretrain.registry import HOOKS

from mmsdae.utils.checkpoint import atomic_write
from mmsdae.utils.resume import (LAST_CHECKPOINT, check_state_dict_fits,
                                 strip_prefixes)


class _WorkDirRedirect:
    """The runner, except that ``work_dir`` is ``work_dir``."""

    def __init__(self, runner, work_dir: str) -> None:
        self._runner = runner
        self.work_dir = work_dir

    def __getattr__(self, name):
        return getattr(self._runner, name)


class _DeferredRemoval:
    """A file backend whose ``remove`` / ``rmtree`` only record the path,
    so that :meth:`apply` deletes old checkpoints once the new one is in
    place."""

    def __init__(self, backend) -> None:
        self._backend = backend
        self._paths: List[str] = []

    def remove(self, path) -> None:
        self._paths.append(path)

    rmtree = remove

    def apply(self) -> None:
        for path in self._paths:
            if self._backend.isfile(path):
                self._backend.remove(path)
            elif self._backend.isdir(path):  # a DeepSpeed checkpoint
                self._backend.rmtree(path)

    def __getattr__(self, name):
        return getattr(self._backend, name)


@HOOKS.register_module()
class AtomicCheckpointHook(CheckpointHook):
    """``CheckpointHook`` that never leaves a partial checkpoint or
    ``last_checkpoint``: local checkpoints go through the ``'local_atomic'``
    backend; MMEngine's plain ``open(..., 'w')`` of ``last_checkpoint`` runs
    in a scratch work dir and is renamed into place; the removal of the
    oldest kept checkpoint (``max_keep_ckpts``), which MMEngine does before
    the save, waits until the new files are in place.
    """

    def before_train(self, runner) -> None:
        out_dir = self.out_dir or runner.work_dir
        if (self.backend_args is None and self.file_client_args is None
                and '://' not in str(out_dir)):
            self.backend_args = dict(backend='local_atomic')
        super().before_train(runner)

    def _save_checkpoint_with_step(self, runner, step, meta):
        backend, self.file_backend = self.file_backend, _DeferredRemoval(
            self.file_backend)
        try:
            if is_main_process():
                self._save_with_atomic_last_checkpoint(runner, step, meta)
            else:  # only the main process writes files
                super()._save_checkpoint_with_step(runner, step, meta)
            self.file_backend.apply()  # not reached if the save failed
        finally:
            self.file_backend = backend

    def _save_with_atomic_last_checkpoint(self, runner, step, meta):
        scratch = tempfile.mkdtemp(
            prefix=f'.{LAST_CHECKPOINT}.', dir=runner.work_dir)
        try:
            super()._save_checkpoint_with_step(
                _WorkDirRedirect(runner, scratch), step, meta)
            written = osp.join(scratch, LAST_CHECKPOINT)
            if osp.isfile(written):
                with open(written, 'rb') as f:
                    text = f.read()
                atomic_write(
                    osp.join(runner.work_dir, LAST_CHECKPOINT),
                    lambda f: f.write(text))
        finally:
            shutil.rmtree(scratch, ignore_errors=True)


@HOOKS.register_module()
class CheckpointCompatibilityHook(Hook):
    """Refuse a checkpoint whose tensors do not fit the model (MMEngine
    loads with ``strict=False``), with
    :func:`mmsdae.utils.resume.check_state_dict_fits` in
    ``after_load_checkpoint``, before the weights are loaded; strict when
    resuming."""

    priority = 'VERY_HIGH'

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        model = runner.model.module if is_model_wrapper(
            runner.model) else runner.model
        state = checkpoint.get('state_dict', checkpoint)
        # MMEngine does not pass the file name to the hook; recover it the
        # way ``Runner.load_or_resume`` chose it.
        resuming = bool(getattr(runner, '_resume', False))
        path = getattr(runner, '_load_from', None)
        if resuming and path is None:
            path = find_latest_checkpoint(runner.work_dir)
        # position embeddings the mmpretrain ViT resizes when it loads
        resizable = [(f'{name}.' if name else '') + 'pos_embed'
                     for name, module in model.named_modules()
                     if hasattr(module, '_prepare_pos_embed')]
        check_state_dict_fits(
            model.state_dict(),
            strip_prefixes(state),
            strict=resuming,
            path=f'checkpoint {path}' if path else 'the checkpoint',
            model_name=f'the {type(model).__name__} model of this config',
            resizable=resizable)
