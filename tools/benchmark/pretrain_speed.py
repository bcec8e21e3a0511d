"""Side-by-side pre-training benchmark: step time, images/s, peak memory and
FLOPs (student / teacher / decoder) of several configs in one process.

Example (CPU demo configs)::

    python tools/benchmark/pretrain_speed.py \\
        configs/rcmae/mae_vit-tiny-p8_1xb32-10e_procedural-64px.py \\
        configs/sdae/sdae_vit-tiny-p8_1xb32-10e_procedural-64px.py \\
        configs/rcmae/rcmae_vit-tiny-p8_1xb32-10e_procedural-64px.py \\
        --batch-size 32 --iters 10 --json speed.json

See :mod:`mmsdae.analysis.benchmark` for what every number means.
"""
import argparse
import json
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))

from mmengine.config import DictAction  # noqa: E402

from mmsdae.analysis import benchmark as bench  # noqa: E402


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('configs', nargs='+', help='config files')
    parser.add_argument('--labels', nargs='+', help='one label per config')
    parser.add_argument('--device', default='cpu', help='cpu or cuda')
    parser.add_argument('--batch-size', type=int, default=32)
    parser.add_argument('--iters', type=int, default=10,
                        help='timed steps (the median is reported)')
    parser.add_argument('--warmup', type=int, default=3)
    parser.add_argument('--amp', action='store_true',
                        help='autocast (fp16 on CUDA, bf16 on CPU)')
    parser.add_argument('--json', help='write all fields to this file')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override settings of every config')
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    for config in args.configs:
        if not osp.isfile(config):
            raise SystemExit(f'error: config file {config!r} does not exist '
                             '(paths are relative to the current directory).')
    try:
        bench.check_device(args.device)
    except (RuntimeError, ValueError) as err:
        raise SystemExit(f'error: {err}')
    results = bench.benchmark(
        args.configs, labels=args.labels, device=args.device,
        batch_size=args.batch_size, iters=args.iters, warmup=args.warmup,
        amp=args.amp, cfg_options=args.cfg_options)
    env = bench.environment(args.device, args.batch_size, args.iters,
                            args.warmup, args.amp)
    print(bench.format_table(results))
    print(f"torch {env['torch']}, device {env['device_name']}, "
          f"{env['threads']} threads, batch {args.batch_size}, "
          f'{args.warmup} warm-up + {args.iters} timed steps, EMA every step')
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(dict(environment=env, results=results), f, indent=2)
        print(f'wrote {args.json}')
    return results


if __name__ == '__main__':
    main()
