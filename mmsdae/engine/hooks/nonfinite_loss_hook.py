"""Stop, or skip the step, when the training loss is NaN or infinite.

An optimizer step on a NaN loss writes NaN into every weight (and into the
EMA teacher after it), and the run goes on logging ``loss: nan`` until
someone notices, with every later checkpoint useless. The check must come
before the step, so an ``after_train_iter`` hook is too late: this hook
wraps the ``backward`` and ``step`` of the runner's optimizer wrapper(s),
whatever their type (``OptimWrapper``, ``MixedPrecisionOptimWrapper`` from
``--amp``, with or without gradient accumulation).

Cost: ``backward`` records ``isfinite(loss)`` on the loss's device (no
host sync); ``step`` reads it once: one host sync per optimizer step, which
waits for the queued backward pass before the step is queued. Under DDP
the flag is all-reduced (one scalar) so that every rank stops or skips
together.
"""
import logging
from typing import List, Optional

import torch
from mmengine.dist import all_reduce, get_world_size
from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmengine.optim import OptimWrapperDict
from mmpretrain.registry import HOOKS

from mmsdae.utils.resume import read_last_checkpoint

ACTIONS = ('stop', 'skip')


class NonFiniteLossError(FloatingPointError):
    """The training loss was NaN or infinite."""


@HOOKS.register_module()
class NonFiniteLossHook(Hook):
    """Guard every optimizer step against a NaN or infinite loss.

    - ``action='stop'``: raise :class:`NonFiniteLossError` naming the
      iteration and the last good checkpoint (``work_dir/last_checkpoint``;
      no step was taken, so it and the weights in memory are clean).
    - ``action='skip'``: drop the gradients, take no optimizer step (with
      gradient accumulation: none for the whole accumulation window), log
      a warning, and go on. The learning-rate schedule and an EMA teacher
      update still advance. The skipped iteration's non-finite log values
      are removed from the logs, so smoothed losses stay meaningful. More
      than ``max_consecutive_skips`` skips in a row stop the run as above.

    Only the loss is checked (non-finite gradients: fp16's loss scaler
    skips the step itself, bf16 / fp32 can add ``optim_wrapper.clip_grad``).
    ``max_consecutive_skips=None`` allows any number.
    """

    priority = 'HIGHEST'  # clean the outputs before RuntimeInfoHook logs them

    def __init__(self,
                 action: str = 'stop',
                 max_consecutive_skips: Optional[int] = 10) -> None:
        if action not in ACTIONS:
            raise ValueError(f'action={action!r}: choose one of {ACTIONS}.')
        self.action = action
        self.max_consecutive_skips = max_consecutive_skips
        self.skipped = 0
        self.consecutive = 0
        self._skipped_this_iter = False
        self._runner = None

    def before_train(self, runner) -> None:
        self._runner = runner
        wrapper = runner.optim_wrapper
        wrappers = (wrapper.values()
                    if isinstance(wrapper, OptimWrapperDict) else [wrapper])
        for optim_wrapper in wrappers:
            self._guard(optim_wrapper)

    def _guard(self, optim_wrapper) -> None:
        """Wrap ``backward`` (record the flag) and ``step`` (act on it) of
        one optimizer wrapper instance."""
        if getattr(optim_wrapper, '_nonfinite_guard', None) is self:
            return
        backward, step = optim_wrapper.backward, optim_wrapper.step
        finite: List[torch.Tensor] = []  # one flag per backward since a step

        def guarded_backward(loss: torch.Tensor, **kwargs) -> None:
            finite.append(torch.isfinite(loss.detach()).all())
            backward(loss, **kwargs)

        def guarded_step(**kwargs) -> None:
            ok = self._all_finite(finite)
            finite.clear()
            if ok:
                self.consecutive = 0
                step(**kwargs)
            else:
                self._non_finite()  # raises, or skips (update_params zeroes
                # the gradients right after)

        optim_wrapper.backward = guarded_backward
        optim_wrapper.step = guarded_step
        optim_wrapper._nonfinite_guard = self

    @staticmethod
    def _all_finite(flags: List[torch.Tensor]) -> bool:
        if not flags:
            return True
        flag = torch.stack(flags).all().to(torch.int32)
        if get_world_size() > 1:
            all_reduce(flag, op='min')
        return bool(flag.item())

    def _non_finite(self) -> None:
        runner = self._runner
        where = f'iteration {runner.iter + 1} (epoch {runner.epoch + 1})'
        self.consecutive += 1
        if self.action == 'skip' and (self.max_consecutive_skips is None or
                                      self.consecutive
                                      <= self.max_consecutive_skips):
            self.skipped += 1
            self._skipped_this_iter = True
            print_log(
                f'Non-finite loss at {where}: optimizer step skipped '
                f'({self.skipped} skipped so far).',
                logger='current',
                level=logging.WARNING)
            return
        ckpt = read_last_checkpoint(runner.work_dir)
        resume = (f'the last good checkpoint is {ckpt} (tools/train.py ... '
                  f'--resume {ckpt})' if ckpt else
                  f'no checkpoint was saved yet in {runner.work_dir}')
        why = ('the loss was NaN or infinite' if self.action == 'stop' else
               f'the loss was NaN or infinite {self.consecutive} times in a '
               f'row (max_consecutive_skips={self.max_consecutive_skips})')
        raise NonFiniteLossError(
            f'Training stopped at {where}: {why}; no optimizer step was '
            f'taken, {resume}. Fix: lower the learning rate or add '
            'optim_wrapper.clip_grad=dict(max_norm=...), check the data; or '
            'skip such steps with default_hooks.nonfinite_loss.action='
            '\'skip\'.')

    def after_train_iter(self, runner, batch_idx, data_batch=None,
                         outputs=None) -> None:
        if not self._skipped_this_iter:
            return
        self._skipped_this_iter = False
        if isinstance(outputs, dict):
            for key in [k for k, v in outputs.items()
                        if torch.is_tensor(v) and not torch.isfinite(v).all()]:
                del outputs[key]

    def after_train(self, runner) -> None:
        if self.skipped:
            print_log(
                f'Optimizer steps skipped for a non-finite loss: '
                f'{self.skipped}.',
                logger='current',
                level=logging.WARNING)
