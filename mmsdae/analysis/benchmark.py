"""Side-by-side pre-training speed / memory / FLOPs benchmark.

Used by ``tools/benchmark/pretrain_speed.py``. Every config is built in the
same process and timed on the same synthetic batch shape, one step of each
config per round (round-robin after each config's warm-up), so the numbers
(and their ratios to the first config) are directly comparable.

Status: the first part of the performance issue (the measuring tool). The
teacher's bf16 autocast, the ``torch.compile`` option and the README table
of measurements are not done yet.

What is measured, per config:

* ``step_time_s``: median wall time of one full training step
  (``model(inputs, None, mode='loss')`` -> sum of the ``*loss*`` entries,
  as mmengine's ``parse_losses`` -> backward -> optimizer step -> for models
  with ``momentum_update`` (SdAE, RC-MAE) ``momentum_update(0.99)``). The
  data preprocessor is skipped: a float tensor is fed directly. The EMA is
  applied every iteration (RC-MAE's cadence); SdAE's default
  ``SdAETeacherEMAHook(update_interval='epoch')`` updates once per epoch, so
  its real per-step cost is slightly lower than reported here.
* ``peak_mem_mb``: on CUDA, ``torch.cuda.max_memory_allocated`` during one
  step of the config alone (after its warm-up); on CPU, the growth of the
  process' peak RSS (``resource.getrusage(RUSAGE_SELF).ru_maxrss``) over
  that step. The
  CPU number is a high-water mark of the whole process: a config run after a
  bigger one may show 0 growth because the allocator reuses memory, so it is
  only indicative (run configs one at a time for absolute numbers).
* ``flops_per_image`` (+ ``student``/``teacher``/``decoder``/``other``):
  FLOPs of one training step (forward + backward) from
  :class:`torch.utils.flop_counter.FlopCounterMode`, divided by the batch
  size, attributed by the module hierarchy: ``backbone`` -> student,
  ``teacher`` + ``teacher_neck`` -> teacher, ``neck`` -> decoder, the rest
  (heads, losses, ops outside submodules) -> other. FlopCounterMode counts
  matmul / conv / attention ops only (1 multiply-add = 2 FLOPs).
* ``achieved_flops_per_s``: FLOPs per step / step time.
* ``*_ratio``: step time, memory and FLOPs relative to the first config.
"""
import logging
import os
import os.path as osp
import resource
import statistics
import sys
import time
from typing import Callable, Dict, List, Optional, Sequence

import torch
from torch import nn

SECTIONS = {
    'backbone': 'student',
    'teacher': 'teacher',
    'teacher_neck': 'teacher',
    'neck': 'decoder',
}


def _quiet_init_weights(model: nn.Module) -> None:
    """``init_weights()`` without mmengine's per-parameter INFO log."""
    from mmengine.logging import MMLogger
    logger = MMLogger.get_current_instance()
    level = logger.level
    logger.setLevel(logging.WARNING)
    try:
        model.init_weights()
    finally:
        logger.setLevel(level)


def build_model_from_config(config, cfg_options: Optional[dict] = None,
                            model_options: Optional[dict] = None,
                            device: str = 'cpu') -> nn.Module:
    """Build, ``init_weights()`` and move the model of ``config`` (a path or
    a :class:`mmengine.Config`) to ``device``, in train mode.

    ``cfg_options`` is merged into the whole config, ``model_options`` into
    ``cfg.model`` (e.g. ``dict(teacher_input=dict(mode='crop', ...))``).
    """
    from mmengine.config import Config

    from .checkpoints import build_model, load_config
    if not isinstance(config, Config):
        path = os.fspath(config)
        if not osp.isfile(path):
            raise FileNotFoundError(
                f'Config file {path!r} does not exist (paths are relative to '
                'the current directory), e.g. configs/sdae/'
                'sdae_vit-tiny-p8_1xb32-10e_procedural-64px.py.')
        config = Config.fromfile(path)
    if cfg_options:
        config.merge_from_dict(cfg_options)
    if model_options:
        config.merge_from_dict({'model': model_options})
    cfg = load_config(config)
    model = build_model(cfg)
    _quiet_init_weights(model)
    model._bench_cfg = cfg  # for build_optimizer
    return model.to(device).train()


