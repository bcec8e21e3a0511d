"""Checks of a converted ViT encoder, and the pos_embed resize.

:func:`check_consistency` checks that a state dict is one complete
mmpretrain ViT and infers its arch; :func:`check_against_backbone` compares
it with the backbone a downstream config builds (as
``init_cfg=dict(type='Pretrained', prefix=...)`` loads it);
:func:`interpolate_pos_embed` resizes the position embedding to another
patch grid as MAE does.
"""
import copy
import math
import os.path as osp
import re
from typing import Dict, Optional, Sequence, Tuple, Union

import torch
import torch.nn.functional as F
from torch import nn

from ..grid import to_pair
from .files import StateDict
from .formats import list_keys

Grid = Tuple[int, int]

# Per-block tensors of an mmpretrain ViT: name -> shape in terms of the
# width D and the MLP width F. Weights are required, biases optional.
_BLOCK_TENSORS = {
    'ln1.weight': ('D', ),
    'ln1.bias': ('D', ),
    'attn.qkv.weight': ('3D', 'D'),
    'attn.qkv.bias': ('3D', ),
    'attn.proj.weight': ('D', 'D'),
    'attn.proj.bias': ('D', ),
    'ln2.weight': ('D', ),
    'ln2.bias': ('D', ),
    'ffn.layers.0.0.weight': ('F', 'D'),
    'ffn.layers.0.0.bias': ('F', ),
    'ffn.layers.1.weight': ('D', 'F'),
    'ffn.layers.1.bias': ('D', ),
}
_NORMS = ('ln1', 'ln2', 'pre_norm')

# Target keys a checkpoint may lack without an error: norms that a
# fine-tuning recipe starts fresh (``ln2``: the global-pool norm of
# ``out_type='avg_featmap'``; ``ln1``: the final norm, absent from MAE
# checkpoints fine-tuned with global pooling) and the distillation token
# that DeiT-style fine-tuning adds (``DistilledViT``, G2SD specific
# distillation; its position embedding row is inserted on loading).
OPTIONAL_TARGET_KEYS = ('ln1.', 'ln2.', 'dist_token')
# DenseViT's relative position tables start from zero at fine-tuning.
FRESH_TARGET_SUFFIXES = ('relative_position_bias_table', )


def interpolate_pos_embed(
        pos_embed: torch.Tensor,
        new_grid: Union[int, Sequence[int]],
        num_extra_tokens: int = 1,
        old_grid: Optional[Sequence[int]] = None) -> torch.Tensor:
    """Resize the patch-grid part of a ``(1, extra + h * w, C)`` pos_embed.

    MAE's ``interpolate_pos_embed``: the ``num_extra_tokens`` leading rows
    are kept, the grid rows resized bicubically (``align_corners=False``)
    to ``new_grid`` (``(H, W)`` or a side); ``old_grid`` defaults to square.
    """
    if pos_embed.dim() != 3 or pos_embed.shape[0] != 1:
        raise ValueError('pos_embed must have shape (1, tokens, channels), '
                         f'got {tuple(pos_embed.shape)}.')
    new_h, new_w = to_pair(new_grid)
    num_grid = pos_embed.shape[1] - num_extra_tokens
    if old_grid is None:
        side = math.isqrt(max(num_grid, 0))
        if side * side != num_grid:
            raise ValueError(
                f'pos_embed has {num_grid} patch positions after '
                f'{num_extra_tokens} extra token(s), not a square grid: pass '
                'old_grid.')
        old_grid = (side, side)
    old_h, old_w = to_pair(old_grid)
    if old_h * old_w != num_grid:
        raise ValueError(f'old_grid {old_h}x{old_w} does not match the '
                         f'{num_grid} patch positions of pos_embed.')
    if (old_h, old_w) == (new_h, new_w):
        return pos_embed
    channels = pos_embed.shape[2]
    extra = pos_embed[:, :num_extra_tokens]
    grid = pos_embed[:, num_extra_tokens:]
    grid = grid.reshape(1, old_h, old_w, channels).permute(0, 3, 1, 2)
    grid = F.interpolate(grid.float(),
                         size=(new_h, new_w),
                         mode='bicubic',
                         align_corners=False).to(pos_embed.dtype)
    grid = grid.permute(0, 2, 3, 1).reshape(1, new_h * new_w, channels)
    return torch.cat([extra, grid], dim=1)


