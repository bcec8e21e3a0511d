"""EMA teacher updates (SdAE Eq. 7, RC-MAE Eq. 2) and their cosine momentum
ramp: :class:`TeacherEMAHook`, and :class:`SdAETeacherEMAHook` with SdAE's
defaults."""
import math
from typing import Optional, Tuple

from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from mmengine.optim import OptimWrapperDict
from mmengine.runner import EpochBasedTrainLoop
from mmpretrain.registry import HOOKS

UPDATE_INTERVALS = ('epoch', 'iter')
SCHEDULES = ('epoch', 'iter')
CHECKPOINT_KEY = 'teacher_ema'


def cosine_momentum(epoch: int, max_epochs: int, start: float,
                    end: float) -> float:
    """``eta(e) = end - (end - start) * (1 + cos(pi * e / (E - 1))) / 2``
    for 0-based ``epoch`` e (or iteration): ``start`` first, ``end`` last
    (SdAE supp. Sec. 1: 0.96 -> 0.99; RC-MAE per iteration: 0.996 -> 1)."""
    if max_epochs <= 1:
        return end
    progress = min(max(epoch, 0), max_epochs - 1) / (max_epochs - 1)
    return end - (end - start) * (1 + math.cos(math.pi * progress)) / 2


def accumulation(runner) -> Tuple[int, bool]:
    """``(accumulative_counts, stepped)``: micro-batches per optimizer step,
    and whether the iteration that just ran stepped the optimizer
    (``should_update()`` after ``update_params``). MMEngine 0.10.7 has no
    public accessor for ``_accumulative_counts``; it is read here only."""
    wrappers = runner.optim_wrapper
    wrappers = list(wrappers.values()) if isinstance(
        wrappers, OptimWrapperDict) else [wrappers]
    counts = {int(getattr(w, '_accumulative_counts', 1)) for w in wrappers}
    if len(counts) != 1:
        raise ValueError(
            f'the optimizer wrappers accumulate {sorted(counts)} micro-batches'
            ': the EMA teacher follows one optimizer step, give every '
            'wrapper the same accumulative_counts.')
    stepped = all(w.should_update() for w in wrappers
                  if hasattr(w, 'should_update'))
    return counts.pop(), stepped


