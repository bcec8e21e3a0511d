# Copyright (c) OpenMMLab. All rights reserved.
"""Evaluate one fine-tuned checkpoint on ImageNet-C / -A / -R / -Sketch and
print the row of RC-MAE Table 7 (Sec. 6.5) next to the paper's rows.

Runs the four test configs of configs/rcmae/benchmarks, as tools/test.py
would run each, in one process::

    python tools/analysis_tools/robustness_table.py CKPT --name RC-MAE
    python tools/analysis_tools/robustness_table.py CKPT --tiny   # CPU check

``--data-root DIR`` reads the sets from DIR instead of ``data`` (``data/tiny``
with ``--tiny``), e.g. DIR/imagenet-c; ``--dump DIR`` writes each set's
predictions to DIR/<set>.pkl (as tools/test.py --out).
"""
import argparse
import os.path as osp
import sys

from mmengine.config import Config
from mmengine.evaluator import DumpResults
from mmengine.runner import Runner

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
# Let the tool run from a checkout without installing mmsdae.
sys.path.insert(0, ROOT)
import mmsdae  # noqa: E402,F401

CONFIG_DIR = osp.join(ROOT, 'configs', 'rcmae', 'benchmarks')
# (set, column title, result key of its metric)
COLUMNS = [
    ('imagenet-c', 'IN-C (mCE ↓)', 'imagenet-c/mCE'),
    ('imagenet-a', 'IN-A (top-1 ↑)', 'accuracy/top1'),
    ('imagenet-r', 'IN-R (top-1 ↑)', 'accuracy/top1'),
    ('imagenet-sketch', 'IN-Sketch (top-1 ↑)', 'accuracy/top1'),
]
# RC-MAE Table 7: ViT-B/16, 1600 pre-training epochs, fine-tuned on
# ImageNet-1k (Table 4's weights), tested without further tuning.
PAPER_ROWS = [
    ('MAE (paper)', (51.7, 35.9, 48.3, 34.5)),
    ('RC-MAE (paper)', (49.9, 36.5, 49.5, 35.8)),
]


def config_path(name: str, tiny: bool) -> str:
    short = name.split('-', 1)[1]
    file = (f'vit-tiny-p8_test_tiny-imagenet-{short}-64px.py'
            if tiny else f'vit-base-p16_test_imagenet-{short}.py')
    return osp.join(CONFIG_DIR, file)


def evaluate(name, checkpoint, args):
    """Run one test config as tools/test.py does; return its metrics."""
    cfg = Config.fromfile(config_path(name, args.tiny))
    cfg.load_from = checkpoint
    cfg.launcher = 'none'
    cfg.work_dir = osp.join(args.work_dir, name)
    # As tools/test.py: testing needs no training data or optimizer.
    for key in ('train_dataloader', 'train_cfg', 'optim_wrapper',
                'param_scheduler'):
        cfg[key] = None
    if args.data_root is not None:
        dataset = cfg.test_dataloader.dataset
        prefix = osp.join('data', 'tiny') if args.tiny else 'data'
        dataset.data_root = osp.join(args.data_root,
                                     osp.relpath(dataset.data_root, prefix))
    runner = Runner.from_cfg(cfg)
    if args.dump is not None:
        runner.test_evaluator.metrics.append(
            DumpResults(out_file_path=osp.join(args.dump, f'{name}.pkl')))
    return runner.test()


def format_table(name, values):
    """Table 7's columns, the paper's rows and ``name``'s row (markdown)."""
    head = ['Method'] + [title for _, title, _ in COLUMNS]
    lines = ['| ' + ' | '.join(head) + ' |', '|' + ' --- |' * len(head)]
    for method, row in PAPER_ROWS + [(name, values)]:
        cells = [f'{v:.1f}' for v in row]
        lines.append('| ' + ' | '.join([method] + cells) + ' |')
    return '\n'.join(lines)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Print RC-MAE Table 7 (robustness) for a checkpoint.')
    parser.add_argument('checkpoint', help='fine-tuned classifier checkpoint')
    parser.add_argument(
        '--name', default='this checkpoint', help='row name in the table')
    parser.add_argument(
        '--tiny',
        action='store_true',
        help='the tiny CPU configs (vit-tiny-p8_test_tiny-*) instead of '
        'the ViT-B ones')
    parser.add_argument(
        '--data-root',
        help='folder holding imagenet-c, imagenet-a, ... (default: the '
        "configs' data or data/tiny)")
    parser.add_argument(
        '--work-dir',
        default=osp.join('work_dirs', 'robustness_table'),
        help='logs go to WORK_DIR/<set> (default: %(default)s)')
    parser.add_argument(
        '--dump', help='write the predictions to DUMP/<set>.pkl')
    args = parser.parse_args(argv)
    if not osp.isfile(args.checkpoint):
        parser.error(f'checkpoint file not found: {args.checkpoint}')
    return args


def main(argv=None):
    args = parse_args(argv)
    values = []
    for name, _, key in COLUMNS:
        metrics = evaluate(name, args.checkpoint, args)
        values.append(float(metrics[key]))
    print(format_table(args.name, values))
    return values


if __name__ == '__main__':
    main()
