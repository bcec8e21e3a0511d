"""The SdAE teacher's EMA schedule (Eq. 7, Sec. 4.2, supplementary Sec. 1)."""
import math
from typing import Optional

from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from mmengine.runner import EpochBasedTrainLoop
from mmpretrain.registry import HOOKS

UPDATE_INTERVALS = ('epoch', 'iter')
CHECKPOINT_KEY = 'sdae_teacher_ema'


def cosine_momentum(epoch: int, max_epochs: int, start: float,
                    end: float) -> float:
    """Momentum eta for ``epoch`` (0-based) on a cosine ramp.

    ``eta(e) = end - (end - start) * (1 + cos(pi * e / (E - 1))) / 2``: eta is
    ``start`` at the first epoch, ``end`` at the last (E - 1), and
    ``(start + end) / 2`` half-way. Supplementary Sec. 1: 0.96 -> 0.99.
    """
    if max_epochs <= 1:
        return end
    progress = min(max(epoch, 0), max_epochs - 1) / (max_epochs - 1)
    return end - (end - start) * (1 + math.cos(math.pi * progress)) / 2


@HOOKS.register_module()
class SdAETeacherEMAHook(Hook):
    """Update the SdAE teacher by EMA (Eq. 7) with a per-epoch cosine eta.

    The paper (supplementary Sec. 1) ramps eta from 0.96 to 0.99 and updates
    the teacher once per epoch; Sec. 4.2 / Fig. 4(a) compares that with an
    update after every iteration (``update_interval='iter'``, which uses the
    same per-epoch eta, as the released code does).

    The last eta and the cadence are saved in the checkpoint and restored on
    resume; the teacher weights and the number of updates
    (``teacher_updates``) are part of the model's state dict.

    Args:
        momentum (float): eta at the first epoch. Defaults to 0.96.
        end_momentum (float): eta at the last epoch. Defaults to 0.99.
        update_interval (str): ``'epoch'`` (paper default) or ``'iter'``.
        interval (int): update every ``interval`` epochs (or iterations).
    """

    priority = 'NORMAL'  # before CheckpointHook (VERY_LOW) saves the epoch

    def __init__(self,
                 momentum: float = 0.96,
                 end_momentum: float = 0.99,
                 update_interval: str = 'epoch',
                 interval: int = 1) -> None:
        for name, value in (('momentum', momentum), ('end_momentum',
                                                      end_momentum)):
            if not 0.0 <= value < 1.0:
                raise ValueError(f'{name}={value} must lie in [0, 1) '
                                 '(Eq. 7); the paper uses 0.96 -> 0.99.')
        if update_interval not in UPDATE_INTERVALS:
            raise ValueError(f'update_interval={update_interval!r}: choose '
                             f'one of {UPDATE_INTERVALS}.')
        if not isinstance(interval, int) or interval < 1:
            raise ValueError(f'interval={interval!r} must be a positive int.')
        self.momentum = momentum
        self.end_momentum = end_momentum
        self.update_interval = update_interval
        self.interval = interval
        self.last_momentum: Optional[float] = None

    def momentum_at(self, epoch: int, max_epochs: int) -> float:
        return cosine_momentum(epoch, max_epochs, self.momentum,
                               self.end_momentum)

    @staticmethod
    def _algorithm(runner):
        model = runner.model.module if is_model_wrapper(
            runner.model) else runner.model
        if not hasattr(model, 'momentum_update'):
            raise TypeError(
                f'SdAETeacherEMAHook needs a model with momentum_update() '
                f'(e.g. SdAE), got {type(model).__name__}: remove the hook '
                'from custom_hooks or use an SdAE model.')
        return model

    def before_train(self, runner) -> None:
        self._algorithm(runner)
        if not isinstance(runner.train_loop, EpochBasedTrainLoop):
            raise ValueError(
                'SdAETeacherEMAHook schedules eta per epoch and needs an '
                'epoch-based train loop, got '
                f'{type(runner.train_loop).__name__}: use '
                "train_cfg=dict(type='EpochBasedTrainLoop', max_epochs=...).")

    def _update(self, runner) -> None:
        eta = self.momentum_at(runner.epoch, runner.max_epochs)
        self._algorithm(runner).momentum_update(eta)
        self.last_momentum = eta
        runner.message_hub.update_scalar('train/teacher_momentum', eta)

    def after_train_iter(self, runner, batch_idx, data_batch=None,
                         outputs=None) -> None:
        if self.update_interval == 'iter' and self.every_n_train_iters(
                runner, self.interval):
            self._update(runner)

    def after_train_epoch(self, runner) -> None:
        if self.update_interval == 'epoch' and self.every_n_epochs(
                runner, self.interval):
            self._update(runner)

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        checkpoint.setdefault('meta', {})[CHECKPOINT_KEY] = dict(
            last_momentum=self.last_momentum,
            update_interval=self.update_interval,
            interval=self.interval)

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        state = (checkpoint.get('meta') or {}).get(CHECKPOINT_KEY)
        if state is None:
            return
        self.last_momentum = state['last_momentum']
        saved = (state['update_interval'], state['interval'])
        if saved != (self.update_interval, self.interval):
            runner.logger.warning(
                f'the checkpoint was trained with teacher updates every '
                f'{saved[1]} {saved[0]}(s), this run updates every '
                f'{self.interval} {self.update_interval}(s).')
