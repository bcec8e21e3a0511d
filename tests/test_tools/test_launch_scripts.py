"""tools/dist_*.sh and tools/slurm_*.sh: usage messages, and the command
lines they build (a stand-in ``srun`` / ``python`` prints its arguments,
so nothing is trained here; tests/test_engine/test_distributed.py runs them
for real)."""
import os
import os.path as osp
import stat
import subprocess

import pytest

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIG = osp.join(REPO, 'configs', 'sdae',
                  'sdae_vit-tiny-p8_1xb32-10e_procedural-64px.py')
SCRIPTS = {
    'dist_train.sh': ['CONFIG', 'NUM_PROCS'],
    'dist_test.sh': ['CONFIG', 'CHECKPOINT', 'NUM_PROCS'],
    'slurm_train.sh': ['PARTITION', 'JOB_NAME', 'CONFIG', 'WORK_DIR'],
    'slurm_test.sh': ['PARTITION', 'JOB_NAME', 'CONFIG', 'CHECKPOINT'],
}
ECHO = '#!/bin/sh\necho "ENV MASTER_PORT=${MASTER_PORT:-}"\n' \
       'for a in "$@"; do echo "[$a]"; done\n'


def run(script, *args, **env):
    return subprocess.run(
        ['bash', osp.join(REPO, 'tools', script), *args],
        capture_output=True, text=True, timeout=60,
        env={**os.environ, **env})


@pytest.fixture
def echo_bin(tmp_path):
    """A folder with ``srun`` and ``python`` that print their arguments."""
    for name in ('srun', 'python'):
        path = tmp_path / name
        path.write_text(ECHO)
        path.chmod(path.stat().st_mode | stat.S_IEXEC)
    return tmp_path


def printed_args(proc):
    assert proc.returncode == 0, proc.stderr
    return [line[1:-1] for line in proc.stdout.splitlines()
            if line.startswith('[')]


@pytest.mark.parametrize('script', sorted(SCRIPTS))
def test_usage_when_arguments_are_missing(script):
    proc = run(script)
    assert proc.returncode == 2
    assert 'Usage:' in proc.stderr
    assert ' '.join(SCRIPTS[script]) in proc.stderr
    assert 'required' in proc.stderr


@pytest.mark.parametrize('script', sorted(SCRIPTS))
def test_missing_config_is_named(script):
    args = dict(CONFIG='nope.py', CHECKPOINT=CONFIG, NUM_PROCS='2',
                PARTITION='p', JOB_NAME='j', WORK_DIR='w')
    proc = run(script, *[args[a] for a in SCRIPTS[script]])
    assert proc.returncode == 2
    assert 'config file not found: nope.py' in proc.stderr


def test_bad_process_count():
    proc = run('dist_train.sh', CONFIG, 'two')
    assert proc.returncode == 2
    assert "NUM_PROCS must be a positive integer" in proc.stderr
    proc = run('slurm_train.sh', 'p', 'j', CONFIG, 'w', GPUS='0')
    assert proc.returncode == 2 and 'GPUS' in proc.stderr


def test_dist_train_passes_arguments_to_torchrun(echo_bin):
    proc = run('dist_train.sh', CONFIG, '2', '--resume', '--cfg-options',
               'a=1', 'b=[1, 2]', PYTHON=str(echo_bin / 'python'),
               PORT='29777')
    args = printed_args(proc)
    assert args[:2] == ['-m', 'torch.distributed.run']
    assert '--nproc_per_node=2' in args and '--master_port=29777' in args
    tail = args[args.index(osp.join(REPO, 'tools', 'train.py')):]
    assert tail[1:] == [CONFIG, '--launcher', 'pytorch', '--resume',
                        '--cfg-options', 'a=1', 'b=[1, 2]']


def test_dist_test_passes_arguments_to_torchrun(echo_bin):
    proc = run('dist_test.sh', CONFIG, CONFIG, '3', '--out', 'x y.pkl',
               PYTHON=str(echo_bin / 'python'))
    args = printed_args(proc)
    assert '--nproc_per_node=3' in args
    tail = args[args.index(osp.join(REPO, 'tools', 'test.py')):]
    assert tail[1:] == [CONFIG, CONFIG, '--launcher', 'pytorch', '--out',
                        'x y.pkl']


def test_slurm_train_builds_the_srun_command(echo_bin):
    proc = run('slurm_train.sh', 'gpu', 'sdae', CONFIG, 'work dir',
               '--resume', '--cfg-options', 'a=1',
               PATH=f'{echo_bin}:{os.environ["PATH"]}', GPUS='16',
               SRUN_ARGS='--time=2:00:00 --qos high', PORT='29601')
    args = printed_args(proc)
    assert args[:2] == ['-p', 'gpu']
    for expected in ('--job-name=sdae', '--ntasks=16', '--gres=gpu:8',
                     '--ntasks-per-node=8', '--cpus-per-task=5',
                     '--kill-on-bad-exit=1', '--time=2:00:00', '--qos',
                     'high'):
        assert expected in args, expected
    tail = args[args.index('-u'):]
    assert tail[1:] == [osp.join(REPO, 'tools', 'train.py'), CONFIG,
                        '--work-dir=work dir', '--launcher=slurm',
                        '--resume', '--cfg-options', 'a=1']
    assert 'ENV MASTER_PORT=29601' in proc.stdout


def test_slurm_small_job_and_cpu_partition(echo_bin):
    path = f'{echo_bin}:{os.environ["PATH"]}'
    # fewer GPUs than a node has: ask for only those
    args = printed_args(run('slurm_test.sh', 'p', 'j', CONFIG, CONFIG,
                            PATH=path, GPUS='2'))
    assert '--gres=gpu:2' in args and '--ntasks-per-node=2' in args
    assert args[-3:] == [CONFIG, CONFIG, '--launcher=slurm']
    # GPUS_PER_NODE=0: a CPU partition, no GPU request
    args = printed_args(run('slurm_train.sh', 'cpu', 'j', CONFIG, 'w',
                            PATH=path, GPUS='4', GPUS_PER_NODE='0'))
    assert '--ntasks=4' in args
    assert not any(a.startswith(('--gres', '--ntasks-per-node'))
                   for a in args)