def image_size(model: nn.Module) -> int:
    size = model.backbone.img_size
    if isinstance(size, (tuple, list)):
        size = size[0]
    return int(size)


def build_optimizer(model: nn.Module, cfg=None):
    """The config's ``optim_wrapper`` when it builds, else AdamW over the
    trainable parameters. Returns an object with ``.step()`` and
    ``.zero_grad()``."""
    if cfg is not None and cfg.get('optim_wrapper') is not None:
        try:
            from mmengine.optim import build_optim_wrapper
            wrapper_cfg = cfg.optim_wrapper.copy()
            wrapper_cfg['type'] = 'OptimWrapper'  # no AMP wrapper on CPU
            wrapper_cfg.pop('loss_scale', None)
            wrapper_cfg.pop('dtype', None)
            from mmengine.logging import MMLogger
            logger = MMLogger.get_current_instance()
            level = logger.level
            logger.setLevel(logging.ERROR)  # 'teacher.* is skipped' noise
            try:
                return build_optim_wrapper(model, wrapper_cfg).optimizer
            finally:
                logger.setLevel(level)
        except Exception:  # fall back to plain AdamW
            pass
    return torch.optim.AdamW(
        [p for p in model.parameters() if p.requires_grad], lr=1e-4,
        weight_decay=0.05)


def _total_loss(losses: Dict[str, torch.Tensor]) -> torch.Tensor:
    """Sum of the entries whose key contains 'loss' (mmengine's
    ``parse_losses``)."""
    total = 0
    for key, value in losses.items():
        if 'loss' not in key:
            continue
        if isinstance(value, (list, tuple)):
            value = sum(v.mean() for v in value)
        total = total + value.mean()
    return total


def train_step_fn(model: nn.Module, optimizer, inputs: torch.Tensor,
                  amp: bool = False, momentum: float = 0.99) -> Callable:
    """A closure running one full training step on ``inputs``."""
    has_ema = callable(getattr(model, 'momentum_update', None))
    device_type = inputs.device.type
    amp_dtype = torch.float16 if device_type == 'cuda' else torch.bfloat16

    def step():
        optimizer.zero_grad(set_to_none=True)
        with torch.autocast(device_type, dtype=amp_dtype, enabled=amp):
            losses = model(inputs, None, mode='loss')
        loss = _total_loss(losses)
        loss.backward()
        optimizer.step()
        if has_ema:
            model.momentum_update(momentum)
        return loss

    return step


def _forward_backward(model, inputs):
    losses = model(inputs, None, mode='loss')
    _total_loss(losses).backward()
    model.zero_grad(set_to_none=True)


def _cpu_sdpa_mapping() -> dict:
    """FlopCounterMode has no formula for the CPU flash-attention kernels
    that ``F.scaled_dot_product_attention`` dispatches to on CPU (it would
    count attention as 0 FLOPs): reuse the generic SDPA formulas."""
    from torch.utils import flop_counter as fc
    aten = torch.ops.aten
    mapping = {}

    def forward(query, key, value, *args, out_shape=None, **kwargs):
        return fc.sdpa_flop_count(query, key, value)

    def backward(grad_out, query, key, value, *args, out_shape=None,
                 **kwargs):
        return fc.sdpa_backward_flop_count(grad_out, query, key, value)

    for name, fn in (('_scaled_dot_product_flash_attention_for_cpu', forward),
                     ('_scaled_dot_product_flash_attention_for_cpu_backward',
                      backward)):
        op = getattr(aten, name, None)
        if op is not None and op not in fc.flop_registry:
            mapping[op] = fn
    return mapping


def count_flops(model: nn.Module, inputs: torch.Tensor) -> Dict[str, int]:
    """FLOPs of one forward + backward of ``model`` on ``inputs`` (the whole
    batch), split into ``student`` / ``teacher`` / ``decoder`` / ``other``.

    The model is entered through ``model(...)`` so FlopCounterMode's module
    tracker names submodules ``<Class>.<attr>...``. Modules the models call
    without entering their parent (e.g. the teacher's blocks inside
    ``teacher.encode_patches``) show up only under their own names, so each
    section sums the top-most tracked names under its prefix.
    """
    from torch.utils.flop_counter import FlopCounterMode
    counter = FlopCounterMode(display=False,
                               custom_mapping=_cpu_sdpa_mapping())
    with counter:
        _forward_backward(model, inputs)
    counts = {k: sum(v.values()) for k, v in counter.get_flop_counts().items()}
    total = int(counter.get_total_flops())
    root = type(model).__name__
    result = dict(total=total, student=0, teacher=0, decoder=0)
    for attr, section in SECTIONS.items():
        prefix = f'{root}.{attr}'
        names = [k for k in counts if k == prefix or k.startswith(prefix + '.')]
        top = [k for k in names
               if not any(k.startswith(o + '.') for o in names if o != k)]
        result[section] += int(sum(counts[k] for k in top))
    result['other'] = total - result['student'] - result['teacher'] - \
        result['decoder']
    return result


