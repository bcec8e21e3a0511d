"""Plot training curves from MMEngine's ``vis_data/scalars.json``.

MMEngine's ``LocalVisBackend`` appends one JSON object per line to
``<work_dir>/<timestamp>/vis_data/scalars.json``: the LoggerHook's training
scalars (``loss``, ``lr``, ``cos_sim``, ``teacher_momentum``, ...) with
``step`` = iteration, and whatever hooks add, such as ``knn/top1`` of
``KNNMonitorHook`` (also at ``step`` = iteration). Validation metrics may be
logged with ``step`` = epoch; plot them separately.

Each RUN is a work dir (its latest ``<timestamp>/vis_data/scalars.json``), a
``vis_data`` folder, or a ``scalars.json`` file. The tool prints the keys it
finds, draws one subplot per key against the step with the runs overlaid,
writes a PNG and prints the first and last value of every key and run.
With ``--last KEY ...`` it only prints each run's last value of those keys
(one line per run; the demo scripts end with it).

    python tools/analysis_tools/plot_curves.py work_dirs/demo
    python tools/analysis_tools/plot_curves.py work_dirs/demo \\
        work_dirs/rcmae_demo --labels SdAE RC-MAE --keys loss knn/top1 \\
        --out curves.png
"""
import argparse
import glob
import json
import math
import os.path as osp
import sys
from collections import OrderedDict
from fnmatch import fnmatch
from typing import Dict, List, Optional, Sequence, Tuple

# Keys plotted by default, when present (shell-style patterns).
DEFAULT_PATTERNS = ('loss*', 'lr', '*teacher_momentum', '*cos_sim*',
                    '*knn*/top1')
# Bookkeeping keys written by MMEngine, never plotted by default.
STEP_KEYS = ('step', 'iter', 'epoch')

Series = Dict[str, List[Tuple[float, float]]]


class CurveError(ValueError):
    """A missing file, an unreadable line or an unknown key."""


def find_scalars_file(path: str) -> str:
    """The ``scalars.json`` of a work dir, ``vis_data`` dir or file path.

    A work dir with several ``<timestamp>`` runs (e.g. a resumed run) uses
    the latest one; pass the file itself to choose another.
    """
    if osp.isfile(path):
        return path
    if not osp.isdir(path):
        raise CurveError(f'{path!r} does not exist: give a work dir or a '
                         'vis_data/scalars.json file.')
    for candidate in (osp.join(path, 'scalars.json'),
                      osp.join(path, 'vis_data', 'scalars.json')):
        if osp.isfile(candidate):
            return candidate
    found = sorted(glob.glob(osp.join(path, '*', 'vis_data', 'scalars.json')))
    if not found:
        raise CurveError(
            f'no scalars.json under {path!r} (looked for scalars.json, '
            'vis_data/scalars.json and <timestamp>/vis_data/scalars.json; '
            "is the LocalVisBackend in the config's visualizer?).")
    return found[-1]


def is_number(value) -> bool:
    return (isinstance(value, (int, float)) and not isinstance(value, bool)
            and math.isfinite(value))


def load_scalars(path: str) -> Series:
    """Read one JSON object per line into ``{key: [(step, value), ...]}``.

    The x value is ``step`` (MMEngine writes it on every line), else
    ``iter``, else the line number. Non-numeric values are skipped.
    """
    series: Series = OrderedDict()
    with open(path) as f:
        for number, line in enumerate(f, 1):
            line = line.strip()
            if not line:
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as e:
                raise CurveError(f'{path}:{number} is not JSON ({e}); '
                                 'expected one JSON object per line.')
            if not isinstance(record, dict):
                raise CurveError(f'{path}:{number} is not a JSON object.')
            x = next((record[k] for k in ('step', 'iter')
                      if is_number(record.get(k))), number)
            for key, value in record.items():
                if key not in STEP_KEYS and is_number(value):
                    series.setdefault(key, []).append((x, value))
    if not series:
        raise CurveError(f'{path} holds no numeric scalars.')
    return series


def select_keys(runs: Sequence[Series],
                keys: Optional[Sequence[str]]) -> List[str]:
    """The requested keys (all must exist in some run) or the defaults."""
    available = sorted(set().union(*(run.keys() for run in runs)))
    if keys:
        unknown = [key for key in keys if key not in available]
        if unknown:
            raise CurveError(f'unknown key(s) {unknown}; available keys: '
                             f'{", ".join(available)}')
        return list(keys)
    chosen = [key for pattern in DEFAULT_PATTERNS
              for key in available if fnmatch(key, pattern)]
    chosen = list(OrderedDict.fromkeys(chosen))
    if not chosen:
        raise CurveError('none of the default keys '
                         f'{list(DEFAULT_PATTERNS)} is present; choose some '
                         f'with --keys from: {", ".join(available)}')
    return chosen


def smooth(values: List[float], window: int) -> List[float]:
    """Trailing moving average over ``window`` points."""
    if window <= 1:
        return values
    out, total = [], 0.0
    for i, value in enumerate(values):
        total += value
        if i >= window:
            total -= values[i - window]
        out.append(total / min(i + 1, window))
    return out


