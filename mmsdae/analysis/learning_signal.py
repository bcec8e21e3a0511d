"""Does pre-training learn? Every method side by side on a task where
random features are weak (README, "Does pre-training learn?"; used by
``tools/benchmark/learning_signal.py`` and its slow test).

Each method is pre-trained from its CPU demo config (``CONFIGS``) with
MMEngine's Runner for the same budget on unlabelled
:class:`~mmsdae.datasets.ProceduralShapeTaskDataset` images, its schedules
stretched to the budget; distillation teachers are trained first by the
same function (G2SD: a 192-wide MAE; Hybrid Distill: the MAE row as T_m and
a supervised ViT as T_c). Each exported encoder, a random one and raw
pixels are then scored on held-out images (``FEATURES``) with DINO's
weighted k-NN (also logged during training) and a linear probe
(L-BFGS logistic regression, L2 ``PROBE_L2``).
"""
import copy
import json
import os
import os.path as osp
import time
from dataclasses import asdict, dataclass, replace
from typing import Dict, List, Optional, Sequence

import torch
import torch.nn.functional as F

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIGS = {
    'MAE': 'configs/rcmae/mae_vit-tiny-p8_1xb32-10e_procedural-64px.py',
    'SdAE': 'configs/sdae/sdae_vit-tiny-p8_1xb32-10e_procedural-64px.py',
    'RC-MAE': 'configs/rcmae/rcmae_vit-tiny-p8_1xb32-10e_procedural-64px.py',
    'G2SD': 'configs/g2sd/g2sd_vit-tiny-p8_1xb32-10e_procedural-64px.py',
    'Hybrid Distill': ('configs/hybrid_distill/hybrid-distill_vit-tiny-p8_'
                       '1xb32-10e_procedural-64px.py'),
}
METHODS = tuple(CONFIGS)
# Methods the slow regression test guards, at the 'guard' budget over
# GUARD_SEEDS: those whose probe beats the random encoder's by a clear
# margin there (README, "Does pre-training learn?"; G2SD with the MAE
# teacher run() trains first). SdAE does not at any CPU-sized length
# measured, Hybrid Distill not at both seeds.
GUARD_METHODS = ('MAE', 'RC-MAE', 'G2SD')
GUARD_SEEDS = (0, 1)
# distillation methods whose teachers run() trains before their own row
DISTILLATION_METHODS = ('G2SD', 'Hybrid Distill')
G2SD_TEACHER = 'configs/g2sd/mae_vit-d192-p8_1xb32-10e_procedural-64px.py'
SUPERVISED_TEACHER = ('configs/sdae/benchmarks/vit-tiny-p8_1xb16-coslr-2e_'
                      'tiny-in1k-64px.py')
NUM_CLASSES = 5
PROBE_L2 = 1e-3  # L2 weight of the linear probe, fixed for every encoder
PROBE_ITERS = 200
# Pooled features scored: the mean of the patch tokens (primary: the table,
# the margins and the kNN curve) and the class token (reported too). The
# primary one was fixed in the design phase, on one MAE run where it was
# the more informative of the two, for every encoder alike.
FEATURES = ('mean', 'cls')
# Seeds of the three disjoint image collections.
TRAIN_SEED, BANK_SEED, QUERY_SEED = 100, 101, 102


