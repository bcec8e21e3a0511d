"""Checkpoint layouts and their key maps to mmpretrain's ViT names.

Like timm's ``checkpoint_filter_fn``: :func:`detect_format` recognises a
layout from its key names and :func:`convert_encoder` dispatches to one small
converter per layout, each returning mmpretrain ``VisionTransformer`` names
(no prefix), the keys it knowingly left out and the unknown keys it dropped:

* ``'mmsdae'``: an MMEngine checkpoint of this repository, the student
  under ``backbone.``, the EMA teacher under ``teacher.`` (mmpretrain names;
  a file ``tools/model_converters/sdae_to_vit.py`` wrote is one too);
* ``'timm'``: timm ``VisionTransformer`` names (``blocks.0.norm1``,
  ``patch_embed.proj``): the MAE / SdAE / DeiT releases, DINO's released
  backbone ``dino_vitbase16_pretrain.pth`` (:data:`TIMM_TO_MMPRETRAIN`);
* ``'dino'``: DINO's full training checkpoint (facebookresearch/dino
  ``main_dino.py``): ``{'teacher': {'backbone.*', 'head.*'}, 'student':
  {'module.backbone.*', 'module.head.*'}, 'optimizer', 'epoch', 'args',
  'dino_loss'}``; the teacher's backbone (what DINO evaluates and
  releases) in timm names, its projection head dropped (:func:`dino_to_timm`).

The MAE decoder (:data:`MAE_DECODER_TO_MMPRETRAIN`) and a timm classifier
head (:data:`TIMM_HEAD_TO_MMPRETRAIN`) have maps of their own for the frozen
teachers (:mod:`.teacher`).
"""
import re
from typing import Dict, List, Sequence, Tuple

from .files import StateDict

FORMATS = ('mmsdae', 'timm', 'dino')
# Where an mmsdae pre-training checkpoint keeps each encoder.
ENCODER_PREFIXES = {'student': 'backbone.', 'teacher': 'teacher.'}
# Where DINO's full checkpoint keeps each backbone (after unwrapping).
DINO_PREFIXES = {'teacher': 'teacher.backbone.',
                 'student': 'student.module.backbone.'}

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
# Official MAE decoder (facebookresearch/mae ``models_mae.py``) ->
# mmpretrain ``MAEPretrainDecoder`` (its norm is ``ln1``).
MAE_DECODER_TO_MMPRETRAIN: List[Tuple[str, str]] = [
    (r'decoder_embed\.(weight|bias)', r'decoder_embed.\1'),
    (r'mask_token', r'mask_token'),
    (r'decoder_pos_embed', r'decoder_pos_embed'),
    (r'decoder_blocks\.(\d+)\.norm1\.(weight|bias)',
     r'decoder_blocks.\1.ln1.\2'),
    (r'decoder_blocks\.(\d+)\.attn\.qkv\.(weight|bias)',
     r'decoder_blocks.\1.attn.qkv.\2'),
    (r'decoder_blocks\.(\d+)\.attn\.proj\.(weight|bias)',
     r'decoder_blocks.\1.attn.proj.\2'),
    (r'decoder_blocks\.(\d+)\.norm2\.(weight|bias)',
     r'decoder_blocks.\1.ln2.\2'),
    (r'decoder_blocks\.(\d+)\.mlp\.fc1\.(weight|bias)',
     r'decoder_blocks.\1.ffn.layers.0.0.\2'),
    (r'decoder_blocks\.(\d+)\.mlp\.fc2\.(weight|bias)',
     r'decoder_blocks.\1.ffn.layers.1.\2'),
    (r'decoder_norm\.(weight|bias)', r'ln1.\1'),
    (r'decoder_pred\.(weight|bias)', r'decoder_pred.\1'),
]
# timm classifier -> mmpretrain ``VisionTransformerClsHead``.
TIMM_HEAD_TO_MMPRETRAIN: List[Tuple[str, str]] = [
    (r'head\.(weight|bias)', r'layers.head.\1'),
]
# timm-format keys that are no part of an encoder: the MAE decoder, the mask
# token, classifier heads.
TIMM_IGNORED = re.compile(
    r'(decoder[._]|mask_token$|head\.|head_dist\.|pre_logits\.)')

# Names of a ViT's tensors, to recognize a layout anywhere in a key.
MMPRETRAIN_VIT = re.compile(
    r'(patch_embed\.projection\.|layers\.\d+\.(ln1|ln2|attn|ffn)\.)')
TIMM_VIT = re.compile(
    r'(?:^|\.)(patch_embed\.proj\.|blocks\.\d+\.(norm1|norm2|attn|mlp)\.)')