def plot(runs: Sequence[Series], labels: Sequence[str], keys: Sequence[str],
         out: str, window: int = 1, title: Optional[str] = None) -> None:
    """One subplot per key, the runs overlaid, saved as ``out``."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    cols = min(len(keys), 3)
    rows = math.ceil(len(keys) / cols)
    fig, axes = plt.subplots(
        rows, cols, figsize=(4.5 * cols, 3.2 * rows), squeeze=False)
    for ax, key in zip(axes.flat, keys):
        for index, (run, label) in enumerate(zip(runs, labels)):
            points = run.get(key)
            if not points:
                continue
            xs, ys = zip(*points)
            marker = 'o' if len(points) <= 30 else None
            # one colour per run in every subplot
            ax.plot(xs, smooth(list(ys), window), label=label,
                    color=f'C{index % 10}', marker=marker, markersize=3)
        ax.set_title(key)
        ax.set_xlabel('iteration (step)')
        ax.grid(alpha=0.3)
        if len(runs) > 1:
            ax.legend(fontsize='small')
    for ax in list(axes.flat)[len(keys):]:
        ax.axis('off')
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    plt.close(fig)


def format_table(runs: Sequence[Series], labels: Sequence[str],
                 keys: Sequence[str]) -> str:
    """First and last value (with their steps) of every key and run."""
    rows = [('run', 'key', 'points', 'first', 'last')]
    for run, label in zip(runs, labels):
        for key in keys:
            points = run.get(key)
            if not points:
                rows.append((label, key, '0', '-', '-'))
                continue
            (x0, y0), (x1, y1) = points[0], points[-1]
            rows.append((label, key, str(len(points)),
                         f'{y0:.6g} @ {x0:g}', f'{y1:.6g} @ {x1:g}'))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ['  '.join(cell.ljust(w) for cell, w in zip(row, widths))
             for row in rows]
    lines.insert(1, '  '.join('-' * w for w in widths))
    return '\n'.join(line.rstrip() for line in lines)


def format_last(runs: Sequence[Series], labels: Sequence[str],
                keys: Sequence[str]) -> str:
    """One line per run: the last logged value of each of ``keys`` the run
    has, in the order the run first logged them."""
    lines = []
    for run, label in zip(runs, labels):
        shown = '  '.join(f'{key}={points[-1][1]:.4g}'
                          for key, points in run.items() if key in keys)
        lines.append(f'  {label}: {shown}')
    return '\n'.join(lines)


def default_label(path: str, scalars_file: str) -> str:
    """The work dir's name (``work_dirs/demo`` -> ``demo``)."""
    if osp.isdir(path):
        return osp.basename(osp.normpath(path))
    parts = osp.normpath(osp.abspath(scalars_file)).split(osp.sep)
    # <work_dir>/<timestamp>/vis_data/scalars.json
    if len(parts) >= 4 and parts[-2] == 'vis_data':
        return parts[-4]
    return osp.splitext(osp.basename(scalars_file))[0]


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Plot MMEngine vis_data/scalars.json curves of one or '
        'more runs.')
    parser.add_argument(
        'runs', nargs='+', metavar='RUN',
        help='work dir, vis_data dir or scalars.json file')
    parser.add_argument(
        '--keys', nargs='+', help='keys to plot (default: those present '
        f'among {" ".join(DEFAULT_PATTERNS)})')
    parser.add_argument(
        '--labels', nargs='+', help='legend label of each run (default: '
        'the work dir names)')
    parser.add_argument('--out', default='curves.png', help='PNG to write')
    parser.add_argument(
        '--smooth', type=int, default=1, metavar='N',
        help='moving average over N points (default: 1, none)')
    parser.add_argument('--title', help='figure title')
    parser.add_argument(
        '--last', nargs='+', metavar='KEY',
        help='only print the last value of these keys for each run (no '
        'plot)')
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        if args.labels and len(args.labels) != len(args.runs):
            raise CurveError(f'{len(args.labels)} --labels for '
                             f'{len(args.runs)} runs: give one per run.')
        if args.smooth < 1:
            raise CurveError(f'--smooth {args.smooth} must be >= 1.')
        files = [find_scalars_file(path) for path in args.runs]
        runs = [load_scalars(path) for path in files]
        labels = args.labels or [
            default_label(path, file) for path, file in zip(args.runs, files)
        ]
        if args.last:
            print(format_last(runs, labels, select_keys(runs, args.last)))
            return 0
        for label, file, run in zip(labels, files, runs):
            print(f'{label}: {file}\n  keys: {", ".join(sorted(run))}')
        keys = select_keys(runs, args.keys)
        plot(runs, labels, keys, args.out, args.smooth, args.title)
    except CurveError as e:
        raise SystemExit(f'error: {e}')
    print(format_table(runs, labels, keys))
    print(f'wrote {args.out}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