def check_consistency(state: StateDict, prefix: str = 'backbone.') -> dict:
    """Check that ``state`` is one complete mmpretrain ViT; infer its arch.

    Blocks must be 0..L-1 with all weights, every shape must fit the width
    D of the patch projection and the MLP width F (``_BLOCK_TENSORS``); a
    ValueError lists every problem. Returns ``embed_dims``, ``num_layers``,
    ``feedforward_channels``, ``patch_size``, ``grid`` (None when not
    square), ``num_extra_tokens``, ``final_norm`` and ``extra_keys``.
    """
    vit = {
        k[len(prefix):]: v
        for k, v in state.items() if k.startswith(prefix)
    }
    proj = vit.get('patch_embed.projection.weight')
    if proj is None or proj.dim() != 4:
        raise ValueError(
            f'"{prefix}patch_embed.projection.weight" (a 4-D conv weight) is '
            'missing: this is not a ViT encoder (its keys: '
            f'{list_keys(sorted(state), limit=6)}).')
    dims = proj.shape[0]
    problems, extra_keys = [], []
    blocks: Dict[int, Dict[str, torch.Tensor]] = {}
    for key, value in vit.items():
        match = re.match(r'layers\.(\d+)\.(.+)$', key)
        if match:
            blocks.setdefault(int(match.group(1)), {})[match.group(2)] = value
        elif key.split('.')[0] not in (
            ('cls_token', 'pos_embed', 'patch_embed') + _NORMS):
            extra_keys.append(prefix + key)
    if not blocks:
        raise ValueError(f'no "{prefix}layers.*" transformer blocks: this is '
                         'not a ViT encoder.')
    indices = sorted(blocks)
    if indices != list(range(len(indices))):
        problems.append(
            f'block indices {indices} are not 0..{len(indices) - 1}'
            ' (blocks missing from the checkpoint)')
    ffn_dims = {
        b['ffn.layers.0.0.weight'].shape[0]
        for b in blocks.values() if 'ffn.layers.0.0.weight' in b
    }
    if len(ffn_dims) > 1:
        problems.append(f'blocks have different MLP widths {sorted(ffn_dims)}')
    ffn = min(ffn_dims) if ffn_dims else None
    sizes = {'D': dims, '3D': 3 * dims, 'F': ffn}
    for index in indices:
        block = blocks[index]
        for name, dims_spec in _BLOCK_TENSORS.items():
            key = f'{prefix}layers.{index}.{name}'
            if name not in block:
                if name.endswith('weight'):
                    problems.append(f'{key} is missing')
                continue
            expected = tuple(sizes[d] for d in dims_spec)
            if None not in expected and tuple(block[name].shape) != expected:
                problems.append(f'{key} has shape {tuple(block[name].shape)}, '
                                f'expected {expected} for width {dims}')
        for name in block:
            if name not in _BLOCK_TENSORS:
                extra_keys.append(f'{prefix}layers.{index}.{name}')
    for norm in _NORMS:
        for part in ('weight', 'bias'):
            value = vit.get(f'{norm}.{part}')
            if value is not None and tuple(value.shape) != (dims, ):
                problems.append(f'{prefix}{norm}.{part} has shape '
                                f'{tuple(value.shape)}, expected ({dims},)')
    cls_token = vit.get('cls_token')
    if cls_token is not None and tuple(cls_token.shape) != (1, 1, dims):
        problems.append(f'{prefix}cls_token has shape '
                        f'{tuple(cls_token.shape)}, expected (1, 1, {dims})')
    grid, num_extra = None, int(cls_token is not None)
    pos_embed = vit.get('pos_embed')
    if pos_embed is not None:
        if pos_embed.dim() != 3 or pos_embed.shape[0] != 1 \
                or pos_embed.shape[2] != dims:
            problems.append(f'{prefix}pos_embed has shape '
                            f'{tuple(pos_embed.shape)}, expected (1, tokens, '
                            f'{dims})')
        else:
            for extra in (num_extra, 1 - num_extra):
                side = math.isqrt(max(pos_embed.shape[1] - extra, 0))
                if side > 0 and side * side == pos_embed.shape[1] - extra:
                    grid, num_extra = (side, side), extra
                    break
    if problems:
        raise ValueError('the converted encoder is inconsistent: ' +
                         '; '.join(problems) + '.')
    return dict(embed_dims=dims,
                num_layers=len(indices),
                feedforward_channels=ffn,
                patch_size=tuple(proj.shape[2:]),
                grid=grid,
                num_extra_tokens=num_extra,
                final_norm='ln1.weight' in vit,
                extra_keys=extra_keys)


