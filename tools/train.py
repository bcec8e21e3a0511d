# Copyright (c) OpenMMLab. All rights reserved.
"""Train a model from a config (modelled on mmpretrain 1.2.0 tools/train.py).

Example::

    python tools/train.py configs/sdae/<config>.py --work-dir work_dirs/x
    python tools/train.py configs/sdae/<config>.py --resume          # auto
    python tools/train.py configs/sdae/<config>.py --resume ckpt.pth
    python tools/train.py configs/sdae/<config>.py --resume --resume-fallback
"""
import argparse
import os
import os.path as osp
import sys

from mmengine.config import Config, DictAction
from mmengine.registry import RUNNERS
from mmengine.runner import Runner

# Let ``python tools/train.py`` work from a checkout without installing.
sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))
# Registers mmsdae's modules and its checkpoint allow-list for torch.load.
import mmsdae  # noqa: E402,F401
from mmsdae.engine.optimizers import (AMP_DTYPES,  # noqa: E402
                                      default_amp_dtype)
from mmsdae.utils.dist import (DistEnvError,  # noqa: E402
                               setup_distributed, teardown_distributed)
from mmsdae.utils.preflight import (PreflightError,  # noqa: E402
                                    check_data_roots,
                                    check_pretrained_checkpoints,
                                    check_teacher_updates,
                                    check_unknown_keys)
from mmsdae.utils.resume import (CheckpointFileError,  # noqa: E402
                                 CheckpointMismatchError,
                                 resolve_resume_checkpoint)


def parse_args():
    parser = argparse.ArgumentParser(description='Train a model')
    parser.add_argument('config', help='train config file path')
    parser.add_argument('--work-dir', help='the dir to save logs and models')
    parser.add_argument(
        '--resume',
        nargs='?',
        type=str,
        const='auto',
        help='resume from the given checkpoint; without a path (or with '
        '"auto"), resume from the latest checkpoint in the work directory')
    parser.add_argument(
        '--resume-fallback',
        action='store_true',
        help='with --resume: if the checkpoint is truncated, corrupt or not '
        'a training checkpoint, resume from the previous good epoch_N.pth / '
        'iter_N.pth in the work directory instead of failing')
    parser.add_argument(
        '--amp',
        action='store_true',
        help='enable automatic-mixed-precision training '
        '(MixedPrecisionOptimWrapper, dtype from --amp-dtype)')
    parser.add_argument(
        '--amp-dtype',
        choices=AMP_DTYPES,
        help='with --amp: bfloat16 (no loss scaler; the default on CPUs and '
        'on GPUs that support it, torch.cuda.is_bf16_supported()) or float16 '
        '(dynamic loss scaling; the default on older GPUs)')
    parser.add_argument(
        '--auto-scale-lr',
        action='store_true',
        help='scale the learning rate by the effective batch size '
        '(processes x batch x optim_wrapper.accumulative_counts) over '
        '`auto_scale_lr.base_batch_size` of the config')
    parser.add_argument(
        '--no-validate',
        action='store_true',
        help='do not evaluate checkpoints during training')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override some settings in the used config, the key-value pair '
        'in xxx=yyy format will be merged into config file. If the value to '
        'be overwritten is a list, it should be like key="[a,b]" or key=a,b '
        'It also allows nested list/tuple values, e.g. key="[(a,b),(c,d)]" '
        'Note that the quotation marks are necessary and that no white space '
        'is allowed.')
    parser.add_argument(
        '--launcher',
        choices=['none', 'pytorch', 'slurm', 'mpi'],
        default='none',
        help='job launcher')
    # torch.distributed.launch passes `--local-rank` with torch >= 2.0.
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args()

    if not osp.isfile(args.config):
        parser.error(f'config file not found: {args.config}')
    if args.resume_fallback and args.resume is None:
        parser.error('--resume-fallback needs --resume')
    if args.amp_dtype is not None and not args.amp:
        parser.error('--amp-dtype needs --amp')
    if args.resume not in (None, 'auto') and not osp.isfile(args.resume):
        parser.error(f'checkpoint to resume from not found: {args.resume}')
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    return args


