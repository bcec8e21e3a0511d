# Copyright (c) OpenMMLab. All rights reserved.
"""Kill a training job at random moments, resume it, compare the weights.

Trains a shortened SdAE demo config (DataLoader workers, iteration-based
checkpoints, so kills in the middle of an epoch resume there) once without
interruption, then again while killing it with SIGKILL (the whole process
group: trainer and its workers) N times, resuming each time with
``tools/train.py --resume``. Three kinds of kill, chosen at random:

* ``step``: from outside, after a random delay (mostly during steps);
* ``checkpoint``: in the middle of writing a checkpoint file (half of the
  bytes written and synced);
* ``teacher``: in the middle of the epoch-end EMA teacher update (half of
  the teacher's tensors updated).

After every kill, every checkpoint in the work directory (and the one
``last_checkpoint`` names) must load. When a run finishes, its final
weights (the state dict, teachers included) must be bit-identical to the
uninterrupted run's; the next kills go to a fresh run. With ``--procs 2``
the runs use ``tools/dist_train.sh`` (gloo on CPU) and one rank is killed:
the job must stop within ``--stop-timeout`` seconds, not hang.

Example (prints "N of N kills: bit-identical final weights, no unreadable
checkpoint" when everything held)::

    python tools/fault_injection/kill_resume.py --kills 20
    python tools/fault_injection/kill_resume.py --kills 5 --procs 2
"""
import argparse
import glob
import os
import os.path as osp
import random
import runpy
import signal
import socket
import subprocess
import sys
import tempfile
import time

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TRAIN = osp.join(REPO, 'tools', 'train.py')
DIST_TRAIN = osp.join(REPO, 'tools', 'dist_train.sh')
DEMO = osp.join(REPO, 'configs', 'sdae',
                'sdae_vit-tiny-p8_1xb32-10e_procedural-64px.py')
FAULT_ENV = 'MMSDAE_FAULT'  # "kind:k": die at the k-th occurrence
KINDS = ('step', 'checkpoint', 'teacher')


# ----------------------------------------------------------------- child
def _die() -> None:
    """SIGKILL this process group (the trainer and its workers)."""
    sys.stdout.flush()
    os.killpg(os.getpgid(0), signal.SIGKILL)


