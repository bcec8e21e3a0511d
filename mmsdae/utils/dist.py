"""Multi-process launch that follows the device: NCCL on GPU, gloo on CPU.

MMEngine's ``init_dist`` and ``Runner.wrap_model`` assume CUDA
(``torch.cuda.set_device``, ``device_ids=[LOCAL_RANK]``). On a CPU-only
machine :func:`setup_distributed` creates the gloo group itself (then
``Runner.setup_env`` skips ``init_dist``) and wraps the model without
``device_ids``; with CUDA MMEngine's path is kept, after checking that the
launcher's environment (``tools/dist_train.sh``, ``tools/slurm_train.sh``)
is complete.
"""
import datetime
import logging
import os
import re
from typing import Mapping, NamedTuple, Optional

import torch
import torch.distributed as torch_dist
from mmengine.logging import print_log

DEFAULT_PORT = 29500  # torch.distributed's (and MMEngine's) default
TORCHRUN_VARS = ('RANK', 'WORLD_SIZE', 'LOCAL_RANK', 'MASTER_ADDR',
                 'MASTER_PORT')
SLURM_VARS = ('SLURM_PROCID', 'SLURM_NTASKS', 'SLURM_NODELIST')


class DistEnvError(RuntimeError):
    """The environment does not describe a complete multi-process job."""


class DistEnv(NamedTuple):
    """Where this process sits in the job."""
    rank: int
    world_size: int
    local_rank: int
    master_addr: str
    master_port: int


def _require(environ: Mapping[str, str], names, launcher: str,
             starter: str, fix: str) -> None:
    missing = [name for name in names if name not in environ]
    if missing:
        raise DistEnvError(
            f'--launcher {launcher} needs the environment that {starter} '
            f'sets, but {", ".join(missing)} '
            f'{"is" if len(missing) == 1 else "are"} not set: {fix}.')


def _int(environ: Mapping[str, str], name: str, fix: str) -> int:
    value = environ[name]
    try:
        number = int(value)
    except ValueError:
        raise DistEnvError(f'{name}={value!r} is not an integer: {fix}.')
    if number < 0:
        raise DistEnvError(f'{name}={value!r} is negative: {fix}.')
    return number


def first_slurm_host(nodelist: str) -> str:
    """The first host of a Slurm node list, as ``scontrol show hostnames``
    prints it first: ``'gpu[03-05,9],cpu1'`` -> ``'gpu03'``.

    Parsed here rather than with ``scontrol`` (what MMEngine does), so it
    needs no Slurm client and can be tested.
    """
    first = re.match(r'([^,\[]*(\[[^\]]*\][^,\[]*)*)', nodelist.strip())
    host = first.group(0) if first else ''
    # each bracket group "[03-05,9]" stands for its first entry, "03"
    host = re.sub(r'\[([^\],-]*)[^\]]*\]', r'\1', host)
    if not host:
        raise DistEnvError(
            f'SLURM_NODELIST={nodelist!r} names no host: run the job '
            'through srun (tools/slurm_train.sh), or set MASTER_ADDR.')
    return host


def dist_env(launcher: str,
             environ: Optional[Mapping[str, str]] = None) -> DistEnv:
    """This process's place in the job, from the variables torchrun
    (``launcher='pytorch'``) or srun (``'slurm'``) sets."""
    environ = os.environ if environ is None else environ
    if launcher == 'pytorch':
        fix = ('start the job with `bash tools/dist_train.sh CONFIG '
               'NUM_PROCS` (tools/dist_test.sh to test), which runs '
               'torchrun, or leave out --launcher for one process')
        _require(environ, TORCHRUN_VARS, 'pytorch', 'torchrun', fix)
        rank = _int(environ, 'RANK', fix)
        world_size = _int(environ, 'WORLD_SIZE', fix)
        local_rank = _int(environ, 'LOCAL_RANK', fix)
        master_addr = environ['MASTER_ADDR']
        master_port = _int(environ, 'MASTER_PORT', fix)
    elif launcher == 'slurm':
        fix = ('start the job with `bash tools/slurm_train.sh PARTITION '
               'JOB_NAME CONFIG WORK_DIR` (tools/slurm_test.sh to test), '
               'whose srun sets them, or leave out '
               '--launcher for one process')
        _require(environ, SLURM_VARS, 'slurm', 'srun', fix)
        rank = _int(environ, 'SLURM_PROCID', fix)
        world_size = _int(environ, 'SLURM_NTASKS', fix)
        local_rank = _int(environ, 'SLURM_LOCALID', fix) \
            if 'SLURM_LOCALID' in environ else 0
        master_addr = environ.get('MASTER_ADDR') or first_slurm_host(
            environ['SLURM_NODELIST'])
        master_port = _int(environ, 'MASTER_PORT', fix) \
            if 'MASTER_PORT' in environ else DEFAULT_PORT
    else:
        raise DistEnvError(f'launcher {launcher!r}: choose pytorch or slurm.')
    if world_size < 1 or rank >= world_size:
        raise DistEnvError(
            f'rank {rank} does not fit a job of {world_size} process(es): '
            f'{fix}.')
    return DistEnv(rank, world_size, local_rank, master_addr, master_port)


