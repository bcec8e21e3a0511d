"""Metrics of RC-MAE Table 7: ImageNet-C's mCE (Hendrycks & Dietterich 2019)
and top-1 on the 200-class subsets of ImageNet-A / -R, on constructed
predictions whose results are computed by hand below."""
import pytest
import torch

from mmsdae.evaluation import (ALEXNET_ERRORS, MeanCorruptionError,
                               SubsetAccuracy)

# AlexNet's top-1 error per severity 1-5 as other ImageNet-C evaluation
# code lists it: a transcription independent of ALEXNET_ERRORS (AugMix's
# per-corruption means).
ALEXNET_PER_SEVERITY = {
    'gaussian_noise': (0.69528, 0.82542, 0.93554, 0.98138, 0.99452),
    'shot_noise': (0.71224, 0.85108, 0.93574, 0.98182, 0.99146),
    'impulse_noise': (0.78374, 0.89808, 0.9487, 0.9872, 0.99548),
    'defocus_blur': (0.65624, 0.73202, 0.85036, 0.91364, 0.94714),
    'glass_blur': (0.64308, 0.75054, 0.88806, 0.91622, 0.93344),
    'motion_blur': (0.5843, 0.70048, 0.82108, 0.8975, 0.92638),
    'zoom_blur': (0.70008, 0.76992, 0.80784, 0.84198, 0.87198),
    'snow': (0.71726, 0.88392, 0.86468, 0.9187, 0.94952),
    'frost': (0.6139, 0.79734, 0.8879, 0.89942, 0.9343),
    'fog': (0.67474, 0.7605, 0.84378, 0.8726, 0.945),
    'brightness': (0.4514, 0.48502, 0.54048, 0.62166, 0.7244),
    'contrast': (0.64548, 0.7615, 0.88874, 0.9776, 0.9927),
    'elastic_transform': (0.52596, 0.70116, 0.55686, 0.64076, 0.80554),
    'pixelate': (0.52218, 0.5462, 0.73728, 0.87092, 0.91262),
    'jpeg_compression': (0.51002, 0.54718, 0.57294, 0.65458, 0.74778),
}


def c_sample(corruption, severity, correct, label=3):
    """A data sample as the model + PackInputs give it to the metric."""
    score = torch.full((1000, ), 0.1)
    score[label if correct else label + 1] = 1.0
    return dict(
        pred_score=score,
        gt_label=torch.tensor([label]),
        corruption=corruption,
        severity=severity)


def run(metric, samples):
    metric.process({}, samples)
    return metric.evaluate(len(samples))


def test_alexnet_errors_are_the_papers_15_corruptions_averaged():
    assert list(ALEXNET_ERRORS) == list(ALEXNET_PER_SEVERITY)
    for name, per_severity in ALEXNET_PER_SEVERITY.items():
        assert ALEXNET_ERRORS[name] == pytest.approx(
            sum(per_severity) / 5, abs=1e-6), name


def test_mce_by_hand():
    # Two images per severity. Wrong answers per severity 1..5:
    #   gaussian_noise (0, 1, 1, 2, 2): errors 0, .5, .5, 1, 1 -> sum 3.0
    #   brightness     (0, 0, 0, 1, 1): errors 0, 0, 0, .5, .5 -> sum 1.0
    # AlexNet's sums: 4.43214 (0.69528 + 0.82542 + 0.93554 + 0.98138 +
    # 0.99452) and 2.82296 (0.4514 + 0.48502 + 0.54048 + 0.62166 + 0.7244).
    # CE = 3.0 / 4.43214 = 0.676874 and 1.0 / 2.82296 = 0.354238;
    # mCE = (0.676874 + 0.354238) / 2 = 0.515556. (A ratio of the means,
    # 0.4 / 0.725510 = 0.551336, would be wrong.)
    wrong = dict(gaussian_noise=(0, 1, 1, 2, 2), brightness=(0, 0, 0, 1, 1))
    samples = [
        c_sample(c, s, correct=i >= n) for c, counts in wrong.items()
        for s, n in zip(range(1, 6), counts) for i in range(2)
    ]
    metric = MeanCorruptionError(corruptions=tuple(wrong))
    out = run(metric, samples)
    ce = {k.split('/')[-1]: v for k, v in out.items() if '/CE/' in k}
    assert ce == pytest.approx(
        dict(gaussian_noise=67.6874, brightness=35.4238), abs=1e-3)
    assert out['imagenet-c/mCE'] == pytest.approx(51.5556, abs=1e-3)
    assert out['imagenet-c/error'] == pytest.approx(40.0)  # 4 / 10


def test_mce_refuses_an_incomplete_benchmark():
    # the default is the 15 corruptions: one corruption alone is refused
    samples = [c_sample('fog', s, True) for s in range(1, 6)]
    with pytest.raises(ValueError, match='no sample of 70'):
        run(MeanCorruptionError(), samples)
    # a missing severity: the CE sums all five
    with pytest.raises(ValueError, match=r"\('fog', 5\)"):
        run(MeanCorruptionError(corruptions=('fog', )), samples[:4])
    with pytest.raises(ValueError, match='among the 15'):
        MeanCorruptionError(corruptions=('speckle_noise', ))


def test_mce_names_the_missing_meta_keys():
    sample = c_sample('fog', 1, True)
    del sample['corruption']
    with pytest.raises(KeyError, match='meta_keys'):
        MeanCorruptionError().process({}, [sample])


def subset_sample(scores, label):
    score = torch.zeros(1000)
    for index, value in scores.items():
        score[index] = value
    return dict(pred_score=score.softmax(0), gt_label=torch.tensor([label]))


def test_subset_accuracy_takes_the_argmax_over_the_subset_only():
    # Subset = ImageNet classes 1, 2, 4 (subset labels 0, 1, 2).
    # Sample 1: class 0 scores highest but is outside the subset; among
    # 1, 2, 4 the best is 2 = subset label 1 = its label -> right.
    # Sample 2: best in the subset is 4 = label 2, its label is 0 -> wrong.
    samples = [
        subset_sample({0: 9.0, 1: 1.0, 2: 5.0, 4: 2.0}, label=1),
        subset_sample({1: 1.0, 2: 2.0, 4: 3.0}, label=0),
    ]
    metric = SubsetAccuracy()
    metric.dataset_meta = dict(indices_in_1k=(1, 2, 4))
    assert run(metric, samples)['accuracy/top1'] == pytest.approx(50.0)
    # Without the restriction sample 1 would be class 0, and wrong.
    assert int(samples[0]['pred_score'].argmax()) == 0


def test_subset_accuracy_needs_the_subset_and_the_1000_scores():
    sample = subset_sample({1: 1.0}, label=0)
    metric = SubsetAccuracy()
    with pytest.raises(KeyError, match='indices_in_1k'):
        metric.process({}, [sample])
    metric.dataset_meta = dict(indices_in_1k=(1, 2, 999))
    with pytest.raises(ValueError, match='1000 ImageNet classes'):
        metric.process({}, [dict(sample, pred_score=torch.ones(10))])
