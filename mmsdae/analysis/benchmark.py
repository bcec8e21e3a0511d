"""Side-by-side pre-training speed / memory / FLOPs benchmark
(``tools/benchmark/pretrain_speed.py``).

Every config is built in one process and timed on one synthetic batch
shape, one step of each per round after its warm-up, so ratios to the first
config compare like with like. Per config:

* ``step_time_s``: median time of one training step (loss -> backward ->
  optimizer step, the data preprocessor skipped); the EMA update is in it
  when the config's hook runs it every iteration (RC-MAE), else reported
  alone as ``ema_time_s`` (SdAE: once per epoch);
* ``teacher_time_s`` / ``teacher_time_share``: the step's teacher passes,
  timed through the model's public ``teacher_pass_hook`` with a device
  sync on each side, next to ``teacher_flops_share``;
* ``peak_mem_mb``: peak memory of one step (parameters, gradients,
  optimizer state, activations): CUDA's ``max_memory_allocated`` above the
  resident state, or on CPU the live tensor storage
  (:class:`LiveTensorPeak`); ``mem_kind`` says which;
* ``flops_per_image`` (and ``student`` / ``teacher`` / ``decoder`` /
  ``other`` by module): forward + backward FLOPs from ``FlopCounterMode``
  (matmul / conv / attention, 1 multiply-add = 2 FLOPs) per image;
  ``achieved_flops_per_s`` and, given ``peak_flops``, ``mfu``;
* ``data_images_per_s`` (with ``data_root``): images/s of the config's own
  training pipeline, to compare with the model's ``images_per_s``;
* ``*_ratio``: relative to the first config.

``amp`` autocasts the step (as ``tools/train.py --amp``); ``compile_blocks``
compiles every ViT block after FLOP counting; :func:`write_random_teachers`
writes random frozen-teacher files. A config entry is a path / ``Config``
or ``dict(config=..., label=..., model_options=...)`` for variants
(:func:`teacher_input_variants`).
"""
import contextlib
import copy
import logging
import os
import os.path as osp
import statistics
import time
import weakref
from typing import (Callable, Dict, Iterator, List, Optional, Sequence,
                    Tuple, Union)

import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten

