"""DINO's weighted k-NN protocol (Caron et al. 2021) and KNNMonitorHook."""
import glob
import json
import math
import os.path as osp

import pytest
import torch

from mmsdae.engine import KNNMonitorHook, knn_accuracy, weighted_knn
from mmsdae.engine.hooks.knn_monitor_hook import pool_features


def clusters(num_classes, per_class, dim=32, noise=0.05, seed=0):
    """Class c = one-hot direction e_c plus small Gaussian noise."""
    gen = torch.Generator().manual_seed(seed)
    labels = torch.arange(num_classes).repeat_interleave(per_class)
    feats = torch.eye(dim)[labels] + noise * torch.randn(
        len(labels), dim, generator=gen)
    return feats, labels


def test_separable_features_are_classified_perfectly():
    bank, bank_labels = clusters(10, 50, seed=0)
    queries, query_labels = clusters(10, 100, seed=1)
    result = knn_accuracy(bank, bank_labels, queries, query_labels, 10)
    assert result == dict(top1=100.0, top5=100.0)
    ranking = weighted_knn(bank, bank_labels, queries, 10)
    assert ranking.shape == (1000, 10)
    assert torch.equal(ranking[:, 0], query_labels)


def test_shuffled_labels_give_chance_level():
    bank, bank_labels = clusters(10, 50, seed=0)
    queries, query_labels = clusters(10, 100, seed=1)
    gen = torch.Generator().manual_seed(0)
    shuffled = query_labels[torch.randperm(1000, generator=gen)]
    result = knn_accuracy(bank, bank_labels, queries, shuffled, 10)
    assert abs(result['top1'] - 10.0) < 5.0
    assert abs(result['top5'] - 50.0) < 10.0


def unit(cos):
    return [cos, math.sqrt(1.0 - cos**2)]


def test_similarity_weighting_beats_plain_majority_vote():
    # query e_1; the 3 nearest bank entries: one of class 0 at cosine 0.9,
    # two of class 1 at cosine 0.5; a class-0 entry at cosine -1 is not
    # among them.
    query = torch.tensor([[1.0, 0.0]])
    bank = torch.tensor([unit(0.9), unit(0.5), [0.5, -math.sqrt(0.75)],
                         [-1.0, 0.0]])
    labels = torch.tensor([0, 1, 1, 0])
    # votes: class 0 exp(0.9 / 0.07) = 3.8e5 > class 1 2 exp(0.5 / 0.07)
    # = 2.5e3, whereas a plain majority (2 of 3) picks class 1
    assert math.exp(0.9 / 0.07) > 2 * math.exp(0.5 / 0.07)
    assert weighted_knn(bank, labels, query, 2, k=3).tolist() == [[0, 1]]
    # features are L2-normalised first: scaling changes nothing
    assert weighted_knn(5 * bank, labels, 0.1 * query, 2,
                        k=3).tolist() == [[0, 1]]
    # a flat vote (T = 1: e^0.9 = 2.46 < 2 e^0.5 = 3.30) is the majority
    assert weighted_knn(bank, labels, query, 2, k=3,
                        temperature=1.0).tolist() == [[1, 0]]
    # k = 1: only the nearest neighbour; k > bank size: the whole bank
    assert weighted_knn(bank, labels, query, 2, k=1).tolist() == [[0, 1]]
    assert weighted_knn(bank, labels, query, 2, k=50).tolist() == [[0, 1]]
    result = knn_accuracy(bank, labels, query, torch.tensor([1]), 2, k=3)
    assert result == dict(top1=0.0, top5=100.0)  # 2 classes: top-5 = all


@pytest.mark.parametrize('kwargs, match', [
    (dict(k=0), 'k=0'), (dict(temperature=0.0), 'temperature'),
    (dict(temperature=-0.07), 'temperature'),
    (dict(num_classes=1), 'num_classes')])
def test_weighted_knn_bad_arguments(kwargs, match):
    args = dict(train_feats=torch.randn(4, 3),
                train_labels=torch.tensor([0, 1, 0, 1]),
                query_feats=torch.randn(2, 3), num_classes=2)
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        weighted_knn(**args)


@pytest.mark.parametrize('kwargs', [
    dict(interval=0), dict(k=0), dict(temperature=0), dict(feature='avg'),
    dict(encoder='decoder'), dict(max_images=0), dict(batch_size=0)])
def test_bad_hook_arguments(kwargs):
    with pytest.raises(ValueError):
        KNNMonitorHook(**kwargs)


def test_pool_features():
    tokens = torch.arange(2 * 5 * 3, dtype=torch.float).reshape(2, 5, 3)
    assert torch.equal(pool_features((tokens, ), 'cls'), tokens[:, 0])
    assert torch.equal(pool_features(tokens, 'mean'),
                       tokens[:, 1:].mean(1))
    assert pool_features(torch.ones(2, 3, 4, 4)).shape == (2, 3)
    assert pool_features(torch.ones(2, 7), 'mean').shape == (2, 7)


# ---------------------------------------------------------------- runner
def small_sets(bank=32, queries=16):
    return dict(
        train_dataset=dict(type='ProceduralShapesDataset', num_images=bank,
                           seed=1),
        val_dataset=dict(type='ProceduralShapesDataset', num_images=queries,
                         seed=2))


