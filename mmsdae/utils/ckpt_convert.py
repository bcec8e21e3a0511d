# Copyright (c) OpenMMLab. All rights reserved.
"""Convert SdAE / MAE encoder checkpoints for downstream mmpretrain ViTs.

Downstream configs (classification, and detection / segmentation through
``type='mmpretrain.VisionTransformer'``) load an encoder with
``init_cfg=dict(type='Pretrained', checkpoint=..., prefix='backbone.')``, so
the output layout is ``{'state_dict': {'backbone.<VisionTransformer key>':
tensor}, 'meta': {...}}``. Two source layouts are read:

* ``'mmsdae'``: an mmsdae pre-training checkpoint, the student encoder under
  ``backbone.`` and the EMA teacher under ``teacher.`` (mmpretrain key
  names). A file this module wrote (``backbone.*`` only) is one as well.
* ``'timm'``: the official MAE / SdAE releases (timm ``VisionTransformer``
  key names: ``blocks.i.norm1``, ``patch_embed.proj`` ...), possibly wrapped
  in ``{'model': ...}`` / ``{'state_dict': ...}`` and prefixed by
  ``module.`` (DDP); see :data:`TIMM_TO_MMPRETRAIN`.

:func:`convert_checkpoint` chains the steps; the functions it calls are
public so that each can be used and tested on its own. Every error names the
problem and, where there is one, the fix (as a ``tools/model_converters/
sdae_to_vit.py`` option).
"""
import copy
import math
import os
import os.path as osp
import pickle
import re
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import torch
import torch.nn.functional as F
from torch import nn

from .atomic import atomic_write
from .checkpoint import allow_mmengine_checkpoint_globals

StateDict = Dict[str, torch.Tensor]
Grid = Tuple[int, int]

SRC_FORMATS = ('mmsdae', 'timm')
# Where an mmsdae pre-training checkpoint keeps each encoder.
ENCODER_PREFIXES = {'student': 'backbone.', 'teacher': 'teacher.'}

# timm / MAE ``VisionTransformer`` name -> mmpretrain ``VisionTransformer``
# name, checked against mmpretrain 1.2 (``final_norm=True`` has ``ln1``,
# ``out_type='avg_featmap'`` adds ``ln2``, ``pre_norm=True`` adds
# ``pre_norm``). ``fc_norm`` is the norm after global pooling of MAE
# fine-tuned checkpoints, which is mmpretrain's ``ln2``.
TIMM_TO_MMPRETRAIN: List[Tuple[str, str]] = [
    (r'cls_token', r'cls_token'),
    (r'pos_embed', r'pos_embed'),
    (r'patch_embed\.proj\.(weight|bias)', r'patch_embed.projection.\1'),
    (r'norm_pre\.(weight|bias)', r'pre_norm.\1'),
    (r'blocks\.(\d+)\.norm1\.(weight|bias)', r'layers.\1.ln1.\2'),
    (r'blocks\.(\d+)\.attn\.qkv\.(weight|bias)', r'layers.\1.attn.qkv.\2'),
    (r'blocks\.(\d+)\.attn\.proj\.(weight|bias)', r'layers.\1.attn.proj.\2'),
    (r'blocks\.(\d+)\.norm2\.(weight|bias)', r'layers.\1.ln2.\2'),
    (r'blocks\.(\d+)\.mlp\.fc1\.(weight|bias)',
     r'layers.\1.ffn.layers.0.0.\2'),
    (r'blocks\.(\d+)\.mlp\.fc2\.(weight|bias)', r'layers.\1.ffn.layers.1.\2'),
    (r'norm\.(weight|bias)', r'ln1.\1'),
    (r'fc_norm\.(weight|bias)', r'ln2.\1'),
]
_TIMM_RULES = [(re.compile(src + '$'), dst) for src, dst in TIMM_TO_MMPRETRAIN]

# timm-format keys that are no part of an encoder: the MAE decoder, the mask
# token, classifier heads.
TIMM_IGNORED = re.compile(
    r'(decoder[._]|mask_token$|head\.|head_dist\.|pre_logits\.)')

