"""Export one encoder of a checkpoint as ``backbone.*`` mmpretrain ViT keys.

Downstream configs load an encoder with ``init_cfg=dict(type='Pretrained',
checkpoint=..., prefix='backbone.')``, so :func:`convert_checkpoint` writes
``{'backbone.<VisionTransformer key>': tensor}`` from any layout
:mod:`.formats` reads, checked with :mod:`.vit` and described by a
:class:`ConversionReport`. ``tools/model_converters/sdae_to_vit.py`` is its
command line; every error names the fix as one of its options.
"""
import re
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Tuple

from torch import nn

from ..grid import to_pair
from .files import StateDict, unwrap_state_dict
from .formats import (FORMATS, convert_encoder, detect_format, list_keys,
                      summarize_keys, top_level)
from .vit import (Grid, backbone_grid, check_against_backbone,
                  check_consistency, grid_str, interpolate_pos_embed)

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
            f'{grid_str(arch.get("grid"))}, final norm (ln1): '
            f'{"yes" if arch.get("final_norm") else "no"})')
        lines.append('ignored (not encoder weights): ' +
                     summarize_keys(self.ignored))
        if self.dropped_unknown:
            lines.append('dropped unknown keys (--allow-unknown): ' +
                         summarize_keys(self.dropped_unknown))
        lines.append('pos_embed: ' + (self.pos_embed or 'kept as is'))
        if self.target:
            lines.append(f'checked against: {self.target}')
            lines.append('  missing in the checkpoint: ' +
                         (list_keys(self.missing) or 'none'))
            lines.append('  unexpected (not loaded): ' +
                         (list_keys(self.unexpected) or 'none'))
        else:
            lines.append('checked against: internal consistency only '
                         '(pass --config to check a downstream backbone)')
        lines += [f'note: {note}' for note in self.notes]
        if self.dst:
            lines.append(f'destination: {self.dst}')
        return '\n'.join(lines)


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
                       f'names: {top_level(state)}): pass one of those as '
                       '--src-prefix.')
    return out


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
    :func:`detect_format` (``src_format='auto'``), the format's converter
    (:func:`convert_encoder`), :func:`check_consistency`, pos_embed grid
    vs. the target (``backbone``, or ``img_size`` / ``patch_size``) with
    :func:`interpolate_pos_embed` when ``interpolate``, and
    :func:`check_against_backbone` when ``backbone`` is given.

    Args:
        encoder: ``'student'`` or ``'teacher'`` of an mmsdae or DINO
            checkpoint; ``None``: :func:`default_encoder` (the run's
            ``feature_encoder``, else the method's choice; DINO's teacher).
            For the timm format pick a sub-module with ``src_prefix``.

    Returns ``(backbone.* tensors, ConversionReport)``.
    """
    if src_format not in ('auto', ) + FORMATS:
        raise ValueError(f'src_format={src_format!r}: choose auto or one of '
                         f'{FORMATS}.')
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
    elif fmt == 'dino':
        report.encoder = encoder or 'teacher'  # what DINO evaluates
    converted, ignored, dropped = convert_encoder(
        state, fmt, report.encoder or encoder, allow_unknown)
    out = {'backbone.' + k: v for k, v in converted.items()}
    report.ignored += ignored
    report.dropped_unknown = dropped
    arch = check_consistency(out)
    report.arch = arch
    if arch['extra_keys']:
        report.notes.append('keys that are no ViT tensor (kept): ' +
                            list_keys(arch['extra_keys']))

    if backbone is not None:  # report a wrong width before the grid
        without_pos = dict(out)
        without_pos.pop('backbone.pos_embed', None)
        check_against_backbone(without_pos, backbone, allow_missing=True)
    target_grid = _target_grid(arch, backbone, img_size, patch_size)
    if target_grid is not None and 'backbone.pos_embed' in out \
            and arch['grid'] != target_grid:
        old = grid_str(arch['grid'])
        if not interpolate:
            raise ValueError(
                f'pos_embed grid mismatch: the checkpoint has a {old} patch '
                f'grid, the target {grid_str(target_grid)}: pass '
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
                            f'{grid_str(target_grid)} patch grid (bicubic, '
                            f'{arch["num_extra_tokens"]} extra-token row(s) '
                            'kept)')
    elif interpolate:
        if target_grid is None:
            raise ValueError('--interpolate-pos-embed needs a target grid: '
                             'pass --config, or --img-size (and '
                             '--patch-size).')
        report.pos_embed = (f'already on the target {grid_str(target_grid)}'
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
    patch = to_pair(patch_size) if patch_size else kernel
    if patch != kernel:
        raise ValueError(
            f'--patch-size {patch_size} differs from the checkpoint\'s patch '
            f'size {kernel[0]}x{kernel[1]}: a patch projection cannot be '
            'converted to another patch size.')
    img_h, img_w = to_pair(img_size)
    if img_h % patch[0] or img_w % patch[1]:
        raise ValueError(f'--img-size {img_size} is not divisible by the '
                         f'patch size {patch[0]}x{patch[1]}.')
    return (img_h // patch[0], img_w // patch[1])
