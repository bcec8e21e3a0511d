"""Everything a first GPU run should check, in one call (issue 16).

1. ``pretrain_speed.py`` side by side: MAE, SdAE with every teacher input
   (full, only masked, crop, t = 2, 3, 4), RC-MAE, G2SD generic (ViT-S
   student, ViT-B teacher), Hybrid Distill (ViT-B), ViT-B/16 at 224 px,
   batch 96, bf16 AMP, with model FLOP utilisation against the device's
   dense bf16 peak; then again with ``compile_blocks`` (MAE, SdAE t = 3,
   RC-MAE, G2SD, Hybrid Distill: one teacher input, to bound the compile
   time). Frozen teachers get random-weight files (speed only).
2. ``tools/train.py --amp`` of each pre-training config for about 30
   iterations at 224 px on the embedded procedural images with the config's
   data workers: step time, data time, memory from MMEngine's log.
3. The tiny fine-tuning, linear-probing and G2SD classification-distillation
   configs for an epoch of the tiny ImageNet folder (random initial
   weights). Mask R-CNN and UperNet are left out: they need mmcv's compiled
   CUDA ops, which the lent machine does not have and cannot build in one
   call.
4. The targets, met or missed: SdAE t = 3 / MAE step time and memory,
   teacher time share <= FLOP share, MAE MFU, data time share.

Writes ``OUT_DIR/gpu_check.json`` and ``OUT_DIR/gpu_check.md`` (and the
speed sections' JSON); teacher files, data, work dirs and logs go to
``--scratch`` (default: a new temp folder), so OUT_DIR stays small. Sections
run in order of importance and stop starting once ``--budget-s`` is spent
(what was skipped is recorded). ``--dry-run`` runs the same sections on the
CPU with the tiny demo configs (64 px, batch 2, 2 iterations), as the CI
test does. Use ``tools/benchmark/gpu_check.sh`` (it installs carried wheels
first on a machine without the OpenMMLab packages).
"""
import argparse
import glob
import json
import os
import os.path as osp
import subprocess
import sys
import tempfile
import time

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path.insert(0, ROOT)
sys.path.insert(0, osp.join(ROOT, 'tools', 'benchmark'))

#: H200 SXM dense BF16 tensor-core peak, TFLOP/s (the datasheet's 1,979 is
#: with 2:4 sparsity; same GH100 die and figure as the H100 SXM)
H200_BF16_DENSE_TFLOPS = 989.0
TEACHER_INPUTS = ('full', 'masked', 'crop', 'fold=2', 'fold=3', 'fold=4')
TARGETS = dict(max_time_ratio=1.25, max_mem_ratio=1.10, min_mfu=0.35,
               max_data_share=0.05)

C = 'configs/'
FULL = dict(
    device='cuda',
    pretrain=[
        ('MAE', C + 'rcmae/mae_vit-base-p16_8xb512-coslr-800e_in1k.py'),
        ('SdAE', C + 'sdae/sdae_vit-base-p16_8xb96-coslr-300e_in1k.py'),
        ('RC-MAE', C + 'rcmae/rcmae_vit-base-p16_8xb512-coslr-800e_in1k.py'),
        ('G2SD', C + 'g2sd/g2sd_vit-small-p16_8xb512-coslr-300e_in1k.py'),
        ('Hybrid Distill', C + 'hybrid_distill/hybrid-distill_vit-base-'
         'p16_mae-deit_8xb128-accum2-coslr-300e_in1k.py'),
    ],
    batch=96, warmup=3, iters=10, compile_blocks=True,
    train_iters=30, train_log_interval=10, img_size=224, train_workers=None,
    downstream_imgs=64, budget_s=450.0, in_one_process=False,
    min_left_scale=1.0)