SECTIONS = {
    'backbone': 'student',
    'teacher': 'teacher',
    'teacher_m': 'teacher',  # Hybrid Distill's two frozen teachers
    'teacher_c': 'teacher',
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
    """The optimizer of the config's ``optim_wrapper`` (as a plain
    ``OptimWrapper``); AdamW (lr 1e-4, wd 0.05) for a config without one."""
    if cfg is None or cfg.get('optim_wrapper') is None:
        return torch.optim.AdamW(
            [p for p in model.parameters() if p.requires_grad], lr=1e-4,
            weight_decay=0.05)
    from mmengine.logging import MMLogger
    from mmengine.optim import build_optim_wrapper
    wrapper_cfg = cfg.optim_wrapper.copy()
    wrapper_cfg['type'] = 'OptimWrapper'
    wrapper_cfg.pop('loss_scale', None)
    wrapper_cfg.pop('dtype', None)
    logger = MMLogger.get_current_instance()
    level = logger.level
    logger.setLevel(logging.ERROR)  # 'teacher.* is skipped' noise
    try:
        return build_optim_wrapper(model, wrapper_cfg).optimizer
    finally:
        logger.setLevel(level)


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


def ema_cadence(cfg) -> Optional[str]:
    """``'iter'`` or ``'epoch'``: how often the config's teacher EMA hook
    (any ``*TeacherEMAHook`` in ``custom_hooks``) updates; ``None`` without
    one."""
    from mmengine.registry import HOOKS
    for hook in (cfg.get('custom_hooks') or []) if cfg is not None else []:
        if str(hook.get('type', '')).split('.')[-1].endswith(
                'TeacherEMAHook'):
            return HOOKS.build(copy.deepcopy(hook)).update_interval
    return None


def resolve_amp_dtype(amp_dtype: Optional[str]) -> str:
    """``amp_dtype`` checked, or the default of ``tools/train.py --amp``
    (bf16 where supported)."""
    from mmsdae.engine.optimizers import AMP_DTYPES, default_amp_dtype
    if amp_dtype is None:
        return default_amp_dtype()
    if amp_dtype not in AMP_DTYPES:
        raise ValueError(f'amp dtype {amp_dtype!r}: choose one of '
                         f'{AMP_DTYPES}.')
    return amp_dtype


def train_step_fn(model: nn.Module, optimizer, inputs: torch.Tensor,
                  amp: bool = False, momentum: float = 0.99,
                  ema_every_step: bool = True,
                  amp_dtype: Optional[str] = None) -> Callable:
    """A closure running one full training step on ``inputs``; the EMA
    update is part of it when ``ema_every_step`` (and the model has one).
    With ``amp`` the forward pass runs under autocast in ``amp_dtype``
    (no loss scaler: speed only)."""
    has_ema = ema_every_step and callable(
        getattr(model, 'momentum_update', None))
    device_type = inputs.device.type
    amp_dtype = getattr(torch, resolve_amp_dtype(amp_dtype))

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


class PassTimer:
    """A model's ``teacher_pass_hook``: appends the synced wall time of
    every ``run_teacher`` call to :attr:`times`."""

    def __init__(self, device) -> None:
        self.device = device
        self.times: List[float] = []

    @contextlib.contextmanager
    def __call__(self) -> Iterator[None]:
        _sync(self.device)
        start = time.perf_counter()
        yield
        _sync(self.device)
        self.times.append(time.perf_counter() - start)


def time_teacher(model: nn.Module, device) -> Optional[List[float]]:
    """The list :class:`PassTimer` fills for ``model``; ``None`` for a model
    without teachers."""
    if not hasattr(model, 'teacher_pass_hook'):
        return None
    timer = PassTimer(device)
    model.teacher_pass_hook = timer
    return timer.times


def time_ema(model: nn.Module, device, momentum: float = 0.99,
             repeats: int = 3) -> Optional[float]:
    """Median time of one ``momentum_update``; ``None`` without a teacher."""
    if not callable(getattr(model, 'momentum_update', None)):
        return None
    times = []
    for _ in range(repeats):
        _sync(device)
        start = time.perf_counter()
        model.momentum_update(momentum)
        _sync(device)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


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


class LiveTensorPeak(TorchDispatchMode):
    """Peak bytes of live CPU tensor storage while the mode is active (the
    CPU ``max_memory_allocated``): every storage is counted until a weakref
    finaliser sees it freed; :meth:`track` adds those existing before."""

    def __init__(self) -> None:
        super().__init__()
        self.live: Dict[int, int] = {}
        self.current = 0
        self.peak = 0

    def track(self, tensor: torch.Tensor) -> None:
        storage = tensor.untyped_storage()
        key, size = storage.data_ptr(), storage.nbytes()
        if storage.device.type != 'cpu' or size == 0 or key in self.live:
            return
        self.live[key] = size
        self.current += size
        self.peak = max(self.peak, self.current)
        weakref.finalize(storage, self._free, key)

    def _free(self, key: int) -> None:
        self.current -= self.live.pop(key, 0)

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for value in tree_flatten(out)[0]:
            if isinstance(value, torch.Tensor):
                self.track(value)
        return out


def peak_memory(step: Callable, model: nn.Module, optimizer, inputs,
                device) -> Tuple[float, str]:
    """Peak memory (MB) of one call of ``step`` and how it was measured
    (``peak_mem_mb`` in the module docstring)."""
    existing = [inputs, *model.parameters(), *model.buffers()]
    existing += [p.grad for p in model.parameters() if p.grad is not None]
    for state in getattr(optimizer, 'state', {}).values():
        existing += [v for v in state.values() if torch.is_tensor(v)]
    if torch.device(device).type == 'cuda':
        storages = {t.untyped_storage().data_ptr():
                    t.untyped_storage().nbytes()
                    for t in existing if t.is_cuda}
        _sync(device)
        before = torch.cuda.memory_allocated(device)
        torch.cuda.reset_peak_memory_stats(device)
        step()
        _sync(device)
        transient = torch.cuda.max_memory_allocated(device) - before
        return ((sum(storages.values()) + transient) / 1024.0**2,
                'cuda_own_state_plus_step_peak')
    tracker = LiveTensorPeak()
    for tensor in existing:
        tracker.track(tensor)
    with tracker:
        step()
    return tracker.peak / 1024.0**2, 'cpu_live_tensor_peak'


def frozen_teacher_keys(cfg) -> List[str]:
    """Keys of ``cfg.model`` that hold a ``FrozenTeacher`` config (G2SD's
    ``teacher``, Hybrid Distill's ``teacher_m`` / ``teacher_c``)."""
    return [key for key, value in cfg.model.items()
            if isinstance(value, dict)
            and str(value.get('type', '')).split('.')[-1] == 'FrozenTeacher']


def write_random_teachers(config, out_dir: str,
                          cfg_options: Optional[dict] = None) -> dict:
    """Write (or reuse) a random-weight file for every frozen teacher of
    ``config``, for speed runs; returns the model options pointing at them
    (``{'teacher_m': {'checkpoint': ...}}``)."""
    from mmengine.config import Config
    from mmpretrain.registry import MODELS

    from mmsdae.utils.checkpoint import save_checkpoint
    cfg = config if isinstance(config, Config) else Config.fromfile(
        os.fspath(config))
    if cfg_options:
        cfg = copy.deepcopy(cfg)
        cfg.merge_from_dict(cfg_options)
    name = osp.splitext(osp.basename(os.fspath(config)))[0] \
        if not isinstance(config, Config) else 'config'
    options = {}
    for key in frozen_teacher_keys(cfg):
        path = osp.join(out_dir, f'{name}.{key}.random.pth')
        options[key] = dict(checkpoint=path)
        if osp.isfile(path):  # random weights either way: reuse
            continue
        teacher = cfg.model[key]
        prefixes = dict(teacher.get('prefixes') or {})
        state = {}
        for part in ('backbone', 'neck', 'head', 'model'):
            part_cfg = teacher.get(part)
            if part_cfg is None:
                continue
            part_cfg = copy.deepcopy(dict(part_cfg))
            part_cfg.pop('init_cfg', None)
            prefix = prefixes.get(part, '' if part == 'model' else
                                  f'{part}.')
            module = MODELS.build(part_cfg)
            state.update({prefix + k: v
                          for k, v in module.state_dict().items()})
        os.makedirs(out_dir, exist_ok=True)
        save_checkpoint(dict(state_dict=state), path)
    return options


def compile_vit_blocks(model: nn.Module, **kwargs) -> int:
    """Compile every block of every mmpretrain ViT in ``model`` (student
    and teacher encoders; decoders stay eager); returns the block count."""
    from mmpretrain.models.backbones import VisionTransformer

    from mmsdae.models.algorithms.ema_teacher import compile_encoder_blocks
    import torch._dynamo
    # one graph per token count and grad mode: the teacher-input options
    # and folds need more than dynamo's default of 8 per block
    for name in ('recompile_limit', 'cache_size_limit'):
        if hasattr(torch._dynamo.config, name):
            setattr(torch._dynamo.config, name,
                    max(64, getattr(torch._dynamo.config, name)))
    encoders = [m for m in model.modules()
                if isinstance(m, VisionTransformer)]
    for encoder in encoders:
        compile_encoder_blocks(encoder, **kwargs)
    return sum(len(encoder.layers) for encoder in encoders)


def check_device(device: str) -> str:
    if device not in ('cpu', 'cuda') and not device.startswith('cuda:'):
        raise ValueError(f'--device {device!r}: use cpu or cuda.')
    if device.startswith('cuda') and not torch.cuda.is_available():
        raise RuntimeError(
            f'--device {device} was requested but no CUDA GPU is available '
            f'(torch {torch.__version__}, cuda available: False): use '
            '--device cpu.')
    return device


def data_throughput(cfg, data_root: str, batch_size: int,
                    workers: int = 2, batches: int = 5) -> float:
    """Images/s of ``cfg``'s training pipeline over the images in
    ``data_root`` (mmpretrain's ``CustomDataset``, any folder layout),
    batched by a DataLoader with ``workers`` workers. The first batch (worker
    start-up) is not timed."""
    from mmengine.dataset import default_collate
    from mmpretrain.datasets import CustomDataset
    from torch.utils.data import DataLoader
    if not osp.isdir(data_root):
        raise FileNotFoundError(
            f'--data-root {data_root!r} is not a folder: give a folder of '
            'images (any layout, e.g. an ImageNet class-folder tree).')
    pipeline = copy.deepcopy(cfg.train_dataloader.dataset.pipeline)
    dataset = CustomDataset(data_root=data_root, with_label=False,
                            pipeline=pipeline)
    if len(dataset) < 2 * batch_size:
        raise ValueError(
            f'--data-root {data_root!r} has {len(dataset)} images; the data '
            f'column needs at least 2 batches ({2 * batch_size}).')
    batches = max(1, min(batches, len(dataset) // batch_size - 1))
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=True,
                        num_workers=workers, collate_fn=default_collate,
                        drop_last=True)
    iterator = iter(loader)
    next(iterator)
    start = time.perf_counter()
    for _ in range(batches):
        next(iterator)
    return batches * batch_size / (time.perf_counter() - start)


def teacher_input_variants(config, specs: Sequence[str]) -> List[dict]:
    """Benchmark entries for SdAE's teacher-input options (SdAE Table 1).

    ``specs``: ``'full'``, ``'masked'``, ``'crop'`` (k = the student's
    visible-patch count, one fold's worth as in Fig. 4(b)) or ``'crop=K'``,
    ``'fold=T'`` (multi-fold masking with T folds; ``drop_remainder`` when T
    does not divide the masked patches, as the released code does).
    """
    from mmengine.config import Config
    cfg = config if isinstance(config, Config) else Config.fromfile(
        os.fspath(config))
    backbone = cfg.model.backbone
    size = backbone.get('img_size', 224)
    size = size[0] if isinstance(size, (tuple, list)) else size
    patches = (size // backbone.get('patch_size', 16))**2
    visible = int(patches * (1 - backbone.get('mask_ratio', 0.75)))
    masked = patches - visible
    name = osp.splitext(osp.basename(os.fspath(config)))[0] \
        if not isinstance(config, Config) else 'sdae'
    entries = []
    for spec in specs:
        key, _, value = spec.partition('=')
        if key in ('full', 'masked') and not value:
            option = dict(mode=key)
        elif key == 'crop':
            option = dict(mode='crop', crop_tokens=int(value or visible))
        elif key == 'fold' and value:
            folds = int(value)
            option = dict(mode='multi_fold', num_folds=folds)
            if masked % folds:
                option['drop_remainder'] = True
        else:
            raise ValueError(
                f'teacher input {spec!r}: use full, masked, crop, crop=K or '
                'fold=T.')
        entries.append(dict(
            config=config, label=f'{name}[{spec}]',
            model_options=dict(teacher_input=dict(_delete_=True, **option))))
    return entries


def _teacher_input_of(model: nn.Module) -> Optional[dict]:
    option = getattr(model, 'teacher_input', None)
    if option is None:
        return None
    return dict(mode=option.mode, num_folds=option.num_folds,
                crop_tokens=option.crop_tokens)


def _entries(configs, labels, model_options) -> List[dict]:
    """Normalise the ``configs`` argument of :func:`benchmark`."""
    entries = []
    for i, item in enumerate(configs):
        if isinstance(item, dict) and 'config' in item:
            entry = dict(item)
        else:
            entry = dict(config=item)
        config = entry['config']
        if isinstance(config, (str, os.PathLike)) and not osp.isfile(config):
            raise FileNotFoundError(
                f'Config file {os.fspath(config)!r} does not exist (paths '
                'are relative to the current directory).')
        entry.setdefault('model_options', model_options)
        if labels is not None:
            entry['label'] = labels[i]
        entry.setdefault(
            'label', osp.splitext(osp.basename(os.fspath(config)))[0]
            if isinstance(config, (str, os.PathLike)) else f'config{i}')
        entries.append(entry)
    return entries


def _ratio(value, first):
    if first in (0, None) or value is None:
        return None
    return value / first


def benchmark(configs: Sequence, labels: Optional[Sequence[str]] = None,
              device: str = 'cpu', batch_size: int = 32, iters: int = 10,
              warmup: int = 3, amp: bool = False,
              cfg_options: Optional[dict] = None,
              model_options: Optional[dict] = None,
              momentum: float = 0.99, seed: int = 0,
              data_root: Optional[str] = None, data_workers: int = 2,
              data_batches: int = 5, amp_dtype: Optional[str] = None,
              compile_blocks: Union[bool, dict] = False,
              peak_flops: Optional[float] = None) -> List[dict]:
    """Benchmark every config; one dict per config (see module docstring)."""
    check_device(device)
    amp_dtype = resolve_amp_dtype(amp_dtype) if amp else None
    configs = list(configs)
    if labels is not None and len(labels) != len(configs):
        raise ValueError(f'{len(labels)} labels for {len(configs)} configs.')
    entries = _entries(configs, labels, model_options)
    # Build and warm every config first, then time the steps round-robin
    # (one step of each config per round), so drift of the machine (other
    # load, clocks, allocator warm-up) hits every config alike instead of
    # penalising whichever runs first.
    runs = []
    for entry in entries:
        torch.manual_seed(seed)
        model = build_model_from_config(entry['config'], cfg_options,
                                        entry['model_options'], device)
        cfg = getattr(model, '_bench_cfg', None)
        size = image_size(model)
        inputs = torch.randn(batch_size, 3, size, size, device=device)
        flops = count_flops(model, inputs)
        compiled = compile_vit_blocks(
            model, **({} if compile_blocks is True else compile_blocks)
        ) if compile_blocks else 0
        optimizer = build_optimizer(model, cfg)
        cadence = ema_cadence(cfg)
        step = train_step_fn(model, optimizer, inputs, amp, momentum,
                             ema_every_step=cadence != 'epoch',
                             amp_dtype=amp_dtype)
        for _ in range(warmup):
            step()
        memory, mem_kind = peak_memory(step, model, optimizer, inputs,
                                       device)
        data_rate = data_throughput(
            cfg, data_root, batch_size, data_workers,
            data_batches) if data_root else None
        runs.append(dict(entry=entry, model=model, size=size, flops=flops,
                         compiled=compiled,
                         step=step, memory=memory, mem_kind=mem_kind,
                         cadence=cadence, data_rate=data_rate, times=[],
                         teacher_calls=time_teacher(model, device),
                         teacher_times=[]))
    for _ in range(iters):
        for run in runs:
            calls = run['teacher_calls']
            done = len(calls) if calls is not None else 0
            start = time.perf_counter()
            run['step']()
            _sync(device)
            run['times'].append(time.perf_counter() - start)
            if calls is not None:  # Hybrid Distill runs two teachers a step
                run['teacher_times'].append(sum(calls[done:]))
    results = []
    for run in runs:
        entry, flops, model = run['entry'], run['flops'], run['model']
        config = entry['config']
        batch, step_time = batch_size, statistics.median(run['times'])
        teacher_times = run['teacher_times']
        teacher_share = statistics.median(
            t / s for t, s in zip(teacher_times, run['times'])
        ) if teacher_times else None
        results.append(dict(
            label=entry['label'],
            config=os.fspath(config) if isinstance(
                config, (str, os.PathLike)) else getattr(
                    config, 'filename', None),
            model_options=entry['model_options'],
            model=type(model).__name__,
            teacher_input=_teacher_input_of(model),
            img_size=run['size'],
            batch_size=batch,
            step_time_s=step_time,
            step_times_s=run['times'],
            images_per_s=batch / step_time,
            teacher_time_s=statistics.median(teacher_times)
            if teacher_times else None,
            teacher_time_share=teacher_share,
            teacher_flops_share=flops['teacher'] / flops['total'],
            ema_cadence=run['cadence'],
            ema_time_s=time_ema(model, device, momentum),
            peak_mem_mb=run['memory'],
            mem_kind=run['mem_kind'],
            flops_per_step=flops['total'],
            flops_per_image=flops['total'] / batch,
            student_flops_per_image=flops['student'] / batch,
            teacher_flops_per_image=flops['teacher'] / batch,
            decoder_flops_per_image=flops['decoder'] / batch,
            other_flops_per_image=flops['other'] / batch,
            achieved_flops_per_s=flops['total'] / step_time,
            mfu=flops['total'] / step_time / peak_flops
            if peak_flops else None,
            amp_dtype=amp_dtype,
            compiled_blocks=run['compiled'],
            data_images_per_s=run['data_rate'],
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
                amp: bool, amp_dtype: Optional[str] = None,
                peak_flops: Optional[float] = None,
                compile_blocks: bool = False) -> dict:
    return dict(torch=torch.__version__, device=device,
                device_name=(torch.cuda.get_device_name(device)
                             if device.startswith('cuda') else 'cpu'),
                threads=torch.get_num_threads(), batch_size=batch_size,
                iters=iters, warmup=warmup, amp=amp,
                amp_dtype=resolve_amp_dtype(amp_dtype) if amp else None,
                peak_flops=peak_flops, compile_blocks=bool(compile_blocks),
                ema='momentum_update every step for per-iteration EMA '
                'hooks, left out of the step for per-epoch ones')


def _g(value, scale=1e9, fmt='{:.3f}'):
    return '-' if value is None else fmt.format(value / scale)


def format_table(results: List[dict]) -> str:
    """One plain-text table; ratios are relative to the first row."""
    header = ['config', 'step s', 'img/s', 'data img/s', 'mem MB',
              'GFLOP/img', 'student', 'teacher', 'decoder', 'other',
              'GFLOP/s', 'teacher t%', 'teacher F%', 'time x', 'mem x',
              'flops x']
    with_mfu = any(r.get('mfu') is not None for r in results)
    if with_mfu:
        header.insert(header.index('GFLOP/s') + 1, 'MFU %')
    rows = []
    for r in results:
        rows.append([
            r['label'], f"{r['step_time_s']:.4f}", f"{r['images_per_s']:.1f}",
            _g(r['data_images_per_s'], 1, '{:.1f}'),
            f"{r['peak_mem_mb']:.1f}", _g(r['flops_per_image']),
            _g(r['student_flops_per_image']), _g(r['teacher_flops_per_image']),
            _g(r['decoder_flops_per_image']), _g(r['other_flops_per_image']),
            _g(r['achieved_flops_per_s'], fmt='{:.2f}'),
            _g(r['teacher_time_share'], 0.01, '{:.1f}'),
            _g(r['teacher_flops_share'] if r['teacher_time_share'] is not None
               else None, 0.01, '{:.1f}'),
            _g(r['step_time_ratio'], 1, '{:.2f}'),
            _g(r['peak_mem_ratio'], 1, '{:.2f}'),
            _g(r['flops_ratio'], 1, '{:.2f}')])
        if with_mfu:
            rows[-1].insert(header.index('MFU %'),
                            _g(r.get('mfu'), 0.01, '{:.1f}'))
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
                 'backward of one step per image; teacher t% / F% = the '
                 "teacher's share of the step time / FLOPs; ratios vs the "
                 'first row)')
    return '\n'.join(lines)


#: SdAE Table 1, epoch time relative to MAE on V100 (+49.9 %, +38.1 %,
#: +28.1 %, +11.8 %): the order the teacher-input options must keep
TABLE1_ORDER = ('full', 'masked', 'fold=3', 'crop')


def _option_name(row: dict) -> Optional[str]:
    option = row.get('teacher_input')
    if option is None:
        return None
    if option['mode'] == 'multi_fold':
        return f"fold={option['num_folds']}"
    return option['mode']


def check_targets(results: List[dict], max_time_ratio: float = 1.3,
                  max_mem_ratio: float = 1.1,
                  min_mfu: float = 0.35) -> List[Tuple[str, bool, str]]:
    """The performance targets, evaluated on one run's rows:

    1. every teacher's share of the step time <= its share of the FLOPs;
    2. SdAE with 3 folds: step time <= ``max_time_ratio`` x MAE's and peak
       memory <= ``max_mem_ratio`` x MAE's (MAE = the row whose model is
       mmpretrain's ``MAE``);
    3. the teacher-input options' step times order as SdAE Table 1
       (full > only masked > multi-fold t = 3 > teacher crop > MAE);
    4. with a peak (rows with ``mfu``): MAE's model FLOP utilisation
       >= ``min_mfu``.

    Returns ``(target, met, detail)`` triples for the targets the rows allow
    checking.
    """
    checks = []
    for row in results:
        share = row['teacher_time_share']
        if share is not None:
            flops = row['teacher_flops_share']
            checks.append((f"{row['label']}: teacher time share <= FLOP "
                           'share', share <= flops,
                           f'{100 * share:.1f} % of the time, '
                           f'{100 * flops:.1f} % of the FLOPs'))
    mae = next((r for r in results if r['model'] == 'MAE'), None)
    by_option = {}
    for row in results:
        name = _option_name(row)
        if name is not None and row['model'] == 'SdAE':
            by_option.setdefault(name, row)
    fold3 = by_option.get('fold=3')
    if mae is not None and fold3 is not None:
        time_ratio = fold3['step_time_s'] / mae['step_time_s']
        flop_ratio = fold3['flops_per_image'] / mae['flops_per_image']
        checks.append((f'SdAE t=3 step time <= {max_time_ratio} x MAE',
                       time_ratio <= max_time_ratio,
                       f'{time_ratio:.2f} x (FLOPs {flop_ratio:.2f} x)'))
        mem_ratio = fold3['peak_mem_mb'] / mae['peak_mem_mb']
        checks.append((f'SdAE t=3 peak memory <= {max_mem_ratio} x MAE',
                       mem_ratio <= max_mem_ratio, f'{mem_ratio:.2f} x'))
    present = [name for name in TABLE1_ORDER if name in by_option]
    if mae is not None and len(present) >= 2:
        times = [by_option[name]['step_time_s'] for name in present]
        times.append(mae['step_time_s'])
        ordered = all(a > b for a, b in zip(times, times[1:]))
        detail = ' > '.join(
            f'{name} {t / mae["step_time_s"]:.2f}'
            for name, t in zip(present + ['MAE'], times))
        checks.append(('teacher inputs order as SdAE Table 1', ordered,
                       detail + ' (x MAE)'))
    if mae is not None and mae.get('mfu') is not None:
        checks.append((f'MAE MFU >= {100 * min_mfu:.0f} % of the peak',
                       mae['mfu'] >= min_mfu,
                       f"{100 * mae['mfu']:.1f} % ("
                       f"{mae['achieved_flops_per_s'] / 1e12:.1f} TFLOP/s)"))
    return checks


def format_targets(checks: List[Tuple[str, bool, str]]) -> str:
    return '\n'.join(f"[{'met' if met else 'MISSED'}] {name}: {detail}"
                     for name, met, detail in checks)
