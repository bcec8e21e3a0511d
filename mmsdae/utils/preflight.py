"""Checks run by ``tools/train.py`` before a Runner is built.

MMEngine only notices a missing dataset folder when a dataloader worker
first opens it, and a bad ``init_cfg=dict(type='Pretrained', ...)`` file
either fails deep in ``load_checkpoint`` or, worse, loads nothing and only
logs a warning. These checks fail at start-up with a message that names the
config key, the path and the fix.
"""
import os.path as osp
from typing import Iterator, List, Tuple

DATALOADERS = ('train_dataloader', 'val_dataloader', 'test_dataloader')


class PreflightError(ValueError):
    """A config problem found before training starts."""


def iter_pretrained_inits(node, path: str = 'model') -> Iterator[Tuple[str,
                                                                       dict]]:
    """Yield ``(config key, init_cfg)`` for every ``Pretrained`` init_cfg
    under ``node`` (dicts and lists are walked)."""
    if isinstance(node, dict):
        if node.get('type') == 'Pretrained':
            yield path, node
        for key, value in node.items():
            yield from iter_pretrained_inits(value, f'{path}.{key}')
    elif isinstance(node, (list, tuple)):
        for i, value in enumerate(node):
            yield from iter_pretrained_inits(value, f'{path}[{i}]')


def check_pretrained_checkpoints(cfg) -> List[str]:
    """Every ``Pretrained`` init_cfg in ``cfg.model`` names a readable local
    checkpoint that holds keys under its ``prefix``. Returns the checked
    paths; raises :class:`PreflightError` otherwise. URLs are left to
    MMEngine."""
    checked = []
    for key, init in iter_pretrained_inits(cfg.get('model', {})):
        ckpt = init.get('checkpoint')
        fix = (f'pass --cfg-options {key}.checkpoint=<encoder.pth> (export '
               'one with tools/model_converters/sdae_to_vit.py), or '
               f'{key.rsplit(".init_cfg", 1)[0]}.init_cfg=None to train '
               'from scratch')
        if not ckpt:
            raise PreflightError(f'{key}.checkpoint is empty: {fix}.')
        if '://' in str(ckpt):
            continue
        if not osp.isfile(ckpt):
            raise PreflightError(
                f'{key}.checkpoint={ckpt!r} does not exist: {fix}.')
        prefix = init.get('prefix')
        if prefix:
            keys = checkpoint_keys(ckpt)
            if not any(k.startswith(prefix) for k in keys):
                found = sorted({k.split('.')[0] for k in keys})[:8]
                raise PreflightError(
                    f'{key}.checkpoint={ckpt!r} has no "{prefix}*" keys '
                    f'(top-level names: {found}). Convert it first: python '
                    'tools/model_converters/sdae_to_vit.py '
                    f'{ckpt} <out.pth> (it reads mmsdae and timm/MAE '
                    'formats).')
        checked.append(ckpt)
    return checked


def checkpoint_keys(path: str) -> List[str]:
    """State-dict keys of a checkpoint file, loaded on the CPU."""
    import torch

    from .checkpoint import allow_mmengine_checkpoint_globals
    allow_mmengine_checkpoint_globals()
    try:
        ckpt = torch.load(path, map_location='cpu', mmap=True)
    except Exception as exc:  # truncated zip, pickle error, not a file ...
        raise PreflightError(
            f'cannot read checkpoint {path!r} ({type(exc).__name__}: '
            f'{exc}); the file is corrupt or not a PyTorch checkpoint.'
        ) from exc
    if isinstance(ckpt, dict):
        for wrapper in ('state_dict', 'model'):
            if isinstance(ckpt.get(wrapper), dict):
                ckpt = ckpt[wrapper]
                break
        return [str(k) for k in ckpt]
    raise PreflightError(f'checkpoint {path!r} holds a {type(ckpt).__name__}'
                         ', not a state dict.')


def check_data_roots(cfg) -> List[str]:
    """The ``data_root`` of every configured dataloader exists. Returns the
    checked roots; raises :class:`PreflightError` naming the key and the
    fix otherwise (an empty ``data_root`` is left alone: procedural data,
    or absolute paths in the dataset's other keys)."""
    checked = []
    for loader in DATALOADERS:
        dataset = (cfg.get(loader) or {}).get('dataset') or {}
        # ConcatDataset / RepeatDataset wrappers keep theirs one level down.
        for ds in [dataset, dataset.get('dataset') or {}] + list(
                dataset.get('datasets') or []):
            root = ds.get('data_root') if isinstance(ds, dict) else None
            if not root or '://' in str(root):
                continue
            if not osp.isdir(root):
                hint = ('generate the tiny datasets with python tools/'
                        'dataset_converters/make_tiny_data.py --out '
                        f'{root.split("/tiny/")[0]}/tiny'
                        if '/tiny/' in f'/{root}' else
                        'download the dataset there (see the README, '
                        '"Data layout"), or pass --cfg-options '
                        f'{loader}.dataset.data_root=<path>')
                raise PreflightError(
                    f'{loader}.dataset.data_root={root!r} does not exist: '
                    f'{hint}.')
            checked.append(root)
    return checked