DRY = dict(
    device='cpu',
    pretrain=[
        ('MAE', C + 'rcmae/mae_vit-tiny-p8_1xb32-10e_procedural-64px.py'),
        ('SdAE', C + 'sdae/sdae_vit-tiny-p8_1xb32-10e_procedural-64px.py'),
        ('RC-MAE', C + 'rcmae/rcmae_vit-tiny-p8_1xb32-10e_procedural-64px.py'),
        ('G2SD', C + 'g2sd/g2sd_vit-tiny-p8_1xb32-10e_procedural-64px.py'),
        ('Hybrid Distill', C + 'hybrid_distill/hybrid-distill_vit-tiny-p8_'
         '1xb32-10e_procedural-64px.py'),
    ],
    # dynamo without code generation: checks the path, not the speed
    batch=2, warmup=1, iters=2, compile_blocks='eager',
    train_iters=2, train_log_interval=1, img_size=64, train_workers=0,
    # the tools/train.py runs in the driver's process (no import each)
    downstream_imgs=64, budget_s=600.0, in_one_process=True,
    min_left_scale=0.0)
DOWNSTREAM = [
    ('fine-tuning', C + 'sdae/benchmarks/vit-tiny-p8_1xb16-coslr-2e_tiny-'
     'in1k-64px.py'),
    ('linear probing', C + 'sdae/benchmarks/vit-tiny-p8_1xb16-linear-'
     'coslr-10e_tiny-in1k-64px.py'),
    ('G2SD classification distillation', C + 'g2sd/specific/vit-tiny-p8-'
     'distilled_1xb16-coslr-2e_tiny-in1k-64px.py'),
]
#: a section starts only with this much of the budget left (seconds, GPU;
#: the speed sections cannot be stopped half-way): compiling ViT-B blocks
#: for five models takes minutes
MIN_LEFT_S = dict(speed=1, train=1, downstream=1, speed_compiled=150)
NOT_RUN = ('Mask R-CNN and UperNet (tiny COCO / ADE20K configs): need '
           "mmcv's compiled CUDA ops (RoIAlign, NMS, ...), which the lent "
           'GPU machine lacks and cannot build within one call.')


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('out_dir', help='folder for gpu_check.json / .md')
    parser.add_argument('--dry-run', action='store_true',
                        help='CPU, tiny demo configs, batch 2, 2 iterations')
    parser.add_argument('--peak-tflops', type=float,
                        default=H200_BF16_DENSE_TFLOPS,
                        help='dense bf16 peak of the device (default: H200 '
                        'SXM, %(default)s)')
    parser.add_argument('--budget-s', type=float,
                        help='start no section after this many seconds '
                        '(default 450 on the GPU, 600 dry)')
    parser.add_argument('--python', default=sys.executable,
                        help='interpreter for the tools/train.py runs')
    parser.add_argument('--scratch',
                        help='folder for teacher files, data and work dirs '
                        '(default: a new folder under the temp dir)')
    return parser.parse_args(argv)


class Clock:

    def __init__(self, budget_s):
        self.start = time.perf_counter()
        self.budget_s = budget_s

    def elapsed(self):
        return time.perf_counter() - self.start

    def left(self):
        return self.budget_s - self.elapsed()


def _pretrain_speed():
    import pretrain_speed
    return pretrain_speed


def run_speed(plan, out_dir, scratch, peak_tflops, compile_blocks):
    """One pretrain_speed.py run over the plan's pre-training configs."""
    import torch
    name = 'speed_compiled' if compile_blocks else 'speed'
    configs = [config for _, config in plan['pretrain']]
    argv = configs + [
        '--device', plan['device'], '--amp',
        '--batch-size', str(plan['batch']), '--warmup', str(plan['warmup']),
        '--iters', str(plan['iters']),
        '--teacher-inputs', *(('fold=3', ) if compile_blocks else
                              TEACHER_INPUTS),
        '--random-teachers', osp.join(scratch, 'teachers'),
        '--peak-tflops', str(peak_tflops),
        '--max-time-ratio', str(TARGETS['max_time_ratio']),
        '--max-mem-ratio', str(TARGETS['max_mem_ratio']),
        '--min-mfu', str(TARGETS['min_mfu']),
        '--json', osp.join(out_dir, f'{name}.json')]
    if compile_blocks:
        argv.append('--compile-blocks')
        if isinstance(compile_blocks, str):  # the dry run's cheap backend
            argv += ['--compile-backend', compile_blocks]
    _pretrain_speed().main(argv)
    with open(osp.join(out_dir, f'{name}.json')) as f:
        data = json.load(f)
    if plan['device'] == 'cuda':
        torch.cuda.empty_cache()
    return data