def _compile(rules):
    return [(re.compile(src + '$'), dst) for src, dst in rules]


_TIMM_RULES = _compile(TIMM_TO_MMPRETRAIN)
_DECODER_RULES = _compile(MAE_DECODER_TO_MMPRETRAIN)
_HEAD_RULES = _compile(TIMM_HEAD_TO_MMPRETRAIN)


def rename(state: StateDict, rules) -> Tuple[StateDict, List[str]]:
    """``(renamed, rest)``: the keys of ``state`` that a compiled rule of
    ``rules`` matches, renamed, and the keys none matches."""
    out, rest = {}, []
    for key, value in state.items():
        for pattern, target in rules:
            if pattern.match(key):
                out[pattern.sub(target, key)] = value
                break
        else:
            rest.append(key)
    return out, rest


def mae_decoder_to_mmpretrain(
        state: StateDict) -> Tuple[StateDict, List[str]]:
    """``(decoder, rest)``: the official MAE decoder keys renamed
    (:data:`MAE_DECODER_TO_MMPRETRAIN`), and the other keys."""
    return rename(state, _DECODER_RULES)


def timm_head_to_mmpretrain(
        state: StateDict) -> Tuple[StateDict, List[str]]:
    """``(head, rest)``: a timm classifier renamed
    (:data:`TIMM_HEAD_TO_MMPRETRAIN`), and the other keys."""
    return rename(state, _HEAD_RULES)


def timm_to_mmpretrain(
        state_dict: StateDict,
        allow_unknown: bool = False) -> Tuple[StateDict, List[str], List[str]]:
    """``(converted, ignored, dropped_unknown)``: a timm / MAE ViT state
    dict renamed to mmpretrain names (tensors unchanged: the fused ``qkv``
    layouts agree), the :data:`TIMM_IGNORED` keys, and the unknown keys
    dropped with ``allow_unknown`` (else a KeyError)."""
    converted, rest = rename(state_dict, _TIMM_RULES)
    ignored = [k for k in rest if TIMM_IGNORED.match(k)]
    unknown = [k for k in rest if not TIMM_IGNORED.match(k)]
    if unknown and not allow_unknown:
        raise KeyError(
            f'{len(unknown)} unknown key(s) in the timm-format checkpoint: '
            f'{list_keys(unknown)}. Pick the encoder sub-module with '
            '--src-prefix, or pass --allow-unknown to drop them.')
    if not converted:
        raise ValueError(
            'no timm ViT encoder keys (cls_token, pos_embed, patch_embed.'
            f'proj.*, blocks.*) in the checkpoint; its keys: '
            f'{list_keys(sorted(state_dict))}.')
    return converted, ignored, (unknown if allow_unknown else [])


def dino_to_timm(state: StateDict,
                 branch: str = 'teacher') -> Tuple[StateDict, List[str]]:
    """``(backbone, ignored)``: the ``branch`` backbone of an unwrapped DINO
    full checkpoint in timm names (as DINO's ``load_pretrained_weights``
    strips ``module.`` and ``backbone.``), and the other keys."""
    if branch not in DINO_PREFIXES:
        raise ValueError(f'DINO branch {branch!r}: choose one of '
                         f'{sorted(DINO_PREFIXES)}.')
    prefix = DINO_PREFIXES[branch]
    out = {k[len(prefix):]: v for k, v in state.items()
           if k.startswith(prefix)}
    if not out:
        raise ValueError(
            f'no "{prefix}*" keys: this DINO checkpoint has no {branch} '
            f'backbone (top-level names: {top_level(state)}).')
    return out, [k for k in state if not k.startswith(prefix)]


def timm_prefixes(state: StateDict) -> List[str]:
    """The prefixes under which ``state`` holds timm ViT keys (``''`` for
    top-level ones), e.g. ``['encoder.', 'teacher.']``."""
    found = set()
    for key in state:
        match = TIMM_VIT.search(key)
        if match:
            found.add(key[:match.start(1)])
    return sorted(found)


def is_dino(state: StateDict) -> bool:
    """Whether ``state`` is an unwrapped DINO full checkpoint."""
    prefixes = set(timm_prefixes(state))
    return bool(prefixes) and prefixes <= set(DINO_PREFIXES.values())