@dataclass(frozen=True)
class Budget:
    """Length of every pre-training run (identical for every method).

    ``images`` unlabelled training images, ``epochs`` passes over them in
    batches of ``batch_size``: ``images * epochs`` images seen.
    ``teacher_epochs`` for G2SD's MAE teacher and Hybrid Distill's
    supervised teacher; ``bank`` / ``queries`` held-out labelled images of
    the evaluation; the kNN curve every ``knn_interval`` epochs.
    """
    images: int
    epochs: int
    batch_size: int = 32
    teacher_epochs: Optional[int] = None
    bank: int = 1000
    queries: int = 1000
    knn_interval: int = 2
    workers: int = 0  # data-loading processes of the pre-training runs

    @property
    def iterations(self) -> int:
        return self.epochs * (self.images // self.batch_size)


BUDGETS = {
    # the short runs of the recipe sweep (tools/benchmark/sweeps/)
    'test': Budget(images=512, epochs=20, teacher_epochs=10, bank=500,
                   queries=500, knn_interval=20),
    # the slow regression test (GUARD_METHODS, GUARD_SEEDS): 4 x the
    # distinct images of 'test', 2 x the images seen
    'guard': Budget(images=2048, epochs=10, teacher_epochs=10, bank=500,
                    queries=500, knn_interval=20),
    # tools/benchmark/learning_signal.py on a CPU
    'default': Budget(images=1024, epochs=12, teacher_epochs=6),
    # --device cuda: 16x the images seen of 'default', sized to run all
    # methods in about 5 minutes on one H200; the model stays the demo size
    'gpu': Budget(images=8192, epochs=24, batch_size=128, teacher_epochs=12,
                  bank=2000, queries=2000, knn_interval=4, workers=12),
}


def task_dataset(num_images: int, seed: int, **kwargs) -> dict:
    """Config of ``num_images`` task images (5 shape classes)."""
    return dict(type='ProceduralShapeTaskDataset', num_images=num_images,
                num_classes=NUM_CLASSES, seed=seed, **kwargs)


def _scale_schedulers(schedulers, old_epochs: int, new_epochs: int,
                      iters_per_epoch: int):
    """The config's epoch-based schedulers stretched to ``new_epochs`` and
    written in iterations (warm-up and cosine keep their share of the run;
    every phase lasts at least one iteration)."""
    factor = new_epochs / old_epochs * iters_per_epoch
    total = new_epochs * iters_per_epoch
    out = []
    for sched in schedulers or []:
        sched = copy.deepcopy(sched)
        if sched.get('by_epoch', True):
            sched.pop('convert_to_iter_based', None)
            sched['by_epoch'] = False
            begin = min(round(sched.get('begin', 0) * factor), total - 1)
            end = sched.get('end')
            end = total if end is None or end >= old_epochs else max(
                begin + 1, round(end * factor))
            sched.update(begin=begin, end=end)
            if 'T_max' in sched:
                sched['T_max'] = end - begin
        out.append(sched)
    return out


def build_config(config: str, budget: Budget, work_dir: str, seed: int = 0,
                 epochs: Optional[int] = None, device: str = 'cpu',
                 cfg_options: Optional[dict] = None,
                 knn: bool = True, drop_hooks: Sequence[str] = ()):
    """The Runner config of one pre-training run on the task.

    ``config`` keeps its model, optimiser, augmentation and hooks; the data
    become ``budget.images`` task images (rendered once and cached), the
    schedule ``epochs`` (default ``budget.epochs``) with the config's
    schedulers stretched to it, and the kNN monitor evaluates on the
    held-out split every ``budget.knn_interval`` epochs (and at the start).
    ``drop_hooks`` removes custom hooks by type (e.g. the EMA hook, for a
    broken variant of the regression test).
    """
    from mmengine.config import Config
    cfg = Config.fromfile(osp.join(REPO, config) if not osp.isabs(config)
                          else config)
    epochs = epochs or budget.epochs
    old_epochs = cfg.train_cfg.get('max_epochs', epochs)
    dataset = cfg.train_dataloader.dataset
    size = dataset.get('image_size', 64)
    cfg.train_dataloader.update(
        batch_size=budget.batch_size, num_workers=budget.workers,
        persistent_workers=budget.workers > 0)
    cfg.train_dataloader.dataset = dict(
        task_dataset(budget.images, TRAIN_SEED + 1000 * seed,
                     image_size=size, cache_images=True),
        pipeline=dataset.pipeline)
    cfg.train_cfg.max_epochs = epochs
    cfg.param_scheduler = _scale_schedulers(
        cfg.get('param_scheduler'), old_epochs, epochs,
        budget.images // budget.batch_size)
    hooks, kinds = [], set()
    for hook in cfg.get('custom_hooks') or []:
        kind = str(hook['type']).split('.')[-1]
        kinds.add(kind)
        if kind in drop_hooks or kind == 'KNNMonitorHook':
            continue
        hooks.append(hook)
    missing = sorted(set(drop_hooks) - kinds)
    if missing:
        raise ValueError(f'drop_hooks {missing}: {config} has no such custom '
                         f'hook (it has {sorted(kinds)}).')
    if knn:
        hooks.append(
            dict(type='KNNMonitorHook', interval=budget.knn_interval,
                 at_start=True, feature=FEATURES[0],
                 train_dataset=task_dataset(budget.bank, BANK_SEED),
                 val_dataset=task_dataset(budget.queries, QUERY_SEED),
                 max_images=None))
    cfg.custom_hooks = hooks
    cfg.default_hooks.checkpoint = dict(
        type='CheckpointHook', interval=epochs, save_last=True,
        max_keep_ckpts=1)
    cfg.default_hooks.logger = dict(type='LoggerHook', interval=50)
    cfg.work_dir = work_dir
    cfg.randomness = dict(seed=seed, deterministic=False)
    cfg.log_level = 'WARNING'
    cfg.auto_scale_lr = dict(enable=False)
    for key in ('val_dataloader', 'val_cfg', 'val_evaluator',
                'test_dataloader', 'test_cfg', 'test_evaluator'):
        cfg.pop(key, None)
    cfg.device = device
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    return cfg


def train(cfg) -> Dict:
    """Run one config; returns the model, the kNN curve and the minutes."""
    from mmengine.runner import Runner
    start = time.perf_counter()
    cfg = copy.deepcopy(cfg)
    cfg.experiment_name = f'learning_signal_{time.time_ns()}'
    runner = Runner.from_cfg(cfg)
    runner.train()
    minutes = (time.perf_counter() - start) / 60
    curve = []
    for hook in runner.hooks:
        if type(hook).__name__ == 'KNNMonitorHook':
            curve = [dict(step=r['step'], top1=r['top1'])
                     for r in hook.results]
    model = runner.model.module if hasattr(runner.model, 'module') \
        else runner.model
    ckpt = osp.join(cfg.work_dir, f'epoch_{cfg.train_cfg.max_epochs}.pth')
    return dict(model=model.eval(), curve=curve, minutes=minutes,
                checkpoint=ckpt)


# ------------------------------------------------------------- evaluation
def load_split(num_images: int, seed: int, size: int):
    """(uint8 images (N, 3, S, S) as the kNN hook packs them, labels)."""
    from mmsdae.engine.hooks.knn_monitor_hook import KNNMonitorHook
    hook = KNNMonitorHook(max_images=None)
    cfg = hook._dataset_cfg(task_dataset(num_images, seed), {}, size)
    images, labels = hook._load(cfg, f'task images (seed {seed})')
    return images, labels


@torch.no_grad()
def embed(model, images: torch.Tensor, device: str = 'cpu',
          feature: str = 'mean', batch_size: int = 128) -> torch.Tensor:
    """Features of ``model.extract_feat`` (the kNN hook's embedding) of
    packed uint8 images: mean of the patch tokens or class token."""
    from mmsdae.engine.hooks.knn_monitor_hook import KNNMonitorHook
    hook = KNNMonitorHook(batch_size=batch_size, feature=feature)
    model = model.to(device).eval()
    return hook.embed(model, images.to(device)).cpu()


def linear_probe(train_feats, train_labels, query_feats, query_labels,
                 num_classes: int = NUM_CLASSES, l2: float = PROBE_L2,
                 iters: int = PROBE_ITERS) -> float:
    """Top-1 (%) of a logistic-regression probe (standardised features,
    L-BFGS, L2 weight ``l2``), fit on the bank, scored on the queries."""
    train_feats, query_feats = train_feats.double(), query_feats.double()
    mean, std = train_feats.mean(0), train_feats.std(0) + 1e-6
    xb, xq = (train_feats - mean) / std, (query_feats - mean) / std
    yb = torch.as_tensor(train_labels).long()
    generator = torch.Generator().manual_seed(0)
    weight = (0.01 * torch.randn(xb.shape[1], num_classes,
                                 generator=generator)).double()
    weight.requires_grad_(True)
    bias = torch.zeros(num_classes, dtype=torch.double, requires_grad=True)
    opt = torch.optim.LBFGS([weight, bias], max_iter=iters,
                            line_search_fn='strong_wolfe')

    def closure():
        opt.zero_grad()
        loss = F.cross_entropy(xb @ weight + bias, yb) \
            + l2 * weight.pow(2).sum()
        loss.backward()
        return loss

    opt.step(closure)
    with torch.no_grad():
        pred = (xq @ weight + bias).argmax(1)
    return 100.0 * (pred == torch.as_tensor(query_labels)).double().mean() \
        .item()


def evaluate_features(bank_feats, bank_labels, query_feats,
                      query_labels) -> Dict[str, float]:
    from mmsdae.engine.hooks.knn_monitor_hook import knn_accuracy
    knn = knn_accuracy(bank_feats, bank_labels, query_feats, query_labels,
                       NUM_CLASSES)['top1']
    probe = linear_probe(bank_feats, bank_labels, query_feats, query_labels)
    return dict(knn_top1=knn, probe_top1=probe)


def random_encoder(config: str = CONFIGS['MAE'], seed: int = 0):
    """The initial weights of ``config`` (seeded as a run's init)."""
    from mmsdae.analysis.benchmark import build_model_from_config
    from mmengine.runner import set_random_seed
    set_random_seed(seed)
    return build_model_from_config(osp.join(REPO, config)).eval()


# ------------------------------------------------------------------ runs
def _teacher_options(method: str, teachers: Dict[str, str]) -> dict:
    if method == 'G2SD':
        return {'model.teacher.checkpoint': teachers['g2sd']}
    if method == 'Hybrid Distill':
        return {'model.teacher_m.checkpoint': teachers['mae'],
                'model.teacher_c.checkpoint': teachers['supervised']}
    return {}


def train_supervised_teacher(budget: Budget, work_dir: str, seed: int,
                             device: str) -> str:
    """Hybrid Distill's ``T_c``: the tiny classifier of the downstream demo
    trained from scratch on the labelled training images; returns its
    checkpoint."""
    cfg = build_config(SUPERVISED_TEACHER, budget, work_dir, seed,
                       epochs=budget.teacher_epochs, device=device, knn=False)
    cfg.model.backbone.init_cfg = None
    cfg.model.head.num_classes = NUM_CLASSES
    cfg.model.train_cfg = None  # no mixup / cutmix: 5 classes, tiny run
    return train(cfg)['checkpoint']


def run(methods: Sequence[str] = METHODS, budget: Budget = BUDGETS['default'],
        work_dir: str = 'work_dirs/learning_signal', seed: int = 0,
        device: str = 'cpu', variants: Optional[Dict[str, dict]] = None,
        log=print, on_row=None) -> Dict:
    """Pre-train every method for ``budget``, evaluate, return the results.

    ``variants`` adds rows: ``{label: dict(config=..., drop_hooks=...,
    cfg_options=...)}`` (the regression test's broken variants).
    ``on_row(results)`` is called after every row with the results so far
    (the tool saves them, so a run stopped early keeps its rows).
    """
    for method in methods:
        if method not in CONFIGS:
            raise ValueError(f'unknown method {method!r}: choose from '
                             f'{METHODS}.')
    for label, spec in (variants or {}).items():
        method = spec.get('method')
        if method in DISTILLATION_METHODS and method not in methods:
            raise ValueError(
                f'variant {label!r} needs the teachers of {method}, which '
                f'are trained for its row: add {method!r} to the methods.')
    size = 64
    bank = load_split(budget.bank, BANK_SEED, size)
    queries = load_split(budget.queries, QUERY_SEED, size)
    rows = []

    def results():
        return dict(budget=dict(asdict(budget), iterations=budget.iterations),
                    seed=seed, device=device, rows=rows)

    def evaluate(label, model, minutes, curve):
        row = dict(method=label, minutes=round(minutes, 2), curve=curve)
        for feature in FEATURES:
            feats = [embed(model, split[0], device, feature)
                     for split in (bank, queries)]
            scores = evaluate_features(feats[0], bank[1], feats[1],
                                       queries[1])
            suffix = '' if feature == FEATURES[0] else f'_{feature}'
            row.update({key + suffix: value for key, value in scores.items()})
        rows.append(row)
        log(f'[learning signal] {label}: kNN {row["knn_top1"]:.1f} %, '
            f'linear probe {row["probe_top1"]:.1f} %, '
            f'{row["minutes"]:.1f} min')
        if on_row is not None:
            on_row(results())
        return row

    # floors: raw pixels and the random encoder
    pixels = [split[0].float().flatten(1) for split in (bank, queries)]
    scores = evaluate_features(pixels[0], bank[1], pixels[1], queries[1])
    rows.append(dict(method='raw pixels', minutes=0.0, curve=[], **scores,
                     **{k + '_cls': v for k, v in scores.items()}))
    log(f'[learning signal] raw pixels: kNN {rows[-1]["knn_top1"]:.1f} %, '
        f'linear probe {rows[-1]["probe_top1"]:.1f} %')
    evaluate('random encoder', random_encoder(seed=seed), 0.0, [])

    teachers = {}
    need_mae = any(m in methods for m in ('MAE', 'Hybrid Distill'))
    order = [m for m in METHODS if m in methods or (m == 'MAE' and need_mae)]
    for method in order:
        if method == 'G2SD':
            log('[learning signal] training G2SD teacher (192-wide MAE)')
            teachers['g2sd'] = train(build_config(
                G2SD_TEACHER, budget, osp.join(work_dir, 'teacher_g2sd'),
                seed, epochs=budget.teacher_epochs, device=device,
                knn=False))['checkpoint']
        if method == 'Hybrid Distill':
            log('[learning signal] training Hybrid Distill T_c (supervised)')
            teachers['supervised'] = train_supervised_teacher(
                budget, osp.join(work_dir, 'teacher_supervised'), seed,
                device)
        name = method.lower().replace(' ', '_')
        cfg = build_config(CONFIGS[method], budget,
                           osp.join(work_dir, name), seed, device=device,
                           cfg_options=_teacher_options(method, teachers))
        log(f'[learning signal] pre-training {method}')
        out = train(cfg)
        if method == 'MAE':
            teachers['mae'] = out['checkpoint']
        if method in methods:
            evaluate(method, out['model'], out['minutes'], out['curve'])
    for label, spec in (variants or {}).items():
        spec = dict(spec)
        config = spec.pop('config')
        spec['cfg_options'] = dict(
            _teacher_options(spec.pop('method', ''), teachers),
            **spec.get('cfg_options', {}))
        out = train(build_config(config, budget,
                                 osp.join(work_dir, 'variant_' + str(
                                     len(rows))), seed, device=device,
                                 **spec))
        evaluate(label, out['model'], out['minutes'], out['curve'])
    return results()


VARIANT_KEYS = ('method', 'config', 'cfg_options', 'drop_hooks', 'epochs')


def load_variants(path: str) -> Dict[str, dict]:
    """A JSON file ``{label: variant}`` as :func:`run`'s ``variants``.

    A variant names a ``method`` (its demo config, :data:`CONFIGS`) or a
    ``config``, and optionally ``cfg_options`` (dotted keys),
    ``drop_hooks`` (hook types to remove) and ``epochs`` (default: the
    budget's). Unknown keys and unknown methods are refused before any run.
    """
    with open(path) as f:
        variants = json.load(f)
    out = {}
    for label, spec in variants.items():
        spec = dict(spec)
        unknown = set(spec) - set(VARIANT_KEYS)
        if unknown:
            raise ValueError(f'{path}: variant {label!r} has unknown keys '
                             f'{sorted(unknown)}; allowed: {VARIANT_KEYS}.')
        if 'config' not in spec:
            if spec.get('method') not in CONFIGS:
                raise ValueError(f'{path}: variant {label!r} needs a config '
                                 f'or a method of {METHODS}.')
            spec['config'] = CONFIGS[spec['method']]
        out[label] = spec
    return out


def margins(results: Dict, reference: str = 'random encoder') -> Dict:
    """Each row's kNN and probe top-1 minus the reference row's (points)."""
    rows = {r['method']: r for r in results['rows']}
    ref = rows[reference]
    return {name: dict(knn=r['knn_top1'] - ref['knn_top1'],
                       probe=r['probe_top1'] - ref['probe_top1'])
            for name, r in rows.items() if name != reference}


def format_table(results: Dict) -> str:
    lines = ['| method | kNN top-1 (%) | linear probe top-1 (%) | '
             'kNN, class token | probe, class token | minutes |',
             '|---|---:|---:|---:|---:|---:|']
    for r in results['rows']:
        lines.append(f'| {r["method"]} | {r["knn_top1"]:.1f} | '
                     f'{r["probe_top1"]:.1f} | {r["knn_top1_cls"]:.1f} | '
                     f'{r["probe_top1_cls"]:.1f} | {r["minutes"]:.1f} |')
    return '\n'.join(lines)


def plot(results: Dict, path: str) -> None:
    """kNN top-1 versus iterations of every pre-trained row, with the
    random encoder and raw pixels as horizontal lines."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for r in results['rows']:
        if r['curve']:
            ax.plot([p['step'] for p in r['curve']],
                    [p['top1'] for p in r['curve']], marker='o', ms=3,
                    label=r['method'])
        elif r['method'] in ('random encoder', 'raw pixels'):
            ax.axhline(r['knn_top1'], ls='--' if r['method'] ==
                       'random encoder' else ':', color='gray', lw=1,
                       label=r['method'])
    ax.axhline(100.0 / NUM_CLASSES, color='black', lw=0.5, label='chance')
    budget = results['budget']
    ax.set_xlabel(f'iteration (batch {budget["batch_size"]})')
    ax.set_ylabel('kNN top-1 on held-out images (%)')
    ax.set_title('Shape task (5 classes): DINO weighted kNN, k=20')
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)


def save(results: Dict, out_dir: str) -> None:
    os.makedirs(out_dir, exist_ok=True)
    with open(osp.join(out_dir, 'learning_signal.json'), 'w') as f:
        json.dump(dict(results, margins=margins(results)), f, indent=1)
    plot(results, osp.join(out_dir, 'learning_signal.png'))


__all__ = ['BUDGETS', 'Budget', 'CONFIGS', 'METHODS', 'build_config',
           'evaluate_features', 'format_table', 'linear_probe',
           'load_variants', 'margins', 'plot', 'replace', 'run', 'save',
           'train']