def _scalars(work_dir):
    found = sorted(glob.glob(osp.join(work_dir, '*', 'vis_data',
                                      'scalars.json')))
    if not found:
        return []
    with open(found[-1]) as f:
        return [json.loads(line) for line in f if line.strip()]


def _train_argv(config, work_dir, options):
    """The ``tools/train.py`` arguments of one run."""
    return [config, '--work-dir', work_dir, '--amp', '--cfg-options',
            *[f'{k}={v}' for k, v in options.items()]]


def _subprocess(cmd, log_path, timeout):
    start = time.perf_counter()
    try:
        proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True,
                              timeout=max(timeout, 1))
        rc, log = proc.returncode, proc.stdout + proc.stderr
    except subprocess.TimeoutExpired as err:
        rc, log = 'timeout', err.stdout or ''
        log = log.decode(errors='replace') if isinstance(log, bytes) else log
    with open(log_path, 'w') as f:
        f.write(' '.join(cmd) + '\n' + log)
    return rc, log, round(time.perf_counter() - start, 2)


def run_in_this_process(argvs):
    """Run ``tools/train.py`` with each argument list one after another in
    this process (the dry run: no new import of the stack per run).
    Returns ``rc`` and ``wall_s`` per run; a failure does not stop the
    others."""
    import importlib.util
    import traceback
    spec = importlib.util.spec_from_file_location(
        'mmsdae_train_tool', osp.join(ROOT, 'tools', 'train.py'))
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    saved, results = sys.argv, []
    for argv in argvs:
        sys.argv = ['train.py', *argv]
        start = time.perf_counter()
        try:
            tool.main()
            rc = 0
        except SystemExit as err:
            rc = err.code if isinstance(err.code, int) else 1
            print(err, file=sys.stderr)
        except Exception:  # one failed run must not hide the others
            rc = 1
            traceback.print_exc()
        finally:
            sys.argv = saved
        results.append(dict(rc=rc, wall_s=round(time.perf_counter() - start,
                                                2)))
    return results


def _run_jobs(jobs, python, clock, in_one_process):
    """Run ``(row, config, work_dir, options)`` jobs of ``tools/train.py``:
    each in its own process (the GPU run: clean memory, honest start-up),
    or in this one (``in_one_process``, the dry run). A job that would
    start after the budget is spent is recorded as skipped. Returns the
    rows with ``rc``, ``wall_s`` (and the log's tail on failure)."""
    train = osp.join(ROOT, 'tools', 'train.py')
    rows = [job[0] for job in jobs]
    for row, config, work_dir, options in jobs:
        os.makedirs(osp.dirname(work_dir), exist_ok=True)
        row['command'] = ' '.join(
            ['python', 'tools/train.py', *_train_argv(config, work_dir,
                                                       options)])
    if in_one_process:
        results = run_in_this_process(
            [_train_argv(c, w, o) for _, c, w, o in jobs])
        for row, result in zip(rows, results):
            row.update(result)
        return rows
    for row, config, work_dir, options in jobs:
        if clock.left() <= 0:
            row['skipped'] = 'time budget spent'
            continue
        rc, log, wall = _subprocess(
            [python, train, *_train_argv(config, work_dir, options)],
            work_dir + '.log', clock.left())
        row.update(rc=rc, wall_s=wall)
        if rc != 0:
            row['log_tail'] = log[-2000:]
    return rows


def _knn_monitor_off(config):
    """Options that keep a config's kNN monitor (the CPU demos') from
    evaluating: it is not part of a training step."""
    from mmengine.config import Config
    hooks = Config.fromfile(osp.join(ROOT, config)).get('custom_hooks') or []
    return {f'custom_hooks.{i}.{flag}': False
            for i, hook in enumerate(hooks)
            if str(hook.get('type', '')).endswith('KNNMonitorHook')
            for flag in ('at_start', 'at_end')}