def check_against_backbone(state: StateDict,
                           backbone: nn.Module,
                           prefix: str = 'backbone.',
                           allow_missing: bool = False,
                           resize_pos_embed: bool = False) -> dict:
    """Match the keys of ``state`` under ``prefix`` with
    ``backbone.state_dict()``, as ``init_cfg=dict(type='Pretrained',
    prefix=prefix)`` loads them: a shape mismatch (a pos_embed grid only
    without ``resize_pos_embed``), no match, or a missing key the backbone
    does not train (unless ``allow_missing``) is a ValueError. Returns
    ``target``, ``matched``, ``missing``, ``unexpected`` and ``notes``."""
    source = {
        k[len(prefix):]: v
        for k, v in state.items() if k.startswith(prefix)
    }
    target = backbone.state_dict()
    name = type(backbone).__name__
    mismatched, notes = [], []
    for key in sorted(set(source) & set(target)):
        src_shape, tgt_shape = tuple(source[key].shape), tuple(
            target[key].shape)
        if src_shape == tgt_shape:
            continue
        if key == 'pos_embed':
            message = _pos_embed_mismatch(source, backbone, src_shape,
                                          tgt_shape, prefix)
            if message is None and src_shape[1] < tgt_shape[1]:
                notes.append(
                    f'pos_embed {src_shape} -> {tgt_shape}: the backbone '
                    'inserts the distillation token\'s row on loading.')
                continue
            if message is not None and resize_pos_embed:
                notes.append(f'pos_embed {src_shape} -> {tgt_shape}: '
                             'resized by the backbone when it loads.')
                continue
            if message is None:  # only the class-token row differs
                notes.append(
                    f'pos_embed {src_shape} -> {tgt_shape}: the backbone has '
                    'no class token; mmpretrain drops that row on loading.')
                continue
            raise ValueError(message)
        mismatched.append(f'{prefix}{key}: checkpoint {src_shape}, backbone '
                          f'{tgt_shape}')
    if mismatched:
        src_dims = source.get('patch_embed.projection.weight')
        tgt_dims = target.get('patch_embed.projection.weight')
        hint = ''
        if src_dims is not None and tgt_dims is not None \
                and src_dims.shape[0] != tgt_dims.shape[0]:
            hint = (f' The checkpoint is a ViT of width {src_dims.shape[0]}, '
                    f'the {name} of width {tgt_dims.shape[0]}: wrong '
                    'checkpoint or wrong config (arch)?')
        raise ValueError(f'{len(mismatched)} shape mismatch(es) against the '
                         f'{name} backbone.{hint} ' +
                         list_keys(mismatched, limit=6, sep='; ') + '.')
    matched = sorted(set(source) & set(target))
    if not matched:
        raise ValueError(
            f'none of the {len(source)} checkpoint keys matches the {name} '
            f'backbone (its keys: {list_keys(sorted(target))}): this '
            'converter writes mmpretrain VisionTransformer keys, use '
            "type='mmpretrain.VisionTransformer' (or a subclass) in the "
            'config.')
    missing = sorted(set(target) - set(source))
    # A frozen norm (linear probing freezes the final norm) is never
    # trained, so it must come from the checkpoint.
    frozen = {k for k, p in backbone.named_parameters() if not p.requires_grad}
    required = [
        k for k in missing
        if not (k.startswith(OPTIONAL_TARGET_KEYS)
                or k.endswith(FRESH_TARGET_SUFFIXES)) or k in frozen
    ]
    if required and not allow_missing:
        raise ValueError(
            f'the {name} backbone expects {len(required)} key(s) the '
            f'checkpoint lacks: {list_keys(required)} (checkpoint: '
            f'{count_blocks(source)} blocks, backbone: '
            f'{count_blocks(target)}). Wrong checkpoint or config? Pass '
            '--allow-missing to keep them randomly initialized.')
    return dict(target=name,
                matched=len(matched),
                missing=missing,
                unexpected=sorted(set(source) - set(target)),
                notes=notes)


