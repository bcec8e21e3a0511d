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
the Table 1 order; with ``--peak-tflops``, MAE's model FLOP utilisation).

On a GPU (ViT-B, the paper's batch, bf16 AMP, the H200's dense bf16 peak;
G2SD / Hybrid Distill with random-weight teachers written to a folder)::

    python tools/benchmark/pretrain_speed.py MAE_B SDAE_B RCMAE_B G2SD_S \\
        HYBRID_B --device cuda --amp --batch-size 96 --peak-tflops 989 \\
        --random-teachers /tmp/teachers --max-time-ratio 1.25 \\
        [--compile-blocks]

``tools/benchmark/gpu_check.sh`` runs this (and more) in one call.

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
                        help='autocast the step in --amp-dtype')
    parser.add_argument('--amp-dtype', choices=('bfloat16', 'float16'),
                        help='default: bfloat16 where supported (CPU, GPUs '
                        'with torch.cuda.is_bf16_supported()), as '
                        'tools/train.py --amp')
    parser.add_argument('--compile-blocks', action='store_true',
                        help='torch.compile every ViT encoder block (student '
                        'and teachers) of every row after counting FLOPs')
    parser.add_argument('--compile-backend',
                        help='with --compile-blocks: a torch.compile backend '
                        '(default inductor; eager / aot_eager skip code '
                        'generation)')
    parser.add_argument('--peak-tflops', type=float,
                        help='the device\'s dense peak in the AMP dtype '
                        '(H200 SXM bf16: 989): adds model FLOP utilisation')
    parser.add_argument('--random-teachers', metavar='DIR',
                        help='write random-weight files for the frozen '
                        'teachers (G2SD, Hybrid Distill) into DIR and use '
                        'them (speed and memory only)')
    parser.add_argument('--max-time-ratio', type=float, default=1.3,
                        help='target: SdAE t=3 step time / MAE\'s')
    parser.add_argument('--max-mem-ratio', type=float, default=1.1,
                        help='target: SdAE t=3 peak memory / MAE\'s')
    parser.add_argument('--min-mfu', type=float, default=0.35,
                        help='target: MAE\'s model FLOP utilisation')
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


def _with_random_teachers(entries, args):
    """Entries whose frozen teachers read random-weight files written to
    ``args.random_teachers`` (one set per config)."""
    written = {}
    result = []
    for i, item in enumerate(entries):
        entry = dict(item) if isinstance(item, dict) else dict(config=item)
        config = entry['config']
        if config not in written:
            written[config] = bench.write_random_teachers(
                config, args.random_teachers, args.cfg_options)
        if written[config]:
            options = dict(entry.get('model_options') or {})
            options.update(written[config])
            entry['model_options'] = options
        if args.labels:
            entry['label'] = args.labels[i]
        result.append(entry)
    return result


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
    peak = args.peak_tflops * 1e12 if args.peak_tflops else None
    try:
        if args.random_teachers:
            entries = _with_random_teachers(entries, args)
        results = bench.benchmark(
            entries, labels=args.labels, device=args.device,
            batch_size=args.batch_size, iters=args.iters, warmup=args.warmup,
            amp=args.amp, cfg_options=args.cfg_options,
            data_root=args.data_root, data_workers=args.data_workers,
            data_batches=args.data_batches, amp_dtype=args.amp_dtype,
            compile_blocks=(dict(backend=args.compile_backend)
                            if args.compile_backend and args.compile_blocks
                            else args.compile_blocks), peak_flops=peak)
    except (FileNotFoundError, ValueError) as err:
        raise SystemExit(f'error: {err}')
    env = bench.environment(args.device, args.batch_size, args.iters,
                            args.warmup, args.amp, args.amp_dtype, peak,
                            args.compile_blocks)
    print(bench.format_table(results))
    print(f"torch {env['torch']}, device {env['device_name']}, "
          f"{env['threads']} threads, batch {args.batch_size}, "
          f'{args.warmup} warm-up + {args.iters} timed steps, '
          f'{"AMP " + env["amp_dtype"] + ", " if args.amp else ""}'
          f'{"compiled blocks, " if args.compile_blocks else ""}'
          'EMA per the config\'s cadence')
    targets = bench.check_targets(results, args.max_time_ratio,
                                  args.max_mem_ratio, args.min_mfu)
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