def knn_hook(runner):
    return next(h for h in runner.hooks if isinstance(h, KNNMonitorHook))


def test_hook_in_a_tiny_sdae_training(make_runner, tmp_path, tiny_cfg):
    runner = make_runner(
        tmp_path, tiny_cfg, 2,
        [dict(type='SdAETeacherEMAHook'),
         dict(type='KNNMonitorHook', k=5, batch_size=16, **small_sets())],
        num_images=8)
    runner.train()
    hook = knn_hook(runner)
    model = runner.model

    # once per epoch (2 iterations each); at_end does not repeat iter 4
    assert [r['step'] for r in hook.results] == [2, 4]
    top1 = runner.message_hub.get_scalar('knn/top1').current()
    assert top1 == hook.results[-1]['top1']
    assert 0.0 <= top1 <= 100.0
    assert hook.num_classes == 10
    # 32 px images (the model's input size), cached
    assert hook._cache['bank'][0].shape == (32, 3, 32, 32)
    assert hook._cache['queries'][0].shape == (16, 3, 32, 32)

    scalars = glob.glob(osp.join(runner.log_dir, 'vis_data', 'scalars.json'))
    with open(scalars[0]) as f:
        records = [json.loads(line) for line in f]
    knn = [r for r in records if 'knn/top1' in r]
    assert [r['step'] for r in knn] == [2, 4]
    assert knn[-1]['knn/top1'] == top1 and 'knn/top5' in knn[-1]

    # a direct pass: no parameter or buffer changes, the train/eval flags
    # of every module come back (the student trains, the teacher stays in
    # eval mode), the images are not loaded again
    model.train()
    flags = [m.training for m in model.modules()]
    assert model.training and not model.teacher.training
    state = {k: v.clone() for k, v in model.state_dict().items()}
    cache = hook._cache
    seen_modes = []
    extract_feat = model.extract_feat
    model.extract_feat = lambda x: (seen_modes.append(model.training),
                                    extract_feat(x))[1]
    again = hook.evaluate(runner)
    del model.extract_feat
    assert seen_modes and not any(seen_modes)  # eval mode inside
    assert again == {k: hook.results[-2][k] for k in ('top1', 'top5')}
    assert [m.training for m in model.modules()] == flags
    after = model.state_dict()
    assert all(torch.equal(state[k], after[k]) for k in state)
    assert hook._cache is cache


def test_mean_feature_and_mae(build_tiny):
    """Patch-token mean of SdAE and the class token of mmpretrain's MAE."""
    from mmpretrain.registry import MODELS
    hook = KNNMonitorHook(feature='mean', max_images=6, **small_sets())
    cfg = hook._dataset_cfg(hook.train_dataset, {}, 32)
    images, labels = hook._load(cfg, 'bank')
    # max_images spreads the subset over the dataset
    assert images.shape == (6, 3, 32, 32) and labels.shape == (6, )

    sdae = build_tiny().eval()
    feats = hook.embed(sdae, images)
    tokens = sdae.backbone(sdae.data_preprocessor(
        dict(inputs=images, data_samples=None))['inputs'], mask=None)[-1]
    torch.testing.assert_close(feats, tokens[:, 1:].mean(1))

    mae_cfg = dict(
        type='MAE',
        backbone=dict(type='MAEViT', arch=dict(
            embed_dims=32, num_layers=1, num_heads=2,
            feedforward_channels=64), img_size=32, patch_size=8),
        neck=dict(type='MAEPretrainDecoder', num_patches=16, patch_size=8,
                  embed_dim=32, decoder_embed_dim=16, decoder_depth=1,
                  decoder_num_heads=2),
        head=dict(type='MAEPretrainHead', patch_size=8,
                  loss=dict(type='PixelReconstructionLoss', criterion='L2')),
        data_preprocessor=dict(type='SelfSupDataPreprocessor'))
    mae = MODELS.build(mae_cfg).eval()
    hook.feature = 'cls'
    assert hook.embed(mae, images).shape == (6, 32)


def test_empty_dataset_is_refused():
    hook = KNNMonitorHook(**small_sets())
    empty = dict(hook.val_dataset, indices=0, serialize_data=False)
    with pytest.raises(ValueError, match='val_dataset .* is empty'):
        hook._load(hook._dataset_cfg(empty, {}, 32), 'val_dataset')


def test_the_monitor_does_not_change_training(make_runner, tmp_path,
                                               tiny_cfg):
    """Same seed with and without the hook (evaluating at the start, every
    epoch and at the end): bit-identical final weights, student and teacher
    alike (no RNG drawn, no mode left switched, no parameter touched)."""
    with_hook = make_runner(
        tmp_path / 'with', tiny_cfg, 2,
        [dict(type='SdAETeacherEMAHook'),
         dict(type='KNNMonitorHook', k=5, batch_size=16, at_start=True,
              **small_sets())],
        num_images=8)
    with_hook.train()
    without = make_runner(tmp_path / 'without', tiny_cfg, 2,
                          [dict(type='SdAETeacherEMAHook'),
                           dict(type='TrainSummaryHook')],
                          num_images=8)
    without.train()
    reference = without.model.state_dict()
    for name, value in with_hook.model.state_dict().items():
        assert torch.equal(value, reference[name]), name
    assert len(knn_hook(with_hook).results) == 3  # start + 2 epochs