def detect_format(state: StateDict) -> str:
    """``'mmsdae'``, ``'timm'`` or ``'dino'``, from the key names; none or
    an ambiguous mix is a ValueError naming the option that picks one."""
    mmsdae = any(
        k.split('.', 1)[0] in ('backbone', 'teacher')
        and MMPRETRAIN_VIT.match(k.split('.', 1)[-1]) for k in state)
    timm = any(TIMM_VIT.search(k) for k in state)
    if mmsdae and timm:
        raise ValueError(
            'the checkpoint has both mmsdae (backbone.layers.*) and timm '
            '(blocks.*) ViT keys: pass --src-format mmsdae or timm (and '
            '--src-prefix to pick a sub-module).')
    if mmsdae:
        return 'mmsdae'
    if timm:
        return 'dino' if is_dino(state) else 'timm'
    hint = ''
    if any(MMPRETRAIN_VIT.match(k) for k in state):
        hint = (' The keys are mmpretrain ViT names without a "backbone." / '
                '"teacher." prefix: to pick the teacher of an mmsdae '
                'checkpoint use --encoder teacher, not --src-prefix.')
    raise ValueError(
        'no ViT encoder keys in the checkpoint (top-level names: '
        f'{top_level(state)}): expected an SdAE pre-training checkpoint '
        '(no "backbone.*" keys of an mmpretrain ViT found) or a timm / MAE '
        'ViT ("blocks.*", "patch_embed.proj.*").' + hint)


def extract_encoder(state_dict: StateDict, encoder: str = 'student') -> dict:
    """Keys of ``encoder`` (:data:`ENCODER_PREFIXES`) of an mmsdae
    checkpoint renamed to ``backbone.*``."""
    if encoder not in ENCODER_PREFIXES:
        raise ValueError(f'encoder={encoder!r}: choose one of '
                         f'{sorted(ENCODER_PREFIXES)}.')
    prefix = ENCODER_PREFIXES[encoder]
    out = {
        'backbone.' + k[len(prefix):]: v
        for k, v in state_dict.items() if k.startswith(prefix)
    }
    if not out:
        raise KeyError(
            f'no "{prefix}*" keys in the checkpoint (top-level keys: '
            f'{top_level(state_dict)}): pass an SdAE pre-training checkpoint,'
            ' e.g. work_dirs/<config>/epoch_300.pth.')
    return out


def _from_mmsdae(state, encoder, allow_unknown):
    out = extract_encoder(state, encoder)
    kept = ENCODER_PREFIXES[encoder]
    encoder_state = {k[len('backbone.'):]: v for k, v in out.items()}
    return encoder_state, [k for k in state if not k.startswith(kept)], []


def _from_timm(state, encoder, allow_unknown):
    if encoder == 'teacher':
        raise ValueError(
            '--encoder teacher selects the teacher of an mmsdae checkpoint; '
            'in a timm-format file pick the teacher with --src-prefix (e.g. '
            'teacher.).')
    prefixes = timm_prefixes(state)
    if prefixes and '' not in prefixes:
        raise ValueError(
            f'the timm ViT keys are under {prefixes}: pass one of them as '
            '--src-prefix to pick that encoder.')
    return timm_to_mmpretrain(state, allow_unknown=allow_unknown)


def _from_dino(state, encoder, allow_unknown):
    backbone, ignored = dino_to_timm(state, encoder)
    out, more, dropped = timm_to_mmpretrain(backbone, allow_unknown)
    return out, ignored + more, dropped


CONVERTERS = {'mmsdae': _from_mmsdae, 'timm': _from_timm, 'dino': _from_dino}


def convert_encoder(state: StateDict,
                    src_format: str,
                    encoder: str = 'student',
                    allow_unknown: bool = False
                    ) -> Tuple[StateDict, List[str], List[str]]:
    """``(encoder_state, ignored, dropped_unknown)``: the student or teacher
    ``encoder`` of ``state`` in mmpretrain ViT names, by the converter of
    ``src_format`` (:data:`FORMATS`)."""
    if src_format not in CONVERTERS:
        raise ValueError(f'src_format={src_format!r}: choose auto or one of '
                         f'{FORMATS}.')
    return CONVERTERS[src_format](state, encoder, allow_unknown)


def top_level(state: StateDict) -> List[str]:
    return sorted({k.split('.')[0] for k in state})


def list_keys(keys: Sequence[str], limit: int = 12, sep: str = ', ') -> str:
    """The first ``limit`` keys, joined, and how many more there are."""
    keys = list(keys)
    shown = sep.join(keys[:limit])
    return shown + (f', ... ({len(keys) - limit} more)'
                    if len(keys) > limit else '')


def summarize_keys(keys: Sequence[str]) -> str:
    """``decoder_blocks.* (96), mask_token``: keys grouped by first name
    (``'none'`` for no key)."""
    groups: Dict[str, List[str]] = {}
    for key in keys:
        groups.setdefault(key.split('.')[0], []).append(key)
    return ', '.join(
        name if members == [name] else f'{name}.* ({len(members)})'
        for name, members in sorted(groups.items())) or 'none'