# Names of a ViT's tensors, to recognize a layout anywhere in a key.
_MMPRETRAIN_VIT = re.compile(
    r'(patch_embed\.projection\.|layers\.\d+\.(ln1|ln2|attn|ffn)\.)')
_TIMM_VIT = re.compile(
    r'(?:^|\.)(patch_embed\.proj\.|blocks\.\d+\.(norm1|norm2|attn|mlp)\.)')

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


@dataclass
class ConversionReport:
    """What :func:`convert_checkpoint` did; ``str()`` is the summary."""
    src_format: str = ''
    encoder: Optional[str] = None
    src_prefix: Optional[str] = None
    num_tensors: int = 0
    arch: Dict[str, Any] = field(default_factory=dict)
    ignored: List[str] = field(default_factory=list)
    dropped_unknown: List[str] = field(default_factory=list)
    pos_embed: Optional[str] = None
    target: Optional[str] = None
    missing: List[str] = field(default_factory=list)
    unexpected: List[str] = field(default_factory=list)
    notes: List[str] = field(default_factory=list)
    dst: Optional[str] = None

    def __str__(self) -> str:
        arch = self.arch
        lines = [
            f'source format: {self.src_format}' +
            (f' (sub-module {self.src_prefix!r})' if self.src_prefix else '')
        ]
        if self.encoder:
            lines.append(f'encoder: {self.encoder}')
        lines.append(
            f'tensors: {self.num_tensors} (ViT: embed_dims='
            f'{arch.get("embed_dims")}, num_layers={arch.get("num_layers")}, '
            f'feedforward_channels={arch.get("feedforward_channels")}, '
            f'patch_size={arch.get("patch_size")}, pos_embed grid='
            f'{_grid_str(arch.get("grid"))}, final norm (ln1): '
            f'{"yes" if arch.get("final_norm") else "no"})')
        lines.append('ignored (not encoder weights): ' +
                     (_summarize_keys(self.ignored) or 'none'))
        if self.dropped_unknown:
            lines.append('dropped unknown keys (--allow-unknown): ' +
                         _summarize_keys(self.dropped_unknown))
        lines.append('pos_embed: ' + (self.pos_embed or 'kept as is'))
        if self.target:
            lines.append(f'checked against: {self.target}')
            lines.append('  missing in the checkpoint: ' +
                         (_list_keys(self.missing) or 'none'))
            lines.append('  unexpected (not loaded): ' +
                         (_list_keys(self.unexpected) or 'none'))
        else:
            lines.append('checked against: internal consistency only '
                         '(pass --config to check a downstream backbone)')
        lines += [f'note: {note}' for note in self.notes]
        if self.dst:
            lines.append(f'destination: {self.dst}')
        return '\n'.join(lines)


def load_checkpoint_file(path: str, weights_only: bool = True) -> dict:
    """Load a checkpoint file on the CPU.

    Loads with ``torch.load(weights_only=True)`` (the torch >= 2.6 default)
    after allow-listing the globals of MMEngine checkpoints
    (:func:`allow_mmengine_checkpoint_globals`).

    Raises:
        FileNotFoundError: naming ``path`` if it is not a file.
        ValueError: if the file is not a PyTorch checkpoint holding a dict,
            or holds Python objects that ``weights_only`` loading refuses
            (then ``weights_only=False`` loads it, for trusted files only).
    """
    if not osp.isfile(path):
        raise FileNotFoundError(f'checkpoint not found: {path}')
    allow_mmengine_checkpoint_globals()
    try:
        ckpt = torch.load(path, map_location='cpu', weights_only=weights_only)
    except pickle.UnpicklingError as e:
        lines = [line.strip() for line in str(e).splitlines()]
        refused = [line for line in lines if 'Unsupported global' in line]
        if weights_only and refused:
            raise ValueError(
                f'{path} holds Python objects besides tensors that '
                f'torch.load(weights_only=True) refuses ({refused[0]}): if '
                'you trust the file, pass --unsafe-load '
                '(torch.load(weights_only=False)).') from e
        raise ValueError(
            f'{path} is not a readable PyTorch checkpoint '
            f'({type(e).__name__}: {_unpickler_reason(e)}).') from e
    except Exception as e:  # corrupt / truncated / not a torch file
        raise ValueError(f'{path} is not a readable PyTorch checkpoint '
                         f'({type(e).__name__}: {e}).') from e
    if not isinstance(ckpt, dict):
        raise ValueError(f'{path} holds a {type(ckpt).__name__}, not a '
                         'checkpoint dict.')
    return ckpt