def run_train(plan, scratch, python, clock, teacher_options):
    """``tools/train.py --amp`` of each pre-training config."""
    jobs = []
    n = plan['batch'] * plan['train_iters']
    for label, config in plan['pretrain']:
        options = {
            'train_dataloader.dataset.data_root': "''",
            'train_dataloader.dataset.data_prefix': "''",
            'train_dataloader.dataset.ann_file': "''",
            'train_dataloader.dataset.num_images': n,
            'train_dataloader.dataset.image_size': plan['img_size'],
            'train_dataloader.batch_size': plan['batch'],
            'train_cfg.max_epochs': 1,
            'default_hooks.logger.interval': plan['train_log_interval'],
            'default_hooks.checkpoint': None,
            'log_level': 'WARNING' if plan['device'] == 'cpu' else 'INFO',
        }
        if plan['train_workers'] is not None:
            options['train_dataloader.num_workers'] = plan['train_workers']
            options['train_dataloader.persistent_workers'] = False
        for key, value in teacher_options.get(config, {}).items():
            options[f'model.{key}.checkpoint'] = value['checkpoint']
        options.update(_knn_monitor_off(config))
        row = dict(label=label, config=config, iters=plan['train_iters'],
                   batch_size=plan['batch'])
        jobs.append((row, config, osp.join(scratch, 'train',
                                           label.replace(' ', '_')), options))
    rows = _run_jobs(jobs, python, clock, plan['in_one_process'])
    for row, (_, _, work_dir, _) in zip(rows, jobs):
        records = [r for r in _scalars(work_dir) if 'time' in r]
        # the first logged window holds the start-up (workers, allocator,
        # autotuning): left out when there is a later one
        timed = records[1:] or records
        if timed:
            step = sum(r['time'] for r in timed) / len(timed)
            data = sum(r.get('data_time', 0.0) for r in timed) / len(timed)
            row.update(step_time_s=step, data_time_s=data,
                       data_share=data / step if step else None,
                       memory_mb=max((r.get('memory') for r in records
                                      if r.get('memory') is not None),
                                     default=None),
                       logged_iters=[r.get('iter', r.get('step'))
                                     for r in records])
    return rows


def run_downstream(plan, scratch, python, clock):
    """The tiny classification configs for one epoch, random init."""
    from mmengine.config import Config

    from mmsdae.analysis import benchmark as bench
    from mmsdae.datasets.tiny_downstream import make_tiny_imagenet
    imagenet = osp.join(scratch, 'data', 'imagenet')
    make_tiny_imagenet(imagenet, image_size=plan['downstream_imgs'])
    jobs = []
    for label, config in DOWNSTREAM:
        options = {
            'model.backbone.init_cfg': None,
            'train_dataloader.dataset.data_root': imagenet,
            'val_dataloader.dataset.data_root': imagenet,
            'test_dataloader.dataset.data_root': imagenet,
            'train_cfg.max_epochs': 1,
            'train_cfg.val_interval': 1,
            'default_hooks.checkpoint': None,
            'log_level': 'WARNING',
        }
        teachers = bench.write_random_teachers(
            Config.fromfile(osp.join(ROOT, config)),
            osp.join(scratch, 'teachers'))
        for key, value in teachers.items():
            options[f'model.{key}.checkpoint'] = value['checkpoint']
        jobs.append((dict(label=label, config=config), config,
                     osp.join(scratch, 'downstream', label.replace(' ', '_')),
                     options))
    rows = _run_jobs(jobs, python, clock, plan['in_one_process'])
    for row, (_, _, work_dir, _) in zip(rows, jobs):
        metrics = {k: v for r in _scalars(work_dir) for k, v in r.items()
                   if k.startswith('accuracy/')}
        if metrics:
            row['metrics'] = metrics
    return rows


