"""mmsdae.utils.dist: the torchrun / srun environment, its error messages,
and the gloo set-up that lets the same launchers run on a CPU-only
machine."""
import os
import os.path as osp
import socket
import subprocess
import sys

import pytest
import torch
import torch.distributed as torch_dist
from mmengine.config import Config

from mmsdae.utils import dist as mdist
from mmsdae.utils.dist import (DEFAULT_PORT, DistEnv, DistEnvError, dist_env,
                               first_slurm_host, setup_distributed,
                               teardown_distributed)

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TORCHRUN = dict(RANK='1', WORLD_SIZE='4', LOCAL_RANK='1',
                MASTER_ADDR='10.0.0.1', MASTER_PORT='29600')
SLURM = dict(SLURM_PROCID='5', SLURM_NTASKS='8', SLURM_LOCALID='1',
             SLURM_NODELIST='gpu[03-04],cpu7')
ALL_VARS = set(TORCHRUN) | set(SLURM)


def free_port():
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


def test_torchrun_environment():
    assert dist_env('pytorch', TORCHRUN) == DistEnv(1, 4, 1, '10.0.0.1',
                                                    29600)


@pytest.mark.parametrize('missing', ['RANK', 'WORLD_SIZE', 'MASTER_PORT'])
def test_torchrun_variable_missing_says_use_dist_train(missing):
    environ = {k: v for k, v in TORCHRUN.items() if k != missing}
    with pytest.raises(DistEnvError,
                       match=f'{missing} is not set.*tools/dist_train.sh'):
        dist_env('pytorch', environ)


def test_plain_python_with_launcher_pytorch_names_every_missing_variable():
    with pytest.raises(DistEnvError) as info:
        dist_env('pytorch', {})
    msg = str(info.value)
    for name in ('RANK', 'WORLD_SIZE', 'LOCAL_RANK', 'MASTER_ADDR',
                 'MASTER_PORT', 'torchrun', 'tools/dist_train.sh',
                 '--launcher'):
        assert name in msg, msg


@pytest.mark.parametrize('name,value,match', [
    ('WORLD_SIZE', 'two', "WORLD_SIZE='two' is not an integer"),
    ('RANK', '-1', "RANK='-1' is negative"),
    ('RANK', '4', 'rank 4 does not fit a job of 4'),
    ('WORLD_SIZE', '0', 'rank 1 does not fit a job of 0'),
])
def test_torchrun_bad_values(name, value, match):
    with pytest.raises(DistEnvError, match=match):
        dist_env('pytorch', {**TORCHRUN, name: value})


def test_slurm_environment():
    # master: the first host of the node list; port: torch's default
    assert dist_env('slurm', SLURM) == DistEnv(5, 8, 1, 'gpu03',
                                               DEFAULT_PORT)
    # MASTER_ADDR / MASTER_PORT in the environment win (PORT=... of
    # tools/slurm_train.sh exports MASTER_PORT)
    env = dist_env('slurm', {**SLURM, 'MASTER_ADDR': 'head',
                             'MASTER_PORT': '29777'})
    assert (env.master_addr, env.master_port) == ('head', 29777)
    # no SLURM_LOCALID: local rank 0 (MMEngine divides by the GPU count)
    environ = {k: v for k, v in SLURM.items() if k != 'SLURM_LOCALID'}
    assert dist_env('slurm', environ).local_rank == 0


def test_slurm_variable_missing_says_use_slurm_train():
    environ = {k: v for k, v in SLURM.items() if k != 'SLURM_NTASKS'}
    with pytest.raises(DistEnvError,
                       match='SLURM_NTASKS is not set.*tools/slurm_train.sh'):
        dist_env('slurm', environ)
    with pytest.raises(DistEnvError, match="SLURM_PROCID='x'"):
        dist_env('slurm', {**SLURM, 'SLURM_PROCID': 'x'})


@pytest.mark.parametrize('nodelist,host', [
    ('node1', 'node1'),
    ('node1,node2', 'node1'),
    ('gpu[03-05,9],cpu1', 'gpu03'),
    ('gpu-[001-004]', 'gpu-001'),
    ('n[7]', 'n7'),
    ('rack[1-2]-n[01-04]', 'rack1-n01'),
])
def test_first_slurm_host(nodelist, host):
    assert first_slurm_host(nodelist) == host


def test_empty_slurm_nodelist():
    with pytest.raises(DistEnvError, match='names no host'):
        first_slurm_host('')


def test_unknown_launcher():
    with pytest.raises(DistEnvError, match='pytorch or slurm'):
        dist_env('mpirun', {})


@pytest.fixture
def clean_env(monkeypatch):
    """No launcher variables; the ones setup_distributed exports are
    removed afterwards (``delenv`` alone records nothing for a variable
    that is not set, so it would leak into later tests)."""
    for name in ALL_VARS:
        monkeypatch.setenv(name, '')
        monkeypatch.delenv(name)
    return monkeypatch