def install_fault(spec: str) -> None:
    """Patch the trainer so that it dies in the middle of the k-th
    checkpoint write or teacher update of this process."""
    kind, k = spec.split(':')
    count = [0]

    def due() -> bool:
        count[0] += 1
        return count[0] == int(k)

    if kind == 'checkpoint':
        import mmsdae.utils.checkpoint.files as atomic
        original = atomic.atomic_write

        def faulty_write(dst, write):
            if not str(dst).endswith('.pth') or not due():
                return original(dst, write)

            def half(f):
                import io
                buffer = io.BytesIO()
                write(buffer)
                data = buffer.getvalue()
                f.write(data[:len(data) // 2])
                f.flush()
                os.fsync(f.fileno())
                _die()

            return original(dst, half)

        atomic.atomic_write = faulty_write
    elif kind == 'teacher':
        import torch

        from mmsdae.models.algorithms.ema_teacher import \
            EMATeacherSelfSupervisor
        original = EMATeacherSelfSupervisor.momentum_update

        def faulty_update(self, momentum):
            if not due():
                return original(self, momentum)
            with torch.no_grad():
                teacher, student = self.teacher_pairs()[0]
                items = list(teacher.state_dict().items())
                student_state = student.state_dict()
                for name, value in items[:len(items) // 2]:
                    if value.dtype.is_floating_point:
                        value.lerp_(student_state[name], 1.0 - momentum)
            _die()

        EMATeacherSelfSupervisor.momentum_update = faulty_update
    else:
        raise ValueError(f'{FAULT_ENV}={spec!r}: unknown fault {kind!r}')


def child_main(argv) -> None:
    """``tools/train.py argv`` with the fault of ``$MMSDAE_FAULT``."""
    sys.path.insert(0, REPO)
    spec = os.environ.get(FAULT_ENV)
    if spec:
        install_fault(spec)
    sys.argv = [TRAIN] + list(argv)
    runpy.run_path(TRAIN, run_name='__main__')


# ---------------------------------------------------------------- parent
def write_config(path: str, args) -> None:
    from mmengine.config import Config
    cfg = Config.fromfile(args.config)
    cfg.merge_from_dict({
        'train_dataloader.dataset.num_images': args.images,
        'train_dataloader.batch_size': args.batch,
        'train_dataloader.num_workers': args.workers,
        'train_dataloader.persistent_workers': args.workers > 0,
        'train_cfg.max_epochs': args.epochs,
        'default_hooks.checkpoint.by_epoch': False,
        'default_hooks.checkpoint.interval': args.ckpt_interval,
        'default_hooks.checkpoint.max_keep_ckpts': 2,
        'default_hooks.logger.interval': 1,
        # the EMA hook only (no kNN monitor: the run stays short)
        'custom_hooks': [h for h in cfg.custom_hooks
                         if 'EMA' in str(h['type'])],
    })
    cfg.dump(path)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


def command(args, cfg_path, work_dir, resume):
    extra = ['--work-dir', work_dir] + (['--resume'] if resume else [])
    if args.procs == 1:
        return [sys.executable, osp.abspath(__file__), '--child', cfg_path
                ] + extra
    return ['bash', DIST_TRAIN, cfg_path, str(args.procs)] + extra


def environ(args):
    env = dict(os.environ, OMP_NUM_THREADS='1', MKL_NUM_THREADS='1',
               PYTHON=sys.executable, PORT=str(free_port()))
    env.pop(FAULT_ENV, None)
    return env


def rank_pids(root_pid: int):
    """The trainer processes (one per rank): the children of torchrun
    (``dist_train.sh`` execs it, so it is the launched process)."""
    import psutil
    found = []
    for proc in psutil.Process(root_pid).children():
        try:
            if any(c.endswith('train.py') for c in proc.cmdline()):
                found.append(proc.pid)
        except psutil.Error:
            continue
    return found


def launch(args, cfg_path, work_dir, resume, log, fault=None, delay=None):
    """Run once; return ``(killed, seconds, note)``. ``fault``: an
    in-process fault spec; ``delay``: seconds before an outside SIGKILL."""
    env = environ(args)
    if fault:
        env[FAULT_ENV] = fault
    start = time.time()
    with open(log, 'a') as out:
        proc = subprocess.Popen(command(args, cfg_path, work_dir, resume),
                                cwd=REPO, env=env, stdout=out,
                                stderr=subprocess.STDOUT,
                                start_new_session=True)
        note = ''
        try:
            if delay is not None:
                try:
                    proc.wait(timeout=delay)
                except subprocess.TimeoutExpired:
                    if args.procs == 1:
                        os.killpg(proc.pid, signal.SIGKILL)
                        note = 'killed from outside'
                    else:  # kill one rank; the job must stop by itself
                        ranks = rank_pids(proc.pid)
                        if ranks:
                            victim = random.choice(ranks)
                            os.kill(victim, signal.SIGKILL)
                            note = 'killed one rank'
                        t_kill = time.time()
                        try:
                            proc.wait(timeout=args.stop_timeout)
                        except subprocess.TimeoutExpired:
                            os.killpg(proc.pid, signal.SIGKILL)
                            raise SystemExit(
                                f'HANG: the job did not stop within '
                                f'{args.stop_timeout} s after a rank was '
                                f'killed; see {log}')
                        note += f', job stopped {time.time() - t_kill:.1f} s '\
                            'later'
            rc = proc.wait(timeout=args.run_timeout)
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
            else:  # stray workers of a killed group
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
    killed = rc != 0
    if killed and not note:
        note = f'died (exit {rc}) at the fault'
    return killed, time.time() - start, note, rc


def check_checkpoints(work_dir: str):
    """Every ``*.pth`` loads, and ``last_checkpoint`` names one that does;
    returns the number of checkpoints and of half-written temporary files
    (hidden ``.*.tmp``, which no checkpoint pattern matches)."""
    import torch
    paths = sorted(glob.glob(osp.join(work_dir, '*.pth')))
    for path in paths:
        try:
            torch.load(path, map_location='cpu', weights_only=False)
        except Exception as exc:
            raise SystemExit(f'UNREADABLE checkpoint {path}: {exc}')
    last = osp.join(work_dir, 'last_checkpoint')
    if osp.exists(last):
        with open(last) as f:
            target = f.read().strip()
        if target not in paths and osp.abspath(target) not in paths:
            raise SystemExit(f'last_checkpoint names {target!r}, which is '
                             f'not a checkpoint in {work_dir}')
    return len(paths), len(glob.glob(osp.join(work_dir, '.*.tmp')))


def final_state(work_dir: str, iters: int):
    import torch
    path = osp.join(work_dir, f'iter_{iters}.pth')
    if not osp.exists(path):
        raise SystemExit(f'no final checkpoint {path}')
    return torch.load(path, map_location='cpu',
                      weights_only=False)['state_dict']


def max_difference(a, b) -> float:
    import torch
    if a.keys() != b.keys():
        return float('inf')
    return max((x.double() - b[k].double()).abs().max().item()
               if x.is_floating_point() else float(not torch.equal(x, b[k]))
               for k, x in a.items())


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--kills', type=int, default=20)
    parser.add_argument('--procs', type=int, default=1, choices=(1, 2))
    parser.add_argument('--config', default=DEMO)
    parser.add_argument('--epochs', type=int, default=3)
    parser.add_argument('--images', type=int, default=64)
    parser.add_argument('--batch', type=int, default=16)
    parser.add_argument('--workers', type=int, default=2)
    parser.add_argument('--ckpt-interval', type=int, default=2)
    parser.add_argument('--seed', type=int, default=0,
                        help='seed of the kill schedule')
    parser.add_argument('--work-root', help='default: a temporary folder')
    parser.add_argument('--stop-timeout', type=float, default=120)
    parser.add_argument('--run-timeout', type=float, default=900)
    parser.add_argument('--max-attempts', type=int, default=0,
                        help='give up after this many launches (0: 4 N + 4)')
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    rng = random.Random(args.seed)
    random.seed(args.seed)
    root = args.work_root or tempfile.mkdtemp(prefix='kill_resume_')
    os.makedirs(root, exist_ok=True)
    cfg_path = osp.join(root, 'kill_resume_cfg.py')
    write_config(cfg_path, args)
    per_rank = args.images // args.procs
    iters = args.epochs * -(-per_rank // args.batch)
    log = osp.join(root, 'runs.log')
    print(f'work root {root}; {args.procs} process(es) x {args.workers} '
          f'workers, {iters} iterations, checkpoint every '
          f'{args.ckpt_interval}', flush=True)

    killed, t_ref, _, rc = launch(args, cfg_path, osp.join(root, 'ref'),
                                  False, log)
    if killed:
        raise SystemExit(f'the uninterrupted run failed (exit {rc}); see '
                         f'{log}')
    reference = final_state(osp.join(root, 'ref'), iters)
    print(f'uninterrupted run: {t_ref:.1f} s', flush=True)

    kills = trials = launches = 0
    kinds = dict.fromkeys(KINDS, 0)
    max_launches = args.max_attempts or 4 * args.kills + 4
    work_dir, resume = None, False
    while kills < args.kills or work_dir is not None:
        if launches >= max_launches:
            raise SystemExit(f'{launches} launches without reaching '
                             f'{args.kills} kills')
        if work_dir is None:
            trials += 1
            work_dir, resume = osp.join(root, f'trial_{trials}'), False
        fault = delay = None
        kind = 'none'
        if kills < args.kills:
            kind = 'step' if args.procs > 1 else rng.choice(KINDS)
            if kind == 'step':
                delay = rng.uniform(0.3, 1.0) * t_ref
            elif kind == 'checkpoint':
                writes = iters // args.ckpt_interval
                fault = f'checkpoint:{rng.randint(1, writes)}'
            else:
                fault = f'teacher:{rng.randint(1, args.epochs)}'
        launches += 1
        was_killed, seconds, note, rc = launch(args, cfg_path, work_dir,
                                               resume, log, fault, delay)
        ckpts, partial = check_checkpoints(work_dir)
        if was_killed:
            if kind == 'none':
                raise SystemExit(f'a run without a fault failed (exit {rc});'
                                 f' see {log}')
            kills += 1
            kinds[kind] += 1
            print(f'kill {kills}: {kind} ({fault or f"{delay:.1f} s"}), '
                  f'{note}; {ckpts} readable checkpoint(s), {partial} '
                  'half-written temporary file(s) left', flush=True)
            resume = True
            continue
        diff = max_difference(final_state(work_dir, iters), reference)
        print(f'trial {trials} finished ({seconds:.1f} s): max |final - '
              f'uninterrupted| = {diff:g}', flush=True)
        if diff != 0:
            raise SystemExit(f'trial {trials}: the final weights differ '
                             f'from the uninterrupted run by {diff:g}')
        work_dir = None
    print(f'{kills} of {args.kills} kills ({kinds["step"]} during steps, '
          f'{kinds["checkpoint"]} during checkpoint writes, '
          f'{kinds["teacher"]} during the teacher update; {trials} runs, '
          f'{args.procs} process(es)): bit-identical final weights, no '
          'unreadable checkpoint')
    return 0


if __name__ == '__main__':
    if len(sys.argv) > 1 and sys.argv[1] == '--child':
        child_main(sys.argv[2:])
    else:
        sys.exit(main())