def evaluate_targets(report):
    """Every target of issue 16 the report allows checking, one dict each:
    the speed targets from pretrain_speed.py's own check, plus data time."""
    targets = []
    for section in ('speed', 'speed_compiled'):
        data = report.get(section)
        if isinstance(data, dict):
            for t in data.get('targets', []):
                targets.append(dict(section=section, **t))
    train = report.get('train')
    for row in train if isinstance(train, list) else []:
        share = row.get('data_share')
        if share is not None:
            targets.append(dict(
                section='train',
                target=f"{row['label']}: data time < "
                f"{100 * TARGETS['max_data_share']:.0f} % of step time",
                met=share < TARGETS['max_data_share'],
                detail=f"{100 * share:.1f} % ({row['data_time_s']:.4f} s of "
                f"{row['step_time_s']:.4f} s)"))
    return targets


def _f(value, fmt='{:.4f}', scale=1.0):
    return '-' if value is None else fmt.format(value * scale)


def markdown(report):
    env = report['environment']
    lines = [f"# gpu_check ({'dry run, CPU' if report['dry_run'] else 'GPU'})",
             '',
             f"Device: {env['device_name']}; torch {env['torch']}; "
             f"{env['cpu_count']} CPU cores; AMP {env['amp_dtype']}; "
             f"peak {env['peak_tflops']} TFLOP/s; total "
             f"{report['wall_s']:.0f} s.", '']
    for section, title in (('speed', 'Pre-training step, side by side'),
                           ('speed_compiled',
                            'Same with compiled ViT blocks')):
        data = report.get(section)
        lines.append(f'## {title}')
        lines.append('')
        if not isinstance(data, dict):
            lines += [f'Not run: {data}', '']
            continue
        lines.append('| row | step (ms) | img/s | peak mem (MB) | GFLOP/img '
                     '(teacher) | teacher share: time / FLOPs | MFU | '
                     'time x MAE | mem x MAE |')
        lines.append('|---|---|---|---|---|---|---|---|---|')
        for r in data['results']:
            share = '-' if r['teacher_time_share'] is None else (
                f"{100 * r['teacher_time_share']:.1f} % / "
                f"{100 * r['teacher_flops_share']:.1f} %")
            lines.append(
                f"| {r['label']} | {_f(r['step_time_s'], '{:.1f}', 1e3)} | "
                f"{r['images_per_s']:.1f} | {r['peak_mem_mb']:.0f} | "
                f"{r['flops_per_image'] / 1e9:.2f} "
                f"({r['teacher_flops_per_image'] / 1e9:.2f}) | {share} | "
                f"{_f(r.get('mfu'), '{:.1f} %', 100)} | "
                f"{_f(r['step_time_ratio'], '{:.2f}')} | "
                f"{_f(r['peak_mem_ratio'], '{:.2f}')} |")
        lines.append('')
    lines += ['## tools/train.py --amp, pre-training configs', '',
              '| config | rc | iters x batch | step (s) | data (s) | data % '
              '| memory (MB) | wall (s) |',
              '|---|---|---|---|---|---|---|---|']
    train, downstream = report.get('train'), report.get('downstream')
    if isinstance(train, str):  # the section was skipped or failed
        lines.append(f'| {train} | | | | | | | |')
    for r in train if isinstance(train, list) else []:
        if 'skipped' in r:
            lines.append(f"| {r['label']} | skipped: {r['skipped']} |"
                         ' | | | | | |')
            continue
        lines.append(
            f"| {r['label']} | {r['rc']} | {r['iters']} x {r['batch_size']} "
            f"| {_f(r.get('step_time_s'))} | {_f(r.get('data_time_s'))} | "
            f"{_f(r.get('data_share'), '{:.1f}', 100)} | "
            f"{_f(r.get('memory_mb'), '{:.0f}')} | {r['wall_s']} |")
    lines += ['', '## Tiny downstream configs (tools/train.py --amp)', '',
              '| config | rc | wall (s) | metrics |', '|---|---|---|---|']
    if isinstance(downstream, str):
        lines.append(f'| {downstream} | | | |')
    for r in downstream if isinstance(downstream, list) else []:
        if 'skipped' in r:
            lines.append(f"| {r['label']} | skipped: {r['skipped']} | | |")
            continue
        metrics = ', '.join(f'{k} {v:.2f}' for k, v in
                            (r.get('metrics') or {}).items())
        lines.append(f"| {r['label']} | {r['rc']} | {r['wall_s']} | "
                     f'{metrics or "-"} |')
    lines += ['', f"Not run: {report['not_run']}", '', '## Targets', '']
    for t in report['targets']:
        lines.append(f"- [{'met' if t['met'] else 'MISSED'}] "
                     f"({t['section']}) {t['target']}: {t['detail']}")
    if report['errors']:
        lines += ['', '## Errors', '']
        lines += [f'- {name}: {err}' for name, err in report['errors']]
    return '\n'.join(lines) + '\n'