def unwrap_state_dict(ckpt: dict) -> Tuple[StateDict, List[str]]:
    """The tensors of a checkpoint, unwrapped and without ``module.``.

    Takes ``ckpt['state_dict']`` (MMEngine) or ``ckpt['model']`` (MAE /
    SdAE releases), else ``ckpt`` itself when it holds tensors, else its
    dicts of tensors flattened as ``<entry>.<key>`` (pick one with
    ``--src-prefix``, e.g. ``teacher.``); strips the ``module.`` prefix of
    DDP-wrapped models.

    Returns:
        ``(state, skipped)``: the tensors, and the keys of non-tensor entries
        that were left out.

    Raises:
        ValueError: if there is no state dict, naming the top-level keys.
    """
    for key in ('state_dict', 'model'):
        if isinstance(ckpt.get(key), dict):
            ckpt = ckpt[key]
            break
    else:
        # e.g. the RC-MAE release: {'student': {...}, 'teacher': {...}}
        nested = {
            f'{outer}.{inner}': value
            for outer, sub in ckpt.items() if isinstance(sub, dict)
            for inner, value in sub.items() if torch.is_tensor(value)
        }
        if nested and not any(torch.is_tensor(v) for v in ckpt.values()):
            ckpt = nested
        if not any(torch.is_tensor(v) for v in ckpt.values()):
            raise ValueError(
                'no state dict in the checkpoint (top-level keys: '
                f'{sorted(map(str, ckpt))[:20]}): expected a "state_dict" or '
                '"model" entry, or a dict of tensors.')
    state, skipped = {}, []
    for key, value in ckpt.items():
        if not torch.is_tensor(value):
            skipped.append(str(key))
            continue
        if key.startswith('module.'):
            key = key[len('module.'):]
        state[key] = value
    return state, skipped


def select_prefix(state: StateDict, prefix: str) -> StateDict:
    """The entries under ``prefix`` (e.g. ``'encoder.'``), prefix removed.

    Raises:
        KeyError: if no key starts with ``prefix``, naming the top-level
            names that exist.
    """
    if not prefix.endswith('.'):
        prefix += '.'
    out = {
        k[len(prefix):]: v
        for k, v in state.items() if k.startswith(prefix)
    }
    if not out:
        raise KeyError(f'no "{prefix}*" keys in the checkpoint (top-level '
                       f'names: {_top_level(state)}): pass one of those as '
                       '--src-prefix.')
    return out


