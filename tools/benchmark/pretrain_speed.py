"""Side-by-side pre-training benchmark: step time, images/s, peak memory and
FLOPs (student / teacher / decoder) of several configs in one process.

Example (CPU demo configs)::

    python tools/benchmark/pretrain_speed.py \\
        configs/rcmae/mae_vit-tiny-p8_1xb32-10e_procedural-64px.py \\
        configs/sdae/sdae_vit-tiny-p8_1xb32-10e_procedural-64px.py \\
        configs/rcmae/rcmae_vit-tiny-p8_1xb32-10e_procedural-64px.py \\
        --batch-size 32 --iters 10 --json speed.json

SdAE's teacher-input options side by side (SdAE Table 1), each SdAE config
expanded into one row per option::

    python tools/benchmark/pretrain_speed.py MAE_CONFIG SDAE_CONFIG \\
        --teacher-inputs full masked crop fold=2 fold=3 fold=4

With ``--data-root FOLDER`` the images/s of each config's training pipeline
over the images of FOLDER is printed next to the model's. After the table
the performance targets the rows allow checking are printed, met or
missed (teacher time share <= FLOP share, SdAE t=3 vs MAE time and memory,
the Table 1 order).

See :mod:`mmsdae.analysis.benchmark` for what every number means.
"""
import argparse
import json
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))

from mmengine.config import Config, DictAction  # noqa: E402

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
    parser.add_argument(
        '--teacher-inputs', nargs='+', metavar='OPTION',
        help='replace every SdAE config by one row per teacher-input option: '
        'full, masked, crop (k = visible patches), crop=K, fold=T')
    parser.add_argument('--data-root',
                        help='a folder of images: also time each config\'s '
                        'training pipeline on them')
    parser.add_argument('--data-workers', type=int, default=2)
    parser.add_argument('--data-batches', type=int, default=5)
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
    entries = list(args.configs)
    if args.teacher_inputs:
        if args.labels:
            raise SystemExit('error: --labels and --teacher-inputs do not '
                             'mix (the variants are labelled CONFIG[OPTION]).')
        entries = []
        for config in args.configs:
            if Config.fromfile(config).model.get('type') == 'SdAE':
                try:
                    entries += bench.teacher_input_variants(
                        config, args.teacher_inputs)
                except ValueError as err:
                    raise SystemExit(f'error: {err}')
            else:
                entries.append(config)
    try:
        results = bench.benchmark(
            entries, labels=args.labels, device=args.device,
            batch_size=args.batch_size, iters=args.iters, warmup=args.warmup,
            amp=args.amp, cfg_options=args.cfg_options,
            data_root=args.data_root, data_workers=args.data_workers,
            data_batches=args.data_batches)
    except (FileNotFoundError, ValueError) as err:
        raise SystemExit(f'error: {err}')
    env = bench.environment(args.device, args.batch_size, args.iters,
                            args.warmup, args.amp)
    print(bench.format_table(results))
    print(f"torch {env['torch']}, device {env['device_name']}, "
          f"{env['threads']} threads, batch {args.batch_size}, "
          f'{args.warmup} warm-up + {args.iters} timed steps, '
          f'{"AMP, " if args.amp else ""}EMA per the config\'s cadence')
    targets = bench.check_targets(results)
    if targets:
        print(bench.format_targets(targets))
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(dict(environment=env, results=results,
                           targets=[dict(target=name, met=met, detail=detail)
                                    for name, met, detail in targets]),
                      f, indent=2, default=str)
        print(f'wrote {args.json}')
    return results


if __name__ == '__main__':
    main()