def _sync(device):
    if torch.device(device).type == 'cuda':
        torch.cuda.synchronize()


def _rss_mb() -> float:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    # kilobytes on Linux, bytes on macOS
    return peak / (1024.0**2 if sys.platform == 'darwin' else 1024.0)


def time_steps(step: Callable, iters: int = 10, warmup: int = 3,
               device='cpu') -> Dict[str, object]:
    """Run ``warmup`` untimed then ``iters`` timed steps; return the step
    times, their median and the peak memory (see the module docstring)."""
    if iters < 1 or warmup < 0:
        raise ValueError(f'need iters >= 1 and warmup >= 0, got iters='
                         f'{iters}, warmup={warmup}.')
    for _ in range(warmup):
        step()
    _sync(device)
    cuda = torch.device(device).type == 'cuda'
    if cuda:
        torch.cuda.reset_peak_memory_stats(device)
    rss_before = _rss_mb()
    times = []
    for _ in range(iters):
        start = time.perf_counter()
        step()
        _sync(device)
        times.append(time.perf_counter() - start)
    if cuda:
        peak_mb = torch.cuda.max_memory_allocated(device) / 1024.0**2
        kind = 'cuda_max_allocated'
    else:
        peak_mb = _rss_mb() - rss_before
        kind = 'cpu_peak_rss_growth'
    return dict(step_times_s=times, step_time_s=statistics.median(times),
                peak_mem_mb=peak_mb, mem_kind=kind)


def check_device(device: str) -> str:
    if device not in ('cpu', 'cuda') and not device.startswith('cuda:'):
        raise ValueError(f'--device {device!r}: use cpu or cuda.')
    if device.startswith('cuda') and not torch.cuda.is_available():
        raise RuntimeError(
            f'--device {device} was requested but no CUDA GPU is available '
            f'(torch {torch.__version__}, cuda available: False): use '
            '--device cpu.')
    return device


def _ratio(value, first):
    if first in (0, None) or value is None:
        return None
    return value / first