def detect_format(state: StateDict) -> str:
    """``'mmsdae'`` or ``'timm'``, from the key names of ``state``.

    ``'mmsdae'``: mmpretrain ViT names under ``backbone.`` / ``teacher.``
    (``backbone.layers.0.attn.qkv.weight``); ``'timm'``: timm ViT names
    (``blocks.0.attn.qkv.weight``, ``patch_embed.proj.weight``), under any
    prefix.

    Raises:
        ValueError: if neither or both layouts are found.
    """
    mmsdae = any(
        k.split('.', 1)[0] in ('backbone', 'teacher')
        and _MMPRETRAIN_VIT.match(k.split('.', 1)[-1]) for k in state)
    timm = any(_TIMM_VIT.search(k) for k in state)
    if mmsdae and timm:
        raise ValueError(
            'the checkpoint has both mmsdae (backbone.layers.*) and timm '
            '(blocks.*) ViT keys: pass --src-format mmsdae or timm (and '
            '--src-prefix to pick a sub-module).')
    if mmsdae:
        return 'mmsdae'
    if timm:
        return 'timm'
    hint = ''
    if any(_MMPRETRAIN_VIT.match(k) for k in state):
        hint = (' The keys are mmpretrain ViT names without a "backbone." / '
                '"teacher." prefix: to pick the teacher of an mmsdae '
                'checkpoint use --encoder teacher, not --src-prefix.')
    raise ValueError(
        'no ViT encoder keys in the checkpoint (top-level names: '
        f'{_top_level(state)}): expected an SdAE pre-training checkpoint '
        '(no "backbone.*" keys of an mmpretrain ViT found) or a timm / MAE '
        'ViT ("blocks.*", "patch_embed.proj.*").' + hint)


def timm_prefixes(state: StateDict) -> List[str]:
    """The prefixes under which ``state`` holds timm ViT keys (``''`` for
    top-level ones), e.g. ``['encoder.', 'teacher.']``."""
    found = set()
    for key in state:
        match = _TIMM_VIT.search(key)
        if match:
            found.add(key[:match.start(1)])
    return sorted(found)


def timm_to_mmpretrain(
        state_dict: StateDict,
        allow_unknown: bool = False) -> Tuple[StateDict, List[str], List[str]]:
    """Rename a timm / MAE ViT state dict to mmpretrain VisionTransformer.

    Implements :data:`TIMM_TO_MMPRETRAIN`; tensors are not copied or
    changed (timm's fused ``qkv`` and mmpretrain's share the layout).

    Args:
        state_dict: timm-named tensors (no ``module.`` or other prefix).
        allow_unknown: drop keys that are neither ViT encoder keys nor known
            to be irrelevant (see :data:`TIMM_IGNORED`) instead of raising.

    Returns:
        ``(converted, ignored, dropped_unknown)``: mmpretrain-named tensors
        (without ``backbone.``), the known-irrelevant keys left out
        (``decoder_*``, ``mask_token``, ``head.*`` ...) and the unknown keys
        dropped because of ``allow_unknown``.

    Raises:
        KeyError: naming the unknown keys, unless ``allow_unknown``.
        ValueError: if no ViT key was found.
    """
    converted, ignored, unknown = {}, [], []
    for key, value in state_dict.items():
        for pattern, target in _TIMM_RULES:
            if pattern.match(key):
                converted[pattern.sub(target, key)] = value
                break
        else:
            (ignored if TIMM_IGNORED.match(key) else unknown).append(key)
    if unknown and not allow_unknown:
        raise KeyError(
            f'{len(unknown)} unknown key(s) in the timm-format checkpoint: '
            f'{_list_keys(unknown)}. They are neither ViT encoder keys nor '
            'known decoder / head keys: pick the encoder sub-module with '
            '--src-prefix, or pass --allow-unknown to drop them.')
    if not converted:
        raise ValueError(
            'no timm ViT encoder keys (cls_token, pos_embed, patch_embed.'
            f'proj.*, blocks.*) in the checkpoint; its keys: '
            f'{_list_keys(sorted(state_dict))}.')
    return converted, ignored, (unknown if allow_unknown else [])


def default_encoder(state_dict: StateDict,
                    meta: Optional[dict] = None) -> str:
    """The encoder to export when none is asked for.

    The run's ``model.feature_encoder`` when the checkpoint's config (MMEngine
    keeps it in ``meta['cfg']``) sets one; otherwise what each method's paper
    transfers: the EMA teacher for RC-MAE (RC-MAE appendix E.2 / F.1),
    recognised by its teacher decoder (``teacher_neck.*``), the student for
    SdAE (SdAE Sec. 4.4) and anything else.
    """
    cfg_text = (meta or {}).get('cfg') if isinstance(meta, dict) else None
    if isinstance(cfg_text, str):
        found = re.findall(
            r"feature_encoder\s*=\s*['\"](student|teacher)['\"]", cfg_text)
        if len(set(found)) == 1:
            return found[0]
    if any(k.startswith('teacher_neck.') for k in state_dict):
        return 'teacher'
    return 'student'


