"""Does pre-training learn? Pre-train every method for the same budget on
the procedural shape task and compare with a random encoder.

    python tools/benchmark/learning_signal.py \
        --out-dir docs/figures/learning_signal

writes ``learning_signal.json`` (table, kNN curves, margins over the random
encoder, budget) and ``learning_signal.png`` (kNN top-1 versus iterations)
and prints the table; ``--variants`` adds recipe variants as rows (e.g.
SdAE with its teacher frozen). ``--budget guard`` is one seed of the slow
regression test; ``--device cuda`` picks the ``gpu`` budget unless
``--budget`` is given. What is measured:
:mod:`mmsdae.analysis.learning_signal`.
"""
import argparse
import logging
import sys
from dataclasses import replace

from mmsdae.analysis import learning_signal as ls


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--budget', choices=sorted(ls.BUDGETS),
                        help='run length (default: "default" on CPU, "gpu" '
                        'with --device cuda)')
    parser.add_argument('--methods', nargs='+', default=list(ls.METHODS),
                        choices=ls.METHODS, metavar='METHOD',
                        help=f'methods to pre-train (default: all of '
                        f'{", ".join(ls.METHODS)})')
    parser.add_argument('--variants', metavar='FILE',
                        help='JSON {label: variant} of extra rows, as '
                        'tools/benchmark/learning_sweep.py reads them '
                        '(e.g. tools/benchmark/sweeps/sdae_frozen_teacher.json)')
    parser.add_argument('--device', default='cpu', help='cpu or cuda')
    parser.add_argument('--seed', type=int, default=0,
                        help='seed of the runs and of the training images')
    parser.add_argument('--workers', type=int,
                        help='data-loading processes of the pre-training '
                        'runs (default: the budget\'s)')
    parser.add_argument('--work-dir', default='work_dirs/learning_signal',
                        help='where the runs write their checkpoints')
    parser.add_argument('--out-dir', default='work_dirs/learning_signal',
                        help='where the JSON and the PNG go')
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    if args.device.startswith('cuda'):
        import torch
        if not torch.cuda.is_available():
            sys.exit('--device cuda: no CUDA device is visible here; use '
                     '--device cpu.')
    variants = ls.load_variants(args.variants) if args.variants else None
    budget = ls.BUDGETS[args.budget or (
        'gpu' if args.device.startswith('cuda') else 'default')]
    if args.workers is not None:
        if args.workers < 0:
            sys.exit(f'--workers {args.workers}: give 0 (load in the main '
                     'process) or more.')
        budget = replace(budget, workers=args.workers)
    from mmengine.logging import MMLogger
    MMLogger.get_instance('mmengine').setLevel(logging.ERROR)
    results = ls.run(args.methods, budget, work_dir=args.work_dir,
                     seed=args.seed, device=args.device, variants=variants,
                     on_row=lambda partial: ls.save(partial, args.out_dir))
    ls.save(results, args.out_dir)
    print(ls.format_table(results))
    print(f'[learning signal] {args.out_dir}/learning_signal.json and .png')


if __name__ == '__main__':
    main()