def setup_distributed(cfg, launcher: str) -> Optional[DistEnv]:
    """Prepare a ``--launcher pytorch|slurm`` run; call before the Runner
    is built.

    ``'none'`` under a multi-process torchrun is refused (each process
    would train alone into one work_dir); otherwise the environment is
    checked and, without CUDA, the gloo group is created and ``cfg``'s
    ``dist_cfg`` / ``model_wrapper_cfg`` set to match.

    Returns the :class:`DistEnv` for pytorch / slurm, else None.
    """
    if launcher in ('none', None):
        workers = os.environ.get('WORLD_SIZE', '1')
        if workers.isdigit() and int(workers) > 1:
            raise DistEnvError(
                f'started as one of {workers} processes (WORLD_SIZE='
                f'{workers}) but with --launcher none, so each would train '
                'alone: add --launcher pytorch (tools/dist_train.sh does).')
        return None
    if launcher not in ('pytorch', 'slurm'):
        return None  # mpi: MMEngine's own path
    env = dist_env(launcher)
    randomness = cfg.get('randomness') or {}
    if env.world_size > 1 and not randomness.get('diff_rank_seed', False):
        print_log(
            'randomness.diff_rank_seed is not True: every process draws the '
            'same masks (on different images). Set randomness=dict(seed=..., '
            'diff_rank_seed=True) (configs/_base_/default_runtime.py does).',
            logger='current', level=logging.WARNING)
    if torch.cuda.is_available():
        return env

    os.environ.update(RANK=str(env.rank), WORLD_SIZE=str(env.world_size),
                      LOCAL_RANK=str(env.local_rank),
                      MASTER_ADDR=env.master_addr,
                      MASTER_PORT=str(env.master_port))
    if cfg.get('env_cfg') is None:
        cfg.env_cfg = dict()
    if cfg.env_cfg.get('dist_cfg') is None:
        cfg.env_cfg.dist_cfg = dict()
    dist_cfg = cfg.env_cfg.dist_cfg
    dist_cfg.backend = 'gloo'  # NCCL needs GPUs
    if not torch_dist.is_initialized():
        kwargs = {}
        if dist_cfg.get('timeout') is not None:
            kwargs['timeout'] = datetime.timedelta(
                seconds=dist_cfg['timeout'])
        torch_dist.init_process_group(
            backend='gloo',
            init_method='env://',
            rank=env.rank,
            world_size=env.world_size,
            **kwargs)
    cfg.model_wrapper_cfg = _cpu_wrapper_cfg(cfg)
    return env


def _cpu_wrapper_cfg(cfg) -> dict:
    """``model_wrapper_cfg`` for a CPU model: MMEngine adds
    ``device_ids=[LOCAL_RANK]`` for every DDP wrapper unless the config sets
    it, and DDP refuses device ids for a CPU module."""
    from mmengine.registry import MODEL_WRAPPERS
    from torch.nn.parallel import DistributedDataParallel

    wrapper = dict(cfg.get('model_wrapper_cfg') or dict(
        type='MMDistributedDataParallel',
        broadcast_buffers=False,
        find_unused_parameters=cfg.get('find_unused_parameters', False)))
    wrapper.setdefault('type', 'MMDistributedDataParallel')
    wrapper_type = MODEL_WRAPPERS.get(wrapper['type'])
    if isinstance(wrapper_type, type) and issubclass(
            wrapper_type, DistributedDataParallel):
        wrapper.setdefault('device_ids', None)
    return wrapper


def teardown_distributed() -> None:
    """End the process group after a run that finished on every rank: a
    barrier, then ``destroy_process_group``. A gloo process that exits with
    its group alive while a peer still uses the connection can abort at
    interpreter shutdown (``terminate called without an active
    exception``, seen with ``tools/dist_test.sh`` on a loaded CPU machine),
    failing a job that succeeded."""
    if torch_dist.is_available() and torch_dist.is_initialized():
        torch_dist.barrier()
        torch_dist.destroy_process_group()