def extract_encoder(state_dict: StateDict, encoder: str = 'student') -> dict:
    """Keys of ``encoder`` of an mmsdae checkpoint renamed to ``backbone.*``.

    The student lives under ``backbone.``, the EMA teacher under
    ``teacher.`` (SdAE Sec. 4.4 uses the student downstream).

    Raises:
        ValueError: for an unknown ``encoder``.
        KeyError: if the checkpoint has no keys of that encoder (e.g. it is
            not an SdAE pre-training checkpoint, or has no teacher).
    """
    if encoder not in ENCODER_PREFIXES:
        raise ValueError(f'encoder={encoder!r}: choose one of '
                         f'{sorted(ENCODER_PREFIXES)}.')
    prefix = ENCODER_PREFIXES[encoder]
    out = {
        'backbone.' + k[len(prefix):]: v
        for k, v in state_dict.items() if k.startswith(prefix)
    }
    if not out:
        found = sorted({k.split('.')[0] for k in state_dict})
        raise KeyError(
            f'no "{prefix}*" keys in the checkpoint (top-level keys: '
            f'{found}): pass an SdAE pre-training checkpoint, e.g. '
            'work_dirs/<config>/epoch_300.pth.')
    return out


def interpolate_pos_embed(
        pos_embed: torch.Tensor,
        new_grid: Union[int, Sequence[int]],
        num_extra_tokens: int = 1,
        old_grid: Optional[Sequence[int]] = None) -> torch.Tensor:
    """Resize the patch-grid part of a ``(1, extra + h * w, C)`` pos_embed.

    MAE's ``interpolate_pos_embed``: the ``num_extra_tokens`` leading rows
    (the class token's) are kept, the grid rows are resized bicubically
    (``align_corners=False``). The same grid returns ``pos_embed`` as is.

    Args:
        pos_embed: (1, extra + h * w, C).
        new_grid: target ``(H, W)`` or side ``S`` of a square grid.
        num_extra_tokens: leading non-grid rows.
        old_grid: ``(h, w)``; inferred as a square grid when omitted.

    Raises:
        ValueError: for a tensor that is no such pos_embed.
    """
    if pos_embed.dim() != 3 or pos_embed.shape[0] != 1:
        raise ValueError('pos_embed must have shape (1, tokens, channels), '
                         f'got {tuple(pos_embed.shape)}.')
    new_h, new_w = _pair(new_grid)
    num_grid = pos_embed.shape[1] - num_extra_tokens
    if old_grid is None:
        side = math.isqrt(max(num_grid, 0))
        if side * side != num_grid:
            raise ValueError(
                f'pos_embed has {num_grid} patch positions after '
                f'{num_extra_tokens} extra token(s), not a square grid: pass '
                'old_grid.')
        old_grid = (side, side)
    old_h, old_w = _pair(old_grid)
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

    Checks the block indices are 0..L-1 with every block's weights present,
    and each tensor's shape against the width D of the patch projection and
    the MLP width F (e.g. ``attn.qkv.weight`` is (3D, D)).

    Returns:
        dict: ``embed_dims``, ``num_layers``, ``feedforward_channels``,
        ``patch_size`` (kernel (h, w)), ``grid`` (pos_embed grid (h, w), or
        None when not square), ``num_extra_tokens``, ``final_norm``
        (``ln1`` present), ``extra_keys`` (keys that are no ViT tensor).

    Raises:
        ValueError: listing every problem found.
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
            f'{_list_keys(sorted(state), limit=6)}).')
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
    """Compare ``state`` with what ``backbone.load_state_dict`` expects.

    Mirrors loading with ``init_cfg=dict(type='Pretrained', prefix=prefix)``:
    the keys under ``prefix`` are matched with ``backbone.state_dict()``.

    Returns:
        dict: ``target`` (class name), ``matched`` (number of keys loaded),
        ``missing`` (backbone keys the checkpoint lacks; only
        :data:`OPTIONAL_TARGET_KEYS` that the backbone trains, unless
        ``allow_missing``),
        ``unexpected`` (checkpoint keys the backbone has no use for, e.g.
        ``ln1.*`` for ``final_norm=False``), ``notes``.

    Raises:
        ValueError: on any shape mismatch (key, source and target shape; a
            pos_embed grid mismatch says to pass --interpolate-pos-embed,
            unless ``resize_pos_embed``: the mmpretrain ViT resizes a
            different grid itself when it loads the weights),
            when no key matches, or when other keys are missing (e.g. fewer
            blocks than the backbone) unless ``allow_missing``.
    """
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
                         _list_keys(mismatched, limit=6, sep='; ') + '.')
    matched = sorted(set(source) & set(target))
    if not matched:
        raise ValueError(
            f'none of the {len(source)} checkpoint keys matches the {name} '
            f'backbone (its keys: {_list_keys(sorted(target))}): this '
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
            f'checkpoint lacks: {_list_keys(required)} (checkpoint: '
            f'{_count_blocks(source)} blocks, backbone: '
            f'{_count_blocks(target)}). Wrong checkpoint or config? Pass '
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
        return _pair(grid)
    pos_embed = getattr(backbone, 'pos_embed', None)
    if not torch.is_tensor(pos_embed) or pos_embed.dim() != 3:
        return None
    num_grid = pos_embed.shape[1] - getattr(backbone, 'num_extra_tokens', 1)
    side = math.isqrt(max(num_grid, 0))
    return (side, side) if side * side == num_grid else None


def build_backbone_from_config(config) -> nn.Module:
    """Build ``model.backbone`` of a config file, as its runner would.

    ``config`` is a file name or an ``mmengine.Config``. Imports the
    config's ``custom_imports`` and builds under its
    ``default_scope``, so cross-scope types such as
    ``'mmpretrain.VisionTransformer'`` in an mmdet / mmseg config resolve
    (MMEngine imports ``<scope>.registry`` on demand). ``init_cfg`` is
    dropped: nothing is loaded.

    Raises:
        FileNotFoundError: if the config does not exist.
        ValueError: if it has no ``model.backbone`` or building fails.
    """
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


def convert_checkpoint(
        ckpt: dict,
        src_format: str = 'auto',
        encoder: Optional[str] = None,
        src_prefix: Optional[str] = None,
        allow_unknown: bool = False,
        backbone: Optional[nn.Module] = None,
        img_size: Optional[int] = None,
        patch_size: Optional[int] = None,
        interpolate: bool = False,
        allow_missing: bool = False) -> Tuple[StateDict, ConversionReport]:
    """Convert a loaded checkpoint to ``backbone.*`` mmpretrain ViT keys.

    Steps: :func:`unwrap_state_dict`, :func:`select_prefix` (``src_prefix``),
    :func:`detect_format` (``src_format='auto'``), :func:`extract_encoder`
    or :func:`timm_to_mmpretrain`, :func:`check_consistency`, pos_embed grid
    vs. the target (``backbone``, or ``img_size`` / ``patch_size``) with
    :func:`interpolate_pos_embed` when ``interpolate``, and
    :func:`check_against_backbone` when ``backbone`` is given.

    Args:
        encoder: ``'student'`` or ``'teacher'`` of an mmsdae checkpoint;
            ``None``: :func:`default_encoder` (the run's
            ``feature_encoder``, else the method's choice). For the timm
            format pick a sub-module with ``src_prefix`` instead.

    Returns:
        ``(state, report)``: the ``backbone.*`` tensors and a
        :class:`ConversionReport`.

    Raises:
        ValueError / KeyError: naming the problem (see the steps).
    """
    if src_format not in ('auto', ) + SRC_FORMATS:
        raise ValueError(f'src_format={src_format!r}: choose auto or one of '
                         f'{SRC_FORMATS}.')
    if backbone is not None and (img_size or patch_size):
        raise ValueError('pass either a config (the target backbone) or '
                         '--img-size / --patch-size, not both.')
    report = ConversionReport(src_prefix=src_prefix)
    state, skipped = unwrap_state_dict(ckpt)
    report.ignored += skipped
    if src_prefix:
        state = select_prefix(state, src_prefix)
    fmt = detect_format(state) if src_format == 'auto' else src_format
    report.src_format = fmt
    if fmt == 'mmsdae':
        report.encoder = encoder or default_encoder(state, ckpt.get('meta'))
        if encoder is None and report.encoder == 'teacher':
            report.notes.append(
                'exporting the teacher (the run\'s feature_encoder, or an '
                'RC-MAE checkpoint: the paper\'s choice, appendix F.1); pass '
                '--encoder student for the student.')
        out = extract_encoder(state, report.encoder)
        kept = ENCODER_PREFIXES[report.encoder]
        report.ignored += [k for k in state if not k.startswith(kept)]
    else:
        if encoder == 'teacher':
            raise ValueError(
                '--encoder teacher selects the teacher of an mmsdae '
                'checkpoint; in a timm-format file pick the teacher with '
                '--src-prefix (e.g. teacher.).')
        prefixes = timm_prefixes(state)
        if prefixes and '' not in prefixes:
            raise ValueError(
                f'the timm ViT keys are under {prefixes}: pass one of them '
                'as --src-prefix to pick that encoder.')
        converted, ignored, dropped = timm_to_mmpretrain(
            state, allow_unknown=allow_unknown)
        out = {'backbone.' + k: v for k, v in converted.items()}
        report.ignored += ignored
        report.dropped_unknown = dropped
    arch = check_consistency(out)
    report.arch = arch
    if arch['extra_keys']:
        report.notes.append('keys that are no ViT tensor (kept): ' +
                            _list_keys(arch['extra_keys']))

    if backbone is not None:  # report a wrong width before the grid
        without_pos = dict(out)
        without_pos.pop('backbone.pos_embed', None)
        check_against_backbone(without_pos, backbone, allow_missing=True)
    target_grid = _target_grid(arch, backbone, img_size, patch_size)
    if target_grid is not None and 'backbone.pos_embed' in out \
            and arch['grid'] != target_grid:
        old = _grid_str(arch['grid'])
        if not interpolate:
            raise ValueError(
                f'pos_embed grid mismatch: the checkpoint has a {old} patch '
                f'grid, the target {_grid_str(target_grid)}: pass '
                '--interpolate-pos-embed to resize it (bicubic, as MAE).')
        if arch['grid'] is None:
            raise ValueError(
                'cannot interpolate pos_embed: its '
                f'{out["backbone.pos_embed"].shape[1]} tokens are no square '
                'patch grid (plus a class token), so the source grid is '
                'unknown.')
        out['backbone.pos_embed'] = interpolate_pos_embed(
            out['backbone.pos_embed'],
            target_grid,
            num_extra_tokens=arch['num_extra_tokens'],
            old_grid=arch['grid'])
        report.pos_embed = (f'interpolated from a {old} to a '
                            f'{_grid_str(target_grid)} patch grid (bicubic, '
                            f'{arch["num_extra_tokens"]} extra-token row(s) '
                            'kept)')
    elif interpolate:
        if target_grid is None:
            raise ValueError('--interpolate-pos-embed needs a target grid: '
                             'pass --config, or --img-size (and '
                             '--patch-size).')
        report.pos_embed = (f'already on the target {_grid_str(target_grid)}'
                            ' grid, not interpolated')

    if backbone is not None:
        result = check_against_backbone(out,
                                        backbone,
                                        allow_missing=allow_missing)
        report.target = f'{result["target"]} ({result["matched"]} keys match)'
        report.missing = result['missing']
        report.unexpected = result['unexpected']
        report.notes += result['notes']
    report.num_tensors = len(out)
    return out, report


def save_atomic(obj: Any, dst: str, overwrite: bool = False) -> None:
    """``torch.save(obj, dst)`` that never leaves a partial ``dst``.

    Writes a temporary file next to ``dst`` and ``os.replace``-s it (atomic
    on POSIX and Windows within one file system); on any error the
    temporary file is removed and ``dst`` is untouched.

    Raises:
        FileExistsError: if ``dst`` exists and not ``overwrite``.
        FileNotFoundError: if the directory of ``dst`` does not exist.
    """
    dst = osp.abspath(dst)
    directory = osp.dirname(dst)
    if not osp.isdir(directory):
        raise FileNotFoundError(
            f'destination directory does not exist: {directory}')
    if osp.exists(dst) and not overwrite:
        raise FileExistsError(
            f'destination exists: {dst} (pass --force to overwrite it).')
    atomic_write(dst, lambda f: torch.save(obj, f))


def _target_grid(arch: dict, backbone: Optional[nn.Module],
                 img_size: Optional[int],
                 patch_size: Optional[int]) -> Optional[Grid]:
    """The patch grid the converted pos_embed must have, if known."""
    if backbone is not None:
        return backbone_grid(backbone)
    if not img_size:
        if patch_size:
            raise ValueError('--patch-size needs --img-size.')
        return None
    kernel = arch['patch_size']
    patch = _pair(patch_size) if patch_size else kernel
    if patch != kernel:
        raise ValueError(
            f'--patch-size {patch_size} differs from the checkpoint\'s patch '
            f'size {kernel[0]}x{kernel[1]}: a patch projection cannot be '
            'converted to another patch size.')
    img_h, img_w = _pair(img_size)
    if img_h % patch[0] or img_w % patch[1]:
        raise ValueError(f'--img-size {img_size} is not divisible by the '
                         f'patch size {patch[0]}x{patch[1]}.')
    return (img_h // patch[0], img_w // patch[1])


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
                f'{_grid_str(backbone_grid(backbone))}): the image or patch '
                'size differs; pass --interpolate-pos-embed to resize it.')
    return (f'{prefix}pos_embed: checkpoint {src_shape}, backbone '
            f'{tgt_shape}: the embedding width differs (wrong checkpoint or '
            'arch?).')


def _unpickler_reason(error: Exception) -> str:
    """The line of torch's weights-only error that says what failed."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    for i, line in enumerate(lines[:-1]):
        if line.startswith('Please file an issue') or \
                line.endswith('WeightsUnpickler error:'):
            return lines[i + 1]
    return lines[0] if lines else repr(error)


def _pair(value) -> Grid:
    if isinstance(value, int):
        return (value, value)
    value = tuple(int(v) for v in value)
    if len(value) != 2:
        raise ValueError(f'expected an int or a pair, got {value}')
    return value


def _grid_str(grid) -> str:
    return 'unknown' if grid is None else f'{grid[0]}x{grid[1]}'


def _top_level(state: StateDict) -> List[str]:
    return sorted({k.split('.')[0] for k in state})


def _list_keys(keys: Sequence[str], limit: int = 12, sep: str = ', ') -> str:
    keys = list(keys)
    shown = sep.join(keys[:limit])
    return shown + (f', ... ({len(keys) - limit} more)'
                    if len(keys) > limit else '')


def _summarize_keys(keys: Sequence[str]) -> str:
    """``decoder_blocks.* (96), mask_token``: keys grouped by first name."""
    groups: Dict[str, List[str]] = {}
    for key in keys:
        groups.setdefault(key.split('.')[0], []).append(key)
    return ', '.join(
        name if members == [name] else f'{name}.* ({len(members)})'
        for name, members in sorted(groups.items()))


def _count_blocks(state: dict) -> int:
    return len({
        m.group(1)
        for m in (re.match(r'layers\.(\d+)\.', k) for k in state) if m
    })