def backbone_grid(backbone: nn.Module) -> Optional[Grid]:
    """The patch grid (h, w) of a ViT backbone's pos_embed, if it has one."""
    grid = getattr(backbone, 'patch_resolution', None)
    if grid is not None:
        return to_pair(grid)
    pos_embed = getattr(backbone, 'pos_embed', None)
    if not torch.is_tensor(pos_embed) or pos_embed.dim() != 3:
        return None
    num_grid = pos_embed.shape[1] - getattr(backbone, 'num_extra_tokens', 1)
    side = math.isqrt(max(num_grid, 0))
    return (side, side) if side * side == num_grid else None


def build_backbone_from_config(config) -> nn.Module:
    """``model.backbone`` of a config (file or ``Config``) built as its
    runner would (``custom_imports``, ``default_scope``), without
    ``init_cfg``."""
    from mmengine.config import Config
    from mmengine.registry import MODELS, DefaultScope
    from mmengine.utils import import_modules_from_strings

    if isinstance(config, Config):
        cfg, config = config, config.filename or 'the config'
    elif not osp.isfile(config):
        raise FileNotFoundError(f'config not found: {config}')
    else:
        cfg = Config.fromfile(config)
    if cfg.get('custom_imports'):
        import_modules_from_strings(**cfg['custom_imports'])
    backbone_cfg = (cfg.get('model') or {}).get('backbone')
    if not backbone_cfg:
        raise ValueError(f'{config} has no model.backbone to check the '
                         'checkpoint against.')
    backbone_cfg = copy.deepcopy(backbone_cfg.to_dict(
    ) if hasattr(backbone_cfg, 'to_dict') else dict(backbone_cfg))
    backbone_cfg['init_cfg'] = None
    scope = cfg.get('default_scope')
    try:
        with DefaultScope.overwrite_default_scope(scope):
            return MODELS.build(backbone_cfg)
    except Exception as e:
        raise ValueError(
            f'cannot build model.backbone (type={backbone_cfg.get("type")!r})'
            f' of {config} under default_scope={scope!r}: '
            f'{type(e).__name__}: {e}') from e


def _pos_embed_mismatch(source: StateDict, backbone: nn.Module,
                        src_shape: tuple, tgt_shape: tuple,
                        prefix: str) -> Optional[str]:
    """Why ``pos_embed`` cannot load, or None when only the class-token
    row differs (mmpretrain drops it for ``with_cls_token=False``) or only
    the distillation token's (``DistilledViT`` inserts it)."""
    if len(src_shape) == 3 and len(tgt_shape) == 3 \
            and src_shape[2] == tgt_shape[2]:
        tgt_extra = getattr(backbone, 'num_extra_tokens', 1)
        if src_shape[1] == tgt_shape[1] + 1 and tgt_extra == 0 \
                and 'cls_token' in source:
            return None
        if src_shape[1] + 1 == tgt_shape[1] and tgt_extra == 2 \
                and 'dist_token' not in source \
                and hasattr(backbone, 'dist_token'):
            return None
        return (f'{prefix}pos_embed: checkpoint {src_shape}, backbone '
                f'{tgt_shape} (patch grid '
                f'{grid_str(backbone_grid(backbone))}): the image or patch '
                'size differs; pass --interpolate-pos-embed to resize it.')
    return (f'{prefix}pos_embed: checkpoint {src_shape}, backbone '
            f'{tgt_shape}: the embedding width differs (wrong checkpoint or '
            'arch?).')


def grid_str(grid) -> str:
    return 'unknown' if grid is None else f'{grid[0]}x{grid[1]}'


def count_blocks(state: dict) -> int:
    return len({
        m.group(1)
        for m in (re.match(r'layers\.(\d+)\.', k) for k in state) if m
    })