@HOOKS.register_module()
class TeacherEMAHook(Hook):
    """Update an EMA teacher (SdAE Eq. 7, RC-MAE Eq. 2) on a cosine ramp.

    SdAE (supp. Sec. 1) updates once per epoch with one eta per epoch
    (Fig. 4(a) compares ``update_interval='iter'``); RC-MAE updates every
    iteration on a per-iteration ramp (``schedule='iter'``).

    With ``accumulative_counts=k`` an ``'iter'`` update follows each
    optimizer step only (both equations follow a gradient step):
    ``interval`` and the ``'iter'`` ramp count the ``ceil(max_iters / k)``
    optimizer steps. ``every_micro_batch`` updates after every loader batch
    instead (RC-MAE's ``accum_iter`` loop). The last eta and the cadence
    are saved in the checkpoint.

    Args:
        momentum (float): eta at the start, in [0, 1).
        end_momentum (float): eta at the end, in [0, 1] (1: the teacher
            stops moving).
        update_interval (str): ``'epoch'`` or ``'iter'``.
        interval (int): update every ``interval`` epochs (or iterations).
        schedule (str): one eta per ``'epoch'`` (ramp over epochs) or per
            ``'iter'`` (ramp over all training iterations).
    """

    priority = 'NORMAL'  # before CheckpointHook (VERY_LOW) saves the epoch
    #: read by the start-up check (utils/preflight.check_teacher_updates)
    updates_ema_teacher = True

    def __init__(self,
                 momentum: float,
                 end_momentum: float,
                 update_interval: str = 'iter',
                 interval: int = 1,
                 schedule: str = 'iter',
                 every_micro_batch: bool = False) -> None:
        if not 0.0 <= momentum < 1.0:
            raise ValueError(f'momentum={momentum} must lie in [0, 1) '
                             '(SdAE: 0.96, RC-MAE: 0.996).')
        if not 0.0 <= end_momentum <= 1.0:
            raise ValueError(f'end_momentum={end_momentum} must lie in '
                             '[0, 1] (SdAE: 0.99, RC-MAE: 1.0).')
        if update_interval not in UPDATE_INTERVALS:
            raise ValueError(f'update_interval={update_interval!r}: choose '
                             f'one of {UPDATE_INTERVALS}.')
        if schedule not in SCHEDULES:
            raise ValueError(f'schedule={schedule!r}: choose one of '
                             f'{SCHEDULES}.')
        if not isinstance(interval, int) or interval < 1:
            raise ValueError(f'interval={interval!r} must be a positive int.')
        self.momentum = momentum
        self.end_momentum = end_momentum
        self.update_interval = update_interval
        self.interval = interval
        self.schedule = schedule
        self.every_micro_batch = bool(every_micro_batch)
        self.last_momentum: Optional[float] = None

    def momentum_at(self, step: int, max_steps: int) -> float:
        """eta at epoch (or iteration, for ``schedule='iter'``) ``step``."""
        return cosine_momentum(step, max_steps, self.momentum,
                               self.end_momentum)

    def _algorithm(self, runner):
        model = runner.model.module if is_model_wrapper(
            runner.model) else runner.model
        if not hasattr(model, 'momentum_update'):
            raise TypeError(
                f'{type(self).__name__} needs a model with momentum_update()'
                f', got {type(model).__name__}: remove the hook.')
        return model

    def before_train(self, runner) -> None:
        self._algorithm(runner)
        per_epoch = 'epoch' in (self.schedule, self.update_interval)
        if per_epoch and not isinstance(runner.train_loop,
                                        EpochBasedTrainLoop):
            raise ValueError(
                f'{type(self).__name__} works per epoch and needs an '
                'epoch-based train loop, got '
                f'{type(runner.train_loop).__name__}: use '
                "ResumableEpochBasedTrainLoop or schedule='iter', "
                "update_interval='iter'.")

    def _micro_batches(self, runner) -> int:
        """Iterations per step of the ramp and of ``interval``."""
        return 1 if self.every_micro_batch else accumulation(runner)[0]

    def _update(self, runner) -> None:
        if self.schedule == 'epoch':
            eta = self.momentum_at(runner.epoch, runner.max_epochs)
        else:  # optimizer steps (iterations without accumulation)
            k = self._micro_batches(runner)
            eta = self.momentum_at(runner.iter // k, -(-runner.max_iters // k))
        self._algorithm(runner).momentum_update(eta)
        self.last_momentum = eta
        runner.message_hub.update_scalar('train/teacher_momentum', eta)

    def after_train_iter(self, runner, batch_idx, data_batch=None,
                         outputs=None) -> None:
        if self.update_interval != 'iter':
            return
        if self.every_micro_batch:
            step, stepped = runner.iter, True
        else:
            k, stepped = accumulation(runner)
            step = runner.iter // k  # 0-based optimizer step
        if stepped and (step + 1) % self.interval == 0:
            self._update(runner)

    def after_train_epoch(self, runner) -> None:
        if self.update_interval == 'epoch' and self.every_n_epochs(
                runner, self.interval):
            self._update(runner)

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        checkpoint.setdefault('meta', {})[CHECKPOINT_KEY] = dict(
            last_momentum=self.last_momentum,
            update_interval=self.update_interval,
            interval=self.interval,
            schedule=self.schedule,
            every_micro_batch=self.every_micro_batch)

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        state = (checkpoint.get('meta') or {}).get(CHECKPOINT_KEY)
        if state is None:
            return
        self.last_momentum = state['last_momentum']
        saved = (state['update_interval'], state['interval'],
                 state.get('schedule', 'epoch'),
                 state.get('every_micro_batch', False))
        if saved != (self.update_interval, self.interval, self.schedule,
                     self.every_micro_batch):
            runner.logger.warning(
                f'the checkpoint was trained with teacher updates every '
                f'{saved[1]} {saved[0]}(s) (every_micro_batch={saved[3]}) '
                f'and one momentum per {saved[2]}, this run updates every '
                f'{self.interval} {self.update_interval}(s) '
                f'(every_micro_batch={self.every_micro_batch}) with one '
                f'momentum per {self.schedule}.')


@HOOKS.register_module()
class SdAETeacherEMAHook(TeacherEMAHook):
    """:class:`TeacherEMAHook` with SdAE's defaults (supplementary Sec. 1):
    eta 0.96 -> 0.99 on a per-epoch cosine ramp, one update per epoch."""

    def __init__(self,
                 momentum: float = 0.96,
                 end_momentum: float = 0.99,
                 update_interval: str = 'epoch',
                 interval: int = 1,
                 schedule: str = 'epoch',
                 every_micro_batch: bool = False) -> None:
        super().__init__(momentum, end_momentum, update_interval, interval,
                         schedule, every_micro_batch)
