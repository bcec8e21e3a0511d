"""RC-MAE Table 7: the test configs evaluate the fine-tuned ViT-B on the
official sets; end to end on the tiny sets, tools/test.py with the tiny
ImageNet-C config and tools/analysis_tools/robustness_table.py with all
four, on a classifier whose answer is known.

The classifier ignores its input (head weights zero) and ranks ImageNet
class 0 (tench) > 1 (goldfish) > 6 (stingray) > the rest. So by hand:
ImageNet-C error = 1 - (share of class 0) at every corruption and
severity; ImageNet-A top-1 = 100 (every tiny -A image is a stingray, and
tench / goldfish are not -A classes); ImageNet-R top-1 = share of goldfish
(tench is not an -R class, goldfish is); Sketch top-1 = share of tench.
"""
import os.path as osp
import pickle
import re
import subprocess
import sys

import pytest
import torch
from mmengine.config import Config
from mmpretrain.registry import MODELS

from mmsdae.datasets.tiny_robustness import make_tiny_robustness_data
from mmsdae.evaluation import ALEXNET_ERRORS
from tool_loader import load_tool

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
BENCH = osp.join(REPO, 'configs', 'rcmae', 'benchmarks')
TINY_C = osp.join(BENCH, 'vit-tiny-p8_test_tiny-imagenet-c-64px.py')


@pytest.mark.parametrize('short, dataset, root, metric', [
    ('c', 'ImageNetC', 'imagenet-c', 'MeanCorruptionError'),
    ('a', 'ImageNetA', 'imagenet-a', 'SubsetAccuracy'),
    ('r', 'ImageNetR', 'imagenet-r', 'SubsetAccuracy'),
    ('sketch', 'ImageNetSketch', 'imagenet-sketch/sketch', 'Accuracy'),
])
def test_configs_test_the_fine_tuned_vit_b(short, dataset, root, metric):
    full = Config.fromfile(
        osp.join(BENCH, f'vit-base-p16_test_imagenet-{short}.py'))
    finetune = Config.fromfile(
        osp.join(REPO, 'configs', 'sdae', 'benchmarks',
                 'vit-base-p16_8xb128-coslr-100e_in1k.py'))
    assert full.model == finetune.model  # Table 4's fine-tuned ViT-B/16
    tiny = Config.fromfile(
        osp.join(BENCH, f'vit-tiny-p8_test_tiny-imagenet-{short}-64px.py'))
    for cfg, prefix in ((full, 'data'), (tiny, 'data/tiny')):
        data = cfg.test_dataloader.dataset
        assert (data.type, cfg.test_evaluator.type) == (dataset, metric)
        assert data.data_root == f'{prefix}/{root}'.replace(
            'tiny/imagenet-sketch/sketch', 'tiny/imagenet-sketch')
        if short == 'c':  # MeanCorruptionError reads them from the samples
            assert {'corruption', 'severity'} <= set(
                data.pipeline[-1].meta_keys)


def constant_classifier(cfg_path, out):
    cfg = Config.fromfile(cfg_path)
    state = MODELS.build(cfg.model).state_dict()
    state['head.fc.weight'].zero_()
    state['head.fc.bias'].zero_()
    state['head.fc.bias'][[0, 1, 6]] = torch.tensor([3., 2., 1.])
    torch.save(dict(state_dict=state, meta={}), out)
    return out


@pytest.mark.slow
def test_table_7_on_the_tiny_sets(tmp_path, capsys):
    data = tmp_path / 'data'
    sets = make_tiny_robustness_data(str(data), num_images=4, per_class=2)
    ckpt = constant_classifier(TINY_C, str(tmp_path / 'const.pth'))

    labels = sets['c']['labels']
    error = 1 - labels.count(0) / len(labels)
    mce = 100 * error * sum(1 / a for a in ALEXNET_ERRORS.values()) / 15
    r_counts, s_counts = (sets[k]['class_counts'] for k in ('r', 'sketch'))
    expected = [
        mce, 100.0, 100 * r_counts['1'] / sum(r_counts.values()),
        100 * s_counts['0'] / sum(s_counts.values())
    ]

    # tools/test.py, as the config's header says, with the predictions
    # dumped: each carries its corruption and severity
    out = subprocess.run(
        [sys.executable, osp.join(REPO, 'tools', 'test.py'), TINY_C, ckpt,
         '--work-dir', str(tmp_path / 'test_c'), '--out',
         str(tmp_path / 'c.pkl'), '--cfg-options',
         f'test_dataloader.dataset.data_root={data}/imagenet-c'],
        capture_output=True, text=True, cwd=REPO, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    logged = float(re.search(r'imagenet-c/mCE: ([0-9.]+)', out.stdout +
                             out.stderr).group(1))
    assert logged == pytest.approx(mce, abs=1e-3)
    with open(tmp_path / 'c.pkl', 'rb') as f:
        dumped = pickle.load(f)
    assert len(dumped) == 4 * 15 * 5
    assert {(d['corruption'], d['severity']) for d in dumped} == {
        (c, s) for c in ALEXNET_ERRORS for s in range(1, 6)}

    # the table tool: the four sets, one row beside the paper's
    tool = load_tool('analysis_tools/robustness_table.py')
    values = tool.main([
        ckpt, '--tiny', '--name', 'constant', '--data-root',
        str(data), '--work-dir',
        str(tmp_path / 'table')
    ])
    assert values == pytest.approx(expected, abs=1e-3)
    printed = capsys.readouterr().out
    assert '| RC-MAE (paper) | 49.9 | 36.5 | 49.5 | 35.8 |' in printed
    row = '| constant | ' + ' | '.join(f'{v:.1f}' for v in expected) + ' |'
    assert row in printed
