"""Run recipe variants of the learning benchmark side by side, over seeds.

    python tools/benchmark/learning_sweep.py VARIANTS.json --budget test \
        --seeds 0 1 --procs 4 --out-dir work_dirs/learning_sweep

``VARIANTS.json`` maps a label to a variant: ``method`` (a row of
``tools/benchmark/learning_signal.py``, whose demo config is used) or
``config``, and optionally ``cfg_options`` (dotted keys), ``drop_hooks``
and ``epochs`` (default: the budget's). Every (variant, seed) pair is one
pre-training run scored like the benchmark's rows; each seed's random
encoder is the reference of that seed's margins. Writes
``learning_sweep.json`` as results come and prints one table (probe margin
per seed, their mean). Exploration only: the distillation methods' tiny
teachers are not trained here.
"""
import argparse
import json
import logging
import os
import os.path as osp
import sys
from concurrent.futures import ProcessPoolExecutor, as_completed
from multiprocessing import get_context

from mmsdae.analysis import learning_signal as ls


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('variants', help='JSON file {label: variant}')
    parser.add_argument('--budget', default='test', choices=sorted(ls.BUDGETS))
    parser.add_argument('--seeds', type=int, nargs='+', default=[0])
    parser.add_argument('--device', default='cpu')
    parser.add_argument('--procs', type=int, default=1,
                        help='runs at a time (each in its own process)')
    parser.add_argument('--work-dir', default='work_dirs/learning_sweep')
    parser.add_argument('--out-dir', default='work_dirs/learning_sweep')
    return parser.parse_args(argv)


def one_run(label, spec, budget, seed, device, work_dir):
    """The random encoder and one variant at one seed (its own process)."""
    import torch
    torch.set_num_threads(1)
    from mmengine.logging import MMLogger
    MMLogger.get_instance('mmengine').setLevel(logging.ERROR)
    name = ''.join(c if c.isalnum() else '_' for c in label)
    results = ls.run([], ls.BUDGETS[budget], seed=seed, device=device,
                     work_dir=osp.join(work_dir, f'{name}_s{seed}'),
                     variants={label: spec}, log=lambda *a: None)
    rows = {r['method']: r for r in results['rows']}
    row, margin = rows[label], ls.margins(results)[label]
    return dict(label=label, seed=seed, knn=row['knn_top1'],
                probe=row['probe_top1'], minutes=row['minutes'],
                probe_margin=margin['probe'], knn_margin=margin['knn'],
                random_probe=rows['random encoder']['probe_top1'],
                curve=row['curve'])


def table(runs, labels, seeds):
    lines = ['| variant | ' + ' | '.join(f'probe margin, seed {s}'
                                        for s in seeds) +
             ' | mean | kNN margin (mean) |',
             '|---|' + '---:|' * (len(seeds) + 2)]
    for label in labels:
        got = {r['seed']: r for r in runs if r['label'] == label}
        cells = [f'{got[s]["probe_margin"]:+.1f}' if s in got else '-'
                 for s in seeds]
        if got:
            mean = sum(r['probe_margin'] for r in got.values()) / len(got)
            knn = sum(r['knn_margin'] for r in got.values()) / len(got)
            cells += [f'{mean:+.1f}', f'{knn:+.1f}']
        else:
            cells += ['-', '-']
        lines.append(f'| {label} | ' + ' | '.join(cells) + ' |')
    return '\n'.join(lines)


def main(argv=None):
    args = parse_args(argv)
    variants = ls.load_variants(args.variants)
    os.makedirs(args.out_dir, exist_ok=True)
    out = osp.join(args.out_dir, 'learning_sweep.json')
    runs = []
    jobs = [(label, spec, args.budget, seed, args.device, args.work_dir)
            for seed in args.seeds for label, spec in variants.items()]
    with ProcessPoolExecutor(args.procs,
                             mp_context=get_context('spawn')) as pool:
        futures = {pool.submit(one_run, *job): job for job in jobs}
        for future in as_completed(futures):
            label, _, _, seed = futures[future][:4]
            try:
                run = future.result()
            except Exception as exc:  # keep the other runs
                print(f'[learning sweep] {label} seed {seed} failed: {exc!r}',
                      file=sys.stderr, flush=True)
                continue
            runs.append(run)
            print(f'[learning sweep] {label} seed {seed}: probe '
                  f'{run["probe"]:.1f} % ({run["probe_margin"]:+.1f} over '
                  f'random), kNN {run["knn"]:.1f} %, {run["minutes"]:.1f} min',
                  flush=True)
            with open(out, 'w') as f:
                json.dump(dict(budget=args.budget, device=args.device,
                               variants=variants, runs=runs), f, indent=1)
    print(table(runs, list(variants), args.seeds))


if __name__ == '__main__':
    main()
