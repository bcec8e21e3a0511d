# Copyright (c) OpenMMLab. All rights reserved.
"""Metrics of the ImageNet robustness test sets (RC-MAE Table 7).

- :class:`MeanCorruptionError`: ImageNet-C's mean Corruption Error (mCE).
- :class:`SubsetAccuracy`: top-1 of a 1000-way classifier on ImageNet-A /
  -R, whose 200 classes are a subset: the logits are restricted to them.

ImageNet-Sketch has the 1000 classes: mmpretrain's ``Accuracy``.
"""
from collections import defaultdict
from typing import Dict, List, Optional, Sequence

import torch
from mmengine.evaluator import BaseMetric
from mmpretrain.evaluation import Accuracy
from mmpretrain.registry import METRICS

from ..datasets.imagenet_variants import (IMAGENET_C_CORRUPTIONS,
                                          IMAGENET_C_SEVERITIES)

# AlexNet's top-1 error on each ImageNet-C corruption, averaged over
# severities 1-5: the normaliser of the Corruption Error (Hendrycks &
# Dietterich 2019, Sec. 3). Values: the "raw AlexNet errors taken from
# github.com/hendrycks/robustness" of google-research/augmix, imagenet.py
# (ALEXNET_ERR); a second, per-severity transcription averages to them
# (tests/test_evaluation/test_robustness_metrics.py).
ALEXNET_ERRORS = {
    'gaussian_noise': 0.886428,
    'shot_noise': 0.894468,
    'impulse_noise': 0.922640,
    'defocus_blur': 0.819880,
    'glass_blur': 0.826268,
    'motion_blur': 0.785948,
    'zoom_blur': 0.798360,
    'snow': 0.866816,
    'frost': 0.826572,
    'fog': 0.819324,
    'brightness': 0.564592,
    'contrast': 0.853204,
    'elastic_transform': 0.646056,
    'pixelate': 0.717840,
    'jpeg_compression': 0.606500,
}


def top1(data_sample: dict) -> int:
    """The predicted class of one data sample (``pred_score`` or
    ``pred_label``)."""
    if 'pred_score' in data_sample:
        return int(torch.as_tensor(data_sample['pred_score']).argmax())
    return int(torch.as_tensor(data_sample['pred_label']).reshape(-1)[0])