def benchmark(configs: Sequence, labels: Optional[Sequence[str]] = None,
              device: str = 'cpu', batch_size: int = 32, iters: int = 10,
              warmup: int = 3, amp: bool = False,
              cfg_options: Optional[dict] = None,
              model_options: Optional[dict] = None,
              momentum: float = 0.99, seed: int = 0) -> List[dict]:
    """Benchmark every config; one dict per config (see module docstring)."""
    check_device(device)
    configs = list(configs)
    for config in configs:
        if isinstance(config, (str, os.PathLike)) and not osp.isfile(config):
            raise FileNotFoundError(
                f'Config file {os.fspath(config)!r} does not exist (paths '
                'are relative to the current directory).')
    if labels is None:
        labels = [osp.splitext(osp.basename(os.fspath(c)))[0]
                  if isinstance(c, (str, os.PathLike)) else f'config{i}'
                  for i, c in enumerate(configs)]
    labels = list(labels)
    if len(labels) != len(configs):
        raise ValueError(f'{len(labels)} labels for {len(configs)} configs.')
    # Build and warm every config first, then time the steps round-robin
    # (one step of each config per round), so drift of the machine (other
    # load, clocks, allocator warm-up) hits every config alike instead of
    # penalising whichever runs first.
    runs = []
    for label, config in zip(labels, configs):
        torch.manual_seed(seed)
        model = build_model_from_config(config, cfg_options, model_options,
                                        device)
        size = image_size(model)
        inputs = torch.randn(batch_size, 3, size, size, device=device)
        flops = count_flops(model, inputs)
        optimizer = build_optimizer(model, getattr(model, '_bench_cfg', None))
        step = train_step_fn(model, optimizer, inputs, amp, momentum)
        # warm-up, and the peak memory of one step on its own
        memory = time_steps(step, 1, warmup, device)
        runs.append(dict(label=label, config=config, model=model, size=size,
                         flops=flops, step=step, memory=memory, times=[]))
    for _ in range(iters):
        for run in runs:
            start = time.perf_counter()
            run['step']()
            _sync(device)
            run['times'].append(time.perf_counter() - start)
    results = []
    for run in runs:
        config, flops, model = run['config'], run['flops'], run['model']
        batch, step_time = batch_size, statistics.median(run['times'])
        results.append(dict(
            label=run['label'],
            config=os.fspath(config) if isinstance(
                config, (str, os.PathLike)) else getattr(
                    config, 'filename', None),
            model=type(model).__name__,
            img_size=run['size'],
            batch_size=batch,
            step_time_s=step_time,
            step_times_s=run['times'],
            images_per_s=batch / step_time,
            peak_mem_mb=run['memory']['peak_mem_mb'],
            mem_kind=run['memory']['mem_kind'],
            flops_per_step=flops['total'],
            flops_per_image=flops['total'] / batch,
            student_flops_per_image=flops['student'] / batch,
            teacher_flops_per_image=flops['teacher'] / batch,
            decoder_flops_per_image=flops['decoder'] / batch,
            other_flops_per_image=flops['other'] / batch,
            achieved_flops_per_s=flops['total'] / step_time,
            momentum_update=callable(getattr(model, 'momentum_update',
                                             None)),
        ))
    del runs
    first = results[0]
    for row in results:
        row['step_time_ratio'] = _ratio(row['step_time_s'],
                                        first['step_time_s'])
        row['peak_mem_ratio'] = _ratio(row['peak_mem_mb'],
                                       first['peak_mem_mb'])
        row['flops_ratio'] = _ratio(row['flops_per_image'],
                                    first['flops_per_image'])
    return results


def environment(device: str, batch_size: int, iters: int, warmup: int,
                amp: bool) -> dict:
    return dict(torch=torch.__version__, device=device,
                device_name=(torch.cuda.get_device_name(device)
                             if device.startswith('cuda') else 'cpu'),
                threads=torch.get_num_threads(), batch_size=batch_size,
                iters=iters, warmup=warmup, amp=amp,
                ema_cadence='momentum_update(0.99) every step')


def _g(value, scale=1e9, fmt='{:.3f}'):
    return '-' if value is None else fmt.format(value / scale)


def format_table(results: List[dict]) -> str:
    """One plain-text table; ratios are relative to the first row."""
    header = ['config', 'step s', 'img/s', 'mem MB', 'GFLOP/img',
              'student', 'teacher', 'decoder', 'other', 'GFLOP/s',
              'time x', 'mem x', 'flops x']
    rows = []
    for r in results:
        rows.append([
            r['label'], f"{r['step_time_s']:.4f}", f"{r['images_per_s']:.1f}",
            f"{r['peak_mem_mb']:.1f}", _g(r['flops_per_image']),
            _g(r['student_flops_per_image']), _g(r['teacher_flops_per_image']),
            _g(r['decoder_flops_per_image']), _g(r['other_flops_per_image']),
            _g(r['achieved_flops_per_s'], fmt='{:.2f}'),
            _g(r['step_time_ratio'], 1, '{:.2f}'),
            _g(r['peak_mem_ratio'], 1, '{:.2f}'),
            _g(r['flops_ratio'], 1, '{:.2f}')])
    widths = [max(len(h), *(len(row[i]) for row in rows))
              for i, h in enumerate(header)]
    lines = ['  '.join(h.ljust(w) if i == 0 else h.rjust(w)
                       for i, (h, w) in enumerate(zip(header, widths)))]
    lines.append('  '.join('-' * w for w in widths))
    for row in rows:
        lines.append('  '.join(c.ljust(w) if i == 0 else c.rjust(w)
                               for i, (c, w) in enumerate(zip(row, widths))))
    mem = results[0]['mem_kind'] if results else ''
    lines.append(f'(step time = median; mem = {mem}; FLOPs = forward + '
                 'backward of one step per image; ratios vs the first row)')
    return '\n'.join(lines)
