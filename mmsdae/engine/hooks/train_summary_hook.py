"""Print a short summary at the end of training."""
import os.path as osp
import time
from typing import List, Optional

import torch
from mmengine.dist import master_only
from mmengine.hooks import Hook
from mmpretrain.registry import HOOKS


@HOOKS.register_module()
class TrainSummaryHook(Hook):
    """Log loss at start and end, throughput and the last checkpoint.

    The start (end) loss is the mean over the first (last) ``window``
    iterations. Throughput counts images over the wall time of the training
    iterations (data loading included, start-up excluded), summed over all
    processes.

    Args:
        window (int): iterations averaged for the start and end loss.
    """

    priority = 'VERY_LOW'

    def __init__(self, window: int = 5) -> None:
        if window < 1:
            raise ValueError(f'window={window} must be >= 1.')
        self.window = window
        self.losses: List[float] = []
        self.images = 0
        self.start_time: Optional[float] = None
        self.summary: Optional[dict] = None

    def before_train_iter(self, runner, batch_idx, data_batch=None) -> None:
        if self.start_time is None:
            self.start_time = time.perf_counter()

    def after_train_iter(self, runner, batch_idx, data_batch=None,
                         outputs=None) -> None:
        if outputs and 'loss' in outputs:
            loss = outputs['loss']  # the step's loss, still in its graph
            self.losses.append(float(loss.detach() if isinstance(
                loss, torch.Tensor) else loss))
        if data_batch is not None:
            self.images += len(data_batch['inputs']) * runner.world_size

    def after_train(self, runner) -> None:
        if not self.losses or self.start_time is None:
            return
        seconds = time.perf_counter() - self.start_time
        window = min(self.window, len(self.losses))
        last_ckpt = osp.join(runner.work_dir, 'last_checkpoint')
        checkpoint = None
        if osp.isfile(last_ckpt):
            with open(last_ckpt) as f:
                checkpoint = f.read().strip()
        self.summary = dict(
            iterations=len(self.losses),
            loss_start=sum(self.losses[:window]) / window,
            loss_end=sum(self.losses[-window:]) / window,
            images_per_second=self.images / max(seconds, 1e-9),
            train_seconds=seconds,
            checkpoint=checkpoint)
        self._print(runner)

    @master_only
    def _print(self, runner) -> None:
        s = self.summary
        lines = [
            '==== training summary ====',
            f'iterations        : {s["iterations"]}',
            f'loss (first {self.window:>3} it): {s["loss_start"]:.4f}',
            f'loss (last  {self.window:>3} it): {s["loss_end"]:.4f}',
            f'throughput        : {s["images_per_second"]:.1f} images/s '
            f'({s["train_seconds"]:.1f} s of training)',
            f'checkpoint        : {s["checkpoint"] or "none saved"}',
        ]
        runner.logger.info('\n' + '\n'.join(lines))