def test_launcher_none_under_torchrun_is_refused(clean_env):
    cfg = Config(dict(model=dict()))
    assert setup_distributed(cfg, 'none') is None
    assert 'model_wrapper_cfg' not in cfg
    clean_env.setenv('WORLD_SIZE', '2')
    with pytest.raises(DistEnvError, match='add --launcher pytorch'):
        setup_distributed(cfg, 'none')


def test_mpi_is_left_to_mmengine(clean_env):
    cfg = Config(dict())
    assert setup_distributed(cfg, 'mpi') is None
    assert 'model_wrapper_cfg' not in cfg


def test_gpu_keeps_mmengine_nccl_path(clean_env):
    """With CUDA: check the environment, touch nothing else."""
    clean_env.setattr(torch.cuda, 'is_available', lambda: True)
    for name, value in TORCHRUN.items():
        clean_env.setenv(name, value)
    cfg = Config(dict(env_cfg=dict(dist_cfg=dict(backend='nccl')),
                      randomness=dict(seed=0, diff_rank_seed=True)))
    assert setup_distributed(cfg, 'pytorch').world_size == 4
    assert cfg.env_cfg.dist_cfg.backend == 'nccl'
    assert 'model_wrapper_cfg' not in cfg
    assert not torch_dist.is_initialized()
    clean_env.delenv('RANK')
    with pytest.raises(DistEnvError, match='RANK is not set'):
        setup_distributed(cfg, 'pytorch')


def test_cpu_creates_a_gloo_group_and_a_cpu_ddp_wrapper(clean_env):
    """One process, world size 1: the gloo group is created here, the
    backend is recorded and DDP gets no device ids."""
    clean_env.setattr(torch.cuda, 'is_available', lambda: False)
    for name, value in dict(RANK='0', WORLD_SIZE='1', LOCAL_RANK='0',
                            MASTER_ADDR='127.0.0.1',
                            MASTER_PORT=str(free_port())).items():
        clean_env.setenv(name, value)
    cfg = Config(dict(env_cfg=dict(dist_cfg=dict(backend='nccl',
                                                 timeout=60))))
    assert not torch_dist.is_initialized()
    try:
        env = setup_distributed(cfg, 'pytorch')
        assert env == DistEnv(0, 1, 0, '127.0.0.1', env.master_port)
        assert torch_dist.is_initialized()
        assert torch_dist.get_backend() == 'gloo'
        assert cfg.env_cfg.dist_cfg.backend == 'gloo'
        assert cfg.model_wrapper_cfg == dict(
            type='MMDistributedDataParallel', broadcast_buffers=False,
            find_unused_parameters=False, device_ids=None)
        # a second call (group already there) only fixes the config
        cfg2 = Config(dict(model_wrapper_cfg=dict(
            find_unused_parameters=True)))
        setup_distributed(cfg2, 'pytorch')
        assert cfg2.model_wrapper_cfg == dict(
            type='MMDistributedDataParallel', find_unused_parameters=True,
            device_ids=None)
        teardown_distributed()  # what tools/train.py does at the end
        assert not torch_dist.is_initialized()
        teardown_distributed()  # no group: nothing to do
    finally:
        if torch_dist.is_initialized():
            torch_dist.destroy_process_group()


def test_slurm_on_cpu_exports_the_torch_variables(clean_env):
    """srun sets SLURM_*; MMEngine and the samplers read RANK etc."""
    clean_env.setattr(torch.cuda, 'is_available', lambda: False)
    clean_env.setattr(mdist.torch_dist, 'is_initialized', lambda: True)
    for name, value in SLURM.items():
        clean_env.setenv(name, value)
    cfg = Config(dict())
    setup_distributed(cfg, 'slurm')
    assert {k: os.environ[k] for k in TORCHRUN} == dict(
        RANK='5', WORLD_SIZE='8', LOCAL_RANK='1', MASTER_ADDR='gpu03',
        MASTER_PORT=str(DEFAULT_PORT))
    assert cfg.env_cfg.dist_cfg.backend == 'gloo'


@pytest.mark.slow
@pytest.mark.parametrize('tool', ['train.py', 'test.py'])
def test_cli_launcher_pytorch_without_torchrun(tool, tmp_path):
    """``python tools/train.py CONFIG --launcher pytorch`` exits with the
    fix instead of MMEngine's ``KeyError: 'RANK'``."""
    config = osp.join(REPO, 'configs', 'sdae',
                      'sdae_vit-tiny-p8_1xb32-10e_procedural-64px.py')
    args = [sys.executable, osp.join(REPO, 'tools', tool), config]
    if tool == 'test.py':
        ckpt = tmp_path / 'x.pth'
        ckpt.write_bytes(b'')
        args.append(str(ckpt))
    env = {k: v for k, v in os.environ.items()
           if k not in ALL_VARS}
    proc = subprocess.run(
        args + ['--launcher', 'pytorch', '--work-dir', str(tmp_path)],
        capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode != 0
    assert 'tools/dist_train.sh' in proc.stderr, proc.stderr[-2000:]
    assert 'RANK' in proc.stderr and 'Traceback' not in proc.stderr
