"""Weighted k-NN accuracy of the current encoder, during pre-training.

DINO's k-NN protocol (Caron et al., ICCV 2021, Sec. 4.1, ``eval_knn.py``):
L2-normalised features, cosine similarity to a labelled memory bank, the
k = 20 nearest entries vote for their class with weight ``exp(sim / T)``,
T = 0.07.
"""
import math
import time
from typing import Dict, List, Optional, Tuple

import numpy as np
import torch
import torch.nn.functional as F
from mmengine.dist import is_main_process
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from mmpretrain.registry import DATASETS, HOOKS

FEATURES = ('cls', 'mean')
ENCODERS = {'student': 'backbone', 'teacher': 'teacher'}

# Bank and queries are two disjoint procedural collections (different seeds).
DEFAULT_TRAIN_DATASET = dict(
    type='ProceduralShapesDataset', num_images=512, num_classes=10, seed=1)
DEFAULT_VAL_DATASET = dict(
    type='ProceduralShapesDataset', num_images=256, num_classes=10, seed=2)


def _check_k_temperature(k: int, temperature: float) -> None:
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise ValueError(f'k={k!r} must be an int >= 1 (DINO: k=20).')
    if not (isinstance(temperature, (int, float))
            and math.isfinite(temperature) and temperature > 0):
        raise ValueError(f'temperature={temperature!r} must be a finite '
                         'number > 0 (DINO: T=0.07).')


@torch.no_grad()
def weighted_knn(train_feats: torch.Tensor,
                 train_labels: torch.Tensor,
                 query_feats: torch.Tensor,
                 num_classes: int,
                 k: int = 20,
                 temperature: float = 0.07,
                 chunk_size: int = 1024) -> torch.Tensor:
    """(Q, num_classes) class indices of every query (Q, C) sorted by
    decreasing DINO vote over the bank (N, C) with labels (N,).

    Votes are scaled by ``exp(-max_sim / T)`` per query (stability, same
    ranking); ``k`` above the bank size uses the whole bank; ties go to the
    lower class; ``chunk_size`` queries are compared at a time.
    """
    _check_k_temperature(k, temperature)
    if train_feats.dim() != 2 or query_feats.dim() != 2:
        raise ValueError('train_feats and query_feats must be 2-D (num, dim),'
                         f' got {tuple(train_feats.shape)} and '
                         f'{tuple(query_feats.shape)}.')
    if train_feats.shape[1] != query_feats.shape[1]:
        raise ValueError(f'feature dims differ: bank {train_feats.shape[1]}, '
                         f'queries {query_feats.shape[1]}.')
    if len(train_feats) == 0:
        raise ValueError('the memory bank (train_feats) is empty.')
    train_labels = torch.as_tensor(train_labels).long().flatten()
    if len(train_labels) != len(train_feats):
        raise ValueError(f'{len(train_labels)} train_labels for '
                         f'{len(train_feats)} train_feats.')
    if num_classes < 1 or int(train_labels.min()) < 0 \
            or int(train_labels.max()) >= num_classes:
        raise ValueError(
            f'train_labels must lie in [0, num_classes={num_classes}), got '
            f'[{int(train_labels.min())}, {int(train_labels.max())}].')

    bank = F.normalize(train_feats.float(), dim=1)
    queries = F.normalize(query_feats.float(), dim=1)
    train_labels = train_labels.to(bank.device)
    k = min(k, len(bank))
    rankings = []
    for start in range(0, len(queries), chunk_size):
        sim = queries[start:start + chunk_size] @ bank.T  # (q, N) cosine
        top_sim, top_idx = sim.topk(k, dim=1, largest=True, sorted=True)
        weights = ((top_sim - top_sim[:, :1]) / temperature).exp()
        votes = torch.zeros(len(sim), num_classes, device=bank.device)
        votes.scatter_add_(1, train_labels[top_idx], weights)
        rankings.append(
            votes.sort(dim=1, descending=True, stable=True).indices)
    if not rankings:
        return torch.zeros(0, num_classes, dtype=torch.long)
    return torch.cat(rankings)


