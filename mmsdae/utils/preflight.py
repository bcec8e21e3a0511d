"""Checks run by ``tools/train.py`` before a Runner is built.

MMEngine only notices a missing dataset folder when a dataloader worker
first opens it, and a bad ``init_cfg=dict(type='Pretrained', ...)`` file
either fails deep in ``load_checkpoint`` or, worse, loads nothing and only
logs a warning. These checks fail at start-up with a message that names the
config key, the path and the fix.
"""
import os.path as osp
import pickle
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


def check_pretrained_checkpoints(cfg, check_backbone: bool = True
                                 ) -> List[str]:
    """Every ``Pretrained`` init_cfg in ``cfg.model`` names a readable local
    checkpoint that holds keys under its ``prefix``; for
    ``model.backbone.init_cfg`` (with ``check_backbone``) the weights must
    also fit the backbone the config builds: same shapes (a different
    position-embedding grid is fine, the ViT resizes it when loading) and
    no missing key it does not train from scratch. Returns the checked
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
            state = load_state_dict(ckpt)
            keys = list(state)
            if not any(k.startswith(prefix) for k in keys):
                found = sorted({k.split('.')[0] for k in keys})[:8]
                raise PreflightError(
                    f'{key}.checkpoint={ckpt!r} has no "{prefix}*" keys '
                    f'(top-level names: {found}). Convert it first: python '
                    'tools/model_converters/sdae_to_vit.py '
                    f'{ckpt} <out.pth> (it reads mmsdae and timm/MAE '
                    'formats).')
            if check_backbone and key == 'model.backbone.init_cfg':
                check_backbone_fits(cfg, state, prefix, ckpt)
        checked.append(ckpt)
    return checked


def check_backbone_fits(cfg, state: dict, prefix: str, path: str) -> None:
    """Raise :class:`PreflightError` unless ``state`` (keys under
    ``prefix``) loads into ``cfg.model.backbone`` without a shape mismatch
    or a missing key that the backbone would not train."""
    from .ckpt_convert import build_backbone_from_config, check_against_backbone
    try:
        backbone = build_backbone_from_config(cfg)
    except ValueError:
        return  # the Runner will report the config error itself
    try:
        check_against_backbone(
            {k: v for k, v in state.items() if hasattr(v, 'shape')},
            backbone, prefix=prefix, resize_pos_embed=True)
    except ValueError as exc:
        raise PreflightError(
            f'model.backbone.init_cfg.checkpoint={path!r} does not fit '
            f'model.backbone: {exc}') from exc


def load_state_dict(path: str) -> dict:
    """The state dict of a checkpoint file (unwrapped from ``state_dict``
    or ``model``), loaded on the CPU with tensors memory-mapped."""
    import torch

    from .checkpoint import allow_mmengine_checkpoint_globals
    allow_mmengine_checkpoint_globals()
    try:
        ckpt = torch.load(path, map_location='cpu', mmap=True)
    except pickle.UnpicklingError as exc:  # e.g. an argparse.Namespace
        raise PreflightError(
            f'checkpoint {path!r} holds objects that weights-only loading '
            f'refuses ({exc}); convert it first: python tools/'
            f'model_converters/sdae_to_vit.py {path} <out.pth> '
            '--unsafe-load (only for files you trust).') from exc
    except Exception as exc:  # truncated zip, not a file ...
        raise PreflightError(
            f'cannot read checkpoint {path!r} ({type(exc).__name__}: '
            f'{exc}); the file is corrupt or not a PyTorch checkpoint.'
        ) from exc
    if isinstance(ckpt, dict):
        for wrapper in ('state_dict', 'model'):
            if isinstance(ckpt.get(wrapper), dict):
                ckpt = ckpt[wrapper]
                break
        return {str(k): v for k, v in ckpt.items()}
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