def fail(msg):
    sys.exit(f'{osp.basename(sys.argv[0])}: error: {msg}')


def merge_args(cfg, args):
    """Merge CLI arguments into the config.

    ``--cfg-options`` are merged first, so the flags below are checked
    against (and applied to) the final config.
    """
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)

    if args.no_validate:
        cfg.val_cfg = None
        cfg.val_dataloader = None
        cfg.val_evaluator = None

    cfg.launcher = args.launcher

    # work_dir priority: CLI > config > ./work_dirs/<config name>
    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir', None) is None:
        cfg.work_dir = osp.join('./work_dirs',
                                osp.splitext(osp.basename(args.config))[0])

    if args.amp:
        optim_wrapper = cfg.get('optim_wrapper', None)
        if optim_wrapper is None:
            fail('--amp needs an `optim_wrapper` in the config')
        wrapper_type = str(optim_wrapper.get('type', 'OptimWrapper'))
        if wrapper_type.split('.')[-1] in ('AmpOptimWrapper',
                                           'MixedPrecisionOptimWrapper'):
            fail(f'--amp given, but the config already uses {wrapper_type}; '
                 'drop --amp or set optim_wrapper.type=OptimWrapper')
        # bf16 without a loss scaler, fp16 with dynamic scaling; CPU too
        optim_wrapper.type = 'MixedPrecisionOptimWrapper'
        optim_wrapper.dtype = args.amp_dtype or default_amp_dtype()

    if args.resume == 'auto':
        cfg.resume = True
        cfg.load_from = None
    elif args.resume is not None:
        cfg.resume = True
        cfg.load_from = args.resume

    if args.auto_scale_lr:
        if 'base_batch_size' not in (cfg.get('auto_scale_lr') or {}):
            fail('--auto-scale-lr needs `auto_scale_lr = dict('
                 'base_batch_size=...)` in the config')
        cfg.auto_scale_lr.enable = True
        # MMEngine scales by processes x batch; an optimizer step averages
        # accumulative_counts micro-batches, so the batch the learning rate
        # sees is that many times larger: shrink the base to match
        accum = (cfg.get('optim_wrapper') or {}).get('accumulative_counts', 1)
        if accum != 1:
            cfg.auto_scale_lr.base_batch_size /= accum
            print(f'--auto-scale-lr: {accum} accumulated micro-batches per '
                  'optimizer step, the effective batch is processes x batch '
                  f'x {accum} (base_batch_size '
                  f'{cfg.auto_scale_lr.base_batch_size * accum:g} / {accum} '
                  'in the log line of MMEngine)', file=sys.stderr)
    return cfg


def main():
    args = parse_args()
    cfg = merge_args(Config.fromfile(args.config), args)
    try:
        check_unknown_keys(cfg)
        check_teacher_updates(cfg)
        check_pretrained_checkpoints(cfg)
        check_data_roots(cfg)
    except PreflightError as exc:
        fail(str(exc))
    if cfg.get('resume', False):
        # say which checkpoint is bad and why before MMEngine's torch.load
        # fails without naming it; --resume-fallback picks an older one
        try:
            cfg.load_from = resolve_resume_checkpoint(
                cfg.work_dir, cfg.get('load_from'), args.resume_fallback,
                log=lambda msg: print(f'resume: {msg}', file=sys.stderr))
        except CheckpointFileError as exc:
            fail(str(exc))
    try:  # gloo on CPU, NCCL (MMEngine's path) on GPU
        setup_distributed(cfg, args.launcher)
    except DistEnvError as exc:
        fail(str(exc))

    if 'runner_type' not in cfg:
        runner = Runner.from_cfg(cfg)
    else:
        runner = RUNNERS.build(cfg)
    try:
        runner.train()
    except CheckpointMismatchError as exc:  # load_from / resume, another arch
        fail(str(exc))
    teardown_distributed()


if __name__ == '__main__':
    main()