def knn_accuracy(train_feats: torch.Tensor,
                 train_labels: torch.Tensor,
                 query_feats: torch.Tensor,
                 query_labels: torch.Tensor,
                 num_classes: Optional[int] = None,
                 k: int = 20,
                 temperature: float = 0.07) -> Dict[str, float]:
    """``dict(top1=..., top5=...)`` in % of :func:`weighted_knn`;
    ``num_classes`` defaults to ``1 + max label``."""
    train_labels = torch.as_tensor(train_labels).long().flatten()
    query_labels = torch.as_tensor(query_labels).long().flatten()
    if len(query_labels) == 0 or len(query_labels) != len(query_feats):
        raise ValueError(f'{len(query_labels)} query_labels for '
                         f'{len(query_feats)} query_feats (need >= 1).')
    if num_classes is None:
        num_classes = 1 + int(max(train_labels.max(), query_labels.max()))
    ranking = weighted_knn(train_feats, train_labels, query_feats,
                           num_classes, k, temperature)
    hits = ranking == query_labels.to(ranking.device)[:, None]
    return dict(
        top1=100.0 * hits[:, :1].any(1).float().mean().item(),
        top5=100.0 * hits[:, :5].any(1).float().mean().item())


def pool_features(feats, feature: str = 'cls',
                  num_extra_tokens: int = 1) -> torch.Tensor:
    """One (B, C) vector per image from ``extract_feat``'s output (its last
    entry): (B, C) as is, (B, C, H, W) averaged, (B, L, C) tokens give the
    class token (``'cls'``, DINO) or the mean patch token (``'mean'``)."""
    if isinstance(feats, (tuple, list)):
        feats = feats[-1]
    if not isinstance(feats, torch.Tensor):
        raise TypeError(f'expected the encoder to return a tensor or a tuple '
                        f'of tensors, got {type(feats).__name__}.')
    if feats.dim() == 2:
        return feats
    if feats.dim() == 4:
        return feats.mean(dim=(2, 3))
    if feats.dim() != 3:
        raise ValueError(f'cannot pool features of shape '
                         f'{tuple(feats.shape)}.')
    if feature == 'cls':
        if num_extra_tokens < 1:
            raise ValueError("feature='cls' needs a class token; the "
                             "encoder has none: use feature='mean'.")
        return feats[:, 0]
    return feats[:, num_extra_tokens:].mean(dim=1)