def main(argv=None):
    args = parse_args(argv)
    plan = DRY if args.dry_run else FULL
    out_dir = osp.abspath(args.out_dir)
    os.makedirs(out_dir, exist_ok=True)
    # teacher files (~1 GB for ViT-B), data and work dirs stay out of
    # OUT_DIR, which holds only the small results
    scratch = osp.abspath(args.scratch) if args.scratch else \
        tempfile.mkdtemp(prefix='gpu_check_')
    os.chdir(ROOT)  # the configs' relative paths
    import torch

    from mmsdae.analysis import benchmark as bench
    if plan['device'] == 'cuda' and not torch.cuda.is_available():
        raise SystemExit('error: gpu_check needs a CUDA GPU (torch '
                         f'{torch.__version__} sees none); use --dry-run '
                         'on a CPU.')
    clock = Clock(args.budget_s or plan['budget_s'])
    report = dict(
        dry_run=args.dry_run,
        environment=dict(
            torch=torch.__version__, device=plan['device'],
            device_name=(torch.cuda.get_device_name()
                         if plan['device'] == 'cuda' else 'cpu'),
            cpu_count=os.cpu_count(), amp_dtype=bench.resolve_amp_dtype(
                None), peak_tflops=args.peak_tflops, python=sys.version),
        targets_set=TARGETS, not_run=NOT_RUN, errors=[], scratch=scratch)
    teacher_dir = osp.join(scratch, 'teachers')
    teacher_options = {}
    sections = [
        ('speed', lambda: run_speed(plan, out_dir, scratch, args.peak_tflops,
                                    False)),
        ('train', lambda: run_train(plan, scratch, args.python, clock,
                                    teacher_options)),
        ('downstream', lambda: run_downstream(plan, scratch, args.python,
                                              clock)),
        ('speed_compiled', lambda: run_speed(
            plan, out_dir, scratch, args.peak_tflops,
            plan['compile_blocks'])),
    ]
    for name, run in sections:
        if name == 'train':
            for _, config in plan['pretrain']:
                teacher_options[config] = bench.write_random_teachers(
                    config, teacher_dir)
        if clock.left() < MIN_LEFT_S.get(name, 0) * plan['min_left_scale']:
            report[name] = (f'skipped: {clock.left():.0f} s of the budget '
                            'left')
            continue
        start = time.perf_counter()
        try:
            report[name] = run()
        except (Exception, SystemExit) as err:  # record, go on
            report[name] = f'failed: {type(err).__name__}: {err}'
            report['errors'].append((name, f'{type(err).__name__}: {err}'))
        report.setdefault('section_wall_s', {})[name] = round(
            time.perf_counter() - start, 1)
        print(f'[gpu_check] {name} done after {clock.elapsed():.0f} s',
              flush=True)
        # after every section, so a run killed later keeps what it measured
        write_report(report, out_dir, clock)
    print(write_report(report, out_dir, clock))
    return report


def write_report(report, out_dir, clock):
    report['targets'] = evaluate_targets(report)
    report['wall_s'] = clock.elapsed()
    with open(osp.join(out_dir, 'gpu_check.json'), 'w') as f:
        json.dump(report, f, indent=2, default=str)
    table = markdown(report)
    with open(osp.join(out_dir, 'gpu_check.md'), 'w') as f:
        f.write(table)
    return table


if __name__ == '__main__':
    main()