@METRICS.register_module()
class MeanCorruptionError(BaseMetric):
    """Mean Corruption Error on ImageNet-C (Hendrycks & Dietterich 2019).

    With :math:`E_{s,c}` the top-1 error at severity :math:`s` of
    corruption :math:`c`,

    .. math::
        CE_c = \\sum_{s=1}^{5} E_{s,c} \\Big/ \\sum_{s=1}^{5}
        E_{s,c}^{AlexNet}, \\qquad mCE = \\frac{1}{|C|} \\sum_c CE_c,

    over the 15 corruptions, in % (lower is better), as RC-MAE Table 7
    reports it. The samples must carry ``corruption`` and ``severity``
    (:class:`mmsdae.datasets.ImageNetC`, with both in ``PackInputs``'
    ``meta_keys``); every corruption needs all five severities.

    Results: ``mCE``, ``CE/<corruption>`` and ``error`` (the mean top-1
    error over corruptions and severities, not normalised), all in %.

    Args:
        corruptions (Sequence[str]): Corruptions averaged. Defaults to the 15
            of the mCE.
        collect_device (str): As MMEngine's ``BaseMetric``.
        prefix (str, optional): Prefix of the result keys. Defaults to
            ``'imagenet-c'``.
    """
    default_prefix = 'imagenet-c'

    def __init__(self,
                 corruptions: Sequence[str] = IMAGENET_C_CORRUPTIONS,
                 collect_device: str = 'cpu',
                 prefix: Optional[str] = None):
        super().__init__(collect_device=collect_device, prefix=prefix)
        unknown = [c for c in corruptions if c not in ALEXNET_ERRORS]
        if unknown or not corruptions:
            raise ValueError(
                f'MeanCorruptionError: corruptions must be among the 15 of '
                f'the mCE, {list(ALEXNET_ERRORS)}, but got {unknown or []}.')
        self.corruptions = tuple(corruptions)

    def process(self, data_batch, data_samples: Sequence[dict]) -> None:
        for sample in data_samples:
            if 'corruption' not in sample or 'severity' not in sample:
                raise KeyError(
                    "MeanCorruptionError: the data samples carry no "
                    "'corruption' / 'severity'. Test on ImageNetC and add "
                    "both to the meta_keys of the pipeline's PackInputs, as "
                    "configs/rcmae/benchmarks/vit-base-p16_test_imagenet-c.py "
                    "does.")
            correct = top1(sample) == int(
                torch.as_tensor(sample['gt_label']).reshape(-1)[0])
            self.results.append(
                (sample['corruption'], int(sample['severity']), correct))

    def compute_metrics(self, results: List[tuple]) -> Dict[str, float]:
        wrong, total = defaultdict(int), defaultdict(int)
        for corruption, severity, correct in results:
            if (corruption not in self.corruptions
                    or severity not in IMAGENET_C_SEVERITIES):
                raise ValueError(
                    f'MeanCorruptionError: samples of {corruption!r} at '
                    f'severity {severity}, outside the corruptions '
                    f'{self.corruptions} x severities 1-5 of the metric. '
                    f'Read the same corruptions in the dataset and metric.')
            wrong[corruption, severity] += not correct
            total[corruption, severity] += 1
        missing = [(c, s) for c in self.corruptions
                   for s in IMAGENET_C_SEVERITIES if (c, s) not in total]
        if missing:
            raise ValueError(
                f'MeanCorruptionError: no sample of {len(missing)} '
                f'corruption/severity pair(s), e.g. {missing[:3]}; the CE '
                f'sums the errors of all five severities of a corruption.')
        metrics, errors, ces = {}, [], []
        for c in self.corruptions:
            err = [
                wrong[c, s] / total[c, s] for s in IMAGENET_C_SEVERITIES
            ]
            ce = sum(err) / (len(err) * ALEXNET_ERRORS[c])
            metrics[f'CE/{c}'] = 100 * ce
            errors += err
            ces.append(ce)
        metrics['mCE'] = 100 * sum(ces) / len(ces)
        metrics['error'] = 100 * sum(errors) / len(errors)
        return metrics


@METRICS.register_module()
class SubsetAccuracy(Accuracy):
    """Top-k accuracy of a 1000-way classifier on a 200-class subset.

    ImageNet-A and -R label their images among 200 ImageNet classes; as in
    their authors' evaluation code (``output[:, indices_in_1k]``), the
    prediction is the arg-max over those 200 logits only, and the label is
    the position in the 200-class list. The scores are restricted after the
    softmax, which keeps the order of the logits. The 1000-way index of each
    of the 200 classes is the dataset's ``metainfo['indices_in_1k']``
    (:class:`mmsdae.datasets.ImageNetA` / ``ImageNetR``).

    Args:
        **kwargs: As mmpretrain's ``Accuracy`` (``topk``, ``thrs``, ...).
    """

    def process(self, data_batch, data_samples: Sequence[dict]) -> None:
        meta = self.dataset_meta or {}
        if 'indices_in_1k' not in meta:
            raise KeyError(
                "SubsetAccuracy: the dataset's metainfo has no "
                "'indices_in_1k' (the 1000-way label of each subset class). "
                "Use it with ImageNetA or ImageNetR.")
        indices = torch.as_tensor(meta['indices_in_1k'], dtype=torch.long)
        for sample in data_samples:
            if 'pred_score' not in sample:
                raise KeyError(
                    'SubsetAccuracy needs the 1000 class scores '
                    '(pred_score) of each sample, not only pred_label.')
            score = torch.as_tensor(sample['pred_score']).cpu()
            if score.shape[-1] <= int(indices.max()):
                raise ValueError(
                    f'SubsetAccuracy: {score.shape[-1]} class scores, but '
                    f'the subset indexes up to {int(indices.max())}; the '
                    f'classifier must have the 1000 ImageNet classes.')
            self.results.append(
                dict(
                    pred_score=score[..., indices],
                    gt_label=torch.as_tensor(sample['gt_label']).cpu()))


__all__ = ['ALEXNET_ERRORS', 'MeanCorruptionError', 'SubsetAccuracy']