@HOOKS.register_module()
class KNNMonitorHook(Hook):
    """Log DINO's weighted k-NN accuracy of the encoder during training.

    Every ``interval`` epochs (or iterations), and at the end, the hook
    embeds a labelled bank (``train_dataset``) and queries (``val_dataset``)
    in eval mode (every module's flag restored after), classifies the
    queries by :func:`weighted_knn` and sends ``{prefix}/top1`` and
    ``/top5`` to the log, message hub and visualizer at ``step`` = the
    iterations done. The images are loaded once and kept in memory (uint8);
    only rank 0 evaluates.

    Args:
        interval (int): evaluate every ``interval`` epochs (iterations when
            ``by_epoch=False``).
        train_dataset (dict, optional): the memory bank; default 512
            procedural images (seed 1).
        val_dataset (dict, optional): the queries; default 256 (seed 2).
        k (int): neighbours (DINO: 20).
        temperature (float): vote temperature T (DINO: 0.07).
        feature (str): ``'cls'`` (class token, DINO) or ``'mean'`` (mean of
            the patch tokens).
        encoder (str, optional): ``None`` uses ``model.extract_feat``;
            ``'student'`` / ``'teacher'`` call ``backbone`` / ``teacher``
            as ``encoder(x, mask=None)``.
        max_images (int, optional): images taken from each dataset, spread
            evenly over it; ``None`` takes all.
        batch_size (int): images per forward pass.
        by_epoch (bool): ``interval`` counts epochs (True) or iterations.
        at_start (bool): also evaluate the initial weights.
        at_end (bool): also evaluate after the last iteration.
        prefix (str): name of the logged scalars, ``{prefix}/top1``.

    """

    priority = 'LOW'  # after TeacherEMAHook (NORMAL) at the end of an epoch

    def __init__(self,
                 interval: int = 1,
                 train_dataset: Optional[dict] = None,
                 val_dataset: Optional[dict] = None,
                 k: int = 20,
                 temperature: float = 0.07,
                 feature: str = 'cls',
                 encoder: Optional[str] = None,
                 max_images: Optional[int] = 1000,
                 batch_size: int = 64,
                 by_epoch: bool = True,
                 at_start: bool = False,
                 at_end: bool = True,
                 prefix: str = 'knn') -> None:
        if isinstance(interval, bool) or not isinstance(interval, int) \
                or interval < 1:
            raise ValueError(f'interval={interval!r} must be an int >= 1.')
        _check_k_temperature(k, temperature)
        if feature not in FEATURES:
            raise ValueError(f'feature={feature!r}: choose one of '
                             f'{FEATURES}.')
        if encoder is not None and encoder not in ENCODERS:
            raise ValueError(f'encoder={encoder!r}: choose None (the '
                             f"model's extract_feat) or one of "
                             f'{tuple(ENCODERS)}.')
        if max_images is not None and (not isinstance(max_images, int)
                                       or max_images < 1):
            raise ValueError(f'max_images={max_images!r} must be None or an '
                             'int >= 1.')
        if not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f'batch_size={batch_size!r} must be an int '
                             '>= 1.')
        for name, cfg in (('train_dataset', train_dataset),
                          ('val_dataset', val_dataset)):
            if cfg is not None and not isinstance(cfg, dict):
                raise TypeError(f'{name} must be a dataset config dict, got '
                                f'{type(cfg).__name__}.')
        self.interval = interval
        self.train_dataset = train_dataset
        self.val_dataset = val_dataset
        self.k = k
        self.temperature = float(temperature)
        self.feature = feature
        self.encoder = encoder
        self.max_images = max_images
        self.batch_size = batch_size
        self.by_epoch = by_epoch
        self.at_start = at_start
        self.at_end = at_end
        self.prefix = prefix
        # (images, labels) of the bank and the queries, filled on first use
        self._cache: Optional[Dict[str, Tuple[torch.Tensor,
                                              torch.Tensor]]] = None
        self.num_classes: Optional[int] = None
        self._last_step: Optional[int] = None
        self.results: List[dict] = []

    # ----------------------------------------------------------- triggers
    def before_train(self, runner) -> None:
        if self.at_start:
            self.evaluate(runner)

    def after_train_epoch(self, runner) -> None:
        if self.by_epoch and self.every_n_epochs(runner, self.interval):
            self.evaluate(runner)

    def after_train_iter(self, runner, batch_idx, data_batch=None,
                         outputs=None) -> None:
        if not self.by_epoch and self.every_n_train_iters(
                runner, self.interval):
            # runner.iter counts this iteration only after the hook
            self.evaluate(runner, step=runner.iter + 1)

    def after_train(self, runner) -> None:
        if self.at_end and self._last_step != runner.iter:
            self.evaluate(runner)

    # --------------------------------------------------------------- data
    @staticmethod
    def _model(runner):
        return runner.model.module if is_model_wrapper(
            runner.model) else runner.model

    @staticmethod
    def _input_size(model) -> int:
        size = getattr(getattr(model, 'backbone', None), 'img_size', 224)
        if isinstance(size, (tuple, list)):
            size = size[0]
        return int(size)

    def _dataset_cfg(self, cfg: Optional[dict], default: dict,
                     size: int) -> dict:
        """Defaults: procedural images and a resize / centre-crop pipeline
        at the model's input size."""
        cfg = dict(default if cfg is None else cfg)
        if cfg.get('type') in ('ProceduralShapesDataset',
                               'mmpretrain.ProceduralShapesDataset'):
            cfg.setdefault('image_size', size)
        cfg.setdefault('pipeline', [
            dict(type='LoadImageFromFile'),
            dict(type='ResizeEdge', scale=size, edge='short'),
            dict(type='CenterCrop', crop_size=size),
            dict(type='PackInputs'),
        ])
        # a failing sample raises instead of being replaced by a random one
        cfg.setdefault('test_mode', True)
        return cfg

    def _load(self, cfg: dict, name: str) -> Tuple[torch.Tensor,
                                                   torch.Tensor]:
        dataset = DATASETS.build(cfg)
        if len(dataset) == 0:
            raise ValueError(f'{type(self).__name__}: the {name} '
                             f'({cfg.get("type")}) is empty.')
        num = len(dataset)
        if self.max_images is not None and self.max_images < num:
            indices = np.linspace(0, num - 1, self.max_images).round()
        else:
            indices = np.arange(num)
        images, labels = [], []
        for idx in indices.astype(int).tolist():
            sample = dataset[idx]
            data_sample = sample.get('data_samples')
            label = getattr(data_sample, 'gt_label', None)
            if label is None or len(label) == 0:
                raise ValueError(
                    f'{type(self).__name__}: sample {idx} of the {name} has '
                    'no gt_label; the k-NN monitor needs a labelled dataset.')
            inputs = sample['inputs']
            if isinstance(inputs, (list, tuple)):
                inputs = inputs[0]
            images.append(inputs)
            labels.append(int(label[0]))
        classes = dataset.metainfo.get('classes') or ()
        self.num_classes = max(self.num_classes or 0, len(classes),
                               1 + max(labels))
        return torch.stack(images), torch.tensor(labels)

    def _data(self, runner) -> Dict[str, Tuple[torch.Tensor, torch.Tensor]]:
        if self._cache is None:
            size = self._input_size(self._model(runner))
            self._cache = dict(
                bank=self._load(
                    self._dataset_cfg(self.train_dataset,
                                      DEFAULT_TRAIN_DATASET, size),
                    'train_dataset (memory bank)'),
                queries=self._load(
                    self._dataset_cfg(self.val_dataset, DEFAULT_VAL_DATASET,
                                      size), 'val_dataset (queries)'))
        return self._cache

    # ---------------------------------------------------------- embedding
    def _encode(self, model, inputs: torch.Tensor) -> torch.Tensor:
        if self.encoder is None:
            backbone = getattr(model, 'backbone', None)
            if hasattr(model, 'extract_feat'):
                feats = model.extract_feat(inputs)
            else:
                feats = backbone(inputs, mask=None)
        else:
            backbone = getattr(model, ENCODERS[self.encoder], None)
            if backbone is None:
                raise AttributeError(
                    f"encoder={self.encoder!r}: {type(model).__name__} has "
                    f'no {ENCODERS[self.encoder]!r} module.')
            feats = backbone(inputs, mask=None)
        extra = getattr(backbone, 'num_extra_tokens', 1)
        return pool_features(feats, self.feature, extra).float()

    @torch.no_grad()
    def embed(self, model, images: torch.Tensor) -> torch.Tensor:
        """(N, C) features of cached pipeline outputs, in batches, through
        the model's ``data_preprocessor`` (normalisation, BGR -> RGB)."""
        feats = []
        for start in range(0, len(images), self.batch_size):
            batch = images[start:start + self.batch_size]
            data = model.data_preprocessor(
                dict(inputs=batch, data_samples=None), training=False)
            inputs = data['inputs']
            if isinstance(inputs, (list, tuple)):
                inputs = inputs[0]
            feats.append(self._encode(model, inputs).cpu())
        return torch.cat(feats)

    # --------------------------------------------------------- evaluation
    def evaluate(self, runner,
                 step: Optional[int] = None) -> Optional[Dict[str, float]]:
        """Embed, log and return top-1 / top-5 (%) at ``step`` (default
        ``runner.iter``); other ranks than 0 return None (no collective)."""
        step = runner.iter if step is None else step
        if not is_main_process():
            return None
        start = time.perf_counter()
        data = self._data(runner)
        model = self._model(runner)
        modes = [(m, m.training) for m in model.modules()]
        model.eval()
        try:
            with torch.no_grad():
                bank = self.embed(model, data['bank'][0])
                queries = self.embed(model, data['queries'][0])
        finally:
            for module, mode in modes:
                module.training = mode
        result = knn_accuracy(bank, data['bank'][1], queries,
                              data['queries'][1], self.num_classes, self.k,
                              self.temperature)
        seconds = time.perf_counter() - start
        self._last_step = step
        self.results.append(dict(result, step=step))
        self._report(runner, result, step, len(bank), len(queries), seconds)
        return result

    def _report(self, runner, result: dict, step: int, num_bank: int,
                num_queries: int, seconds: float) -> None:
        scalars = {f'{self.prefix}/{key}': value
                   for key, value in result.items()}
        for key, value in scalars.items():
            runner.message_hub.update_scalar(key, value)
        runner.visualizer.add_scalars(scalars, step=step)
        runner.logger.info(
            f'{self.prefix} (DINO weighted k-NN, k={self.k}, '
            f'T={self.temperature:g}, {self.feature} feature, '
            f'{num_bank} bank / {num_queries} query images, '
            f'{self.num_classes} classes) after {step} iterations: '
            f'top1 {result["top1"]:.2f} %, top5 {result["top5"]:.2f} % '
            f'(chance {100.0 / self.num_classes:.1f} %; {seconds:.1f} s)')
