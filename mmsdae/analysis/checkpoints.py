"""Load a trained encoder (:func:`load_encoder`, refusing a checkpoint
without its weights) and a few images (:func:`load_images`) for the
analysis tools (``tools/analysis_tools/``).
"""
import logging
import os
import os.path as osp
from typing import Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch
from torch import nn

from ..models.utils.vit import to_pair
from ..utils.checkpoint import load_checkpoint_file
from ..utils.constants import IMAGE_EXTENSIONS

ENCODER_CHOICES = ('auto', 'student', 'teacher')
# ImageNet statistics in RGB order: the default of every config here.
DEFAULT_NORMALIZATION = dict(
    mean=[123.675, 116.28, 103.53], std=[58.395, 57.12, 57.375], to_rgb=True)
# Classes the default procedural images are drawn from (as the demo config).
PROCEDURAL_NUM_CLASSES = 10

__all__ = [
    'ENCODER_CHOICES', 'IMAGE_EXTENSIONS', 'load_config', 'build_model',
    'load_encoder', 'encoder_info', 'model_label', 'find_image_files',
    'image_sources', 'load_images', 'normalization_of', 'normalize_images'
]


# --------------------------------------------------------------------------
# Models
# --------------------------------------------------------------------------
def load_config(config):
    """Read a config file (or pass a :class:`mmengine.Config` through),
    import its ``custom_imports`` and set its ``default_scope``."""
    from mmengine.config import Config
    from mmengine.registry import init_default_scope
    from mmengine.utils import import_modules_from_strings

    if isinstance(config, Config):
        cfg = config
    else:
        path = os.fspath(config)
        if not osp.isfile(path):
            raise FileNotFoundError(
                f'Config file {path!r} does not exist: pass the config the '
                'checkpoint was trained with.')
        cfg = Config.fromfile(path)
    if cfg.get('custom_imports'):
        import_modules_from_strings(**cfg.custom_imports)
    import mmsdae  # noqa: F401  (registers SdAE, RCMAE, SdAEViT, ...)
    init_default_scope(cfg.get('default_scope', 'mmpretrain'))
    return cfg


def build_model(cfg) -> nn.Module:
    """Build ``cfg.model`` (with the top-level ``data_preprocessor`` when the
    model has none, as :class:`mmengine.runner.Runner` does)."""
    from mmpretrain.registry import MODELS

    if 'model' not in cfg:
        raise KeyError(
            f'The config {cfg.filename!r} has no `model`: pass a training '
            'or downstream config of this repository.')
    model_cfg = cfg.model.copy()
    if cfg.get('data_preprocessor') is not None:
        model_cfg.setdefault('data_preprocessor', cfg.data_preprocessor)
    return MODELS.build(model_cfg)


def _select_encoder(model: nn.Module, encoder: str) -> Tuple[str, str]:
    """``(attribute, name)`` of the requested encoder of ``model``;
    ``'auto'`` follows an EMA model's ``feature_encoder``."""
    if encoder not in ENCODER_CHOICES:
        raise ValueError(f'encoder={encoder!r}: choose one of '
                         f'{ENCODER_CHOICES}.')
    has_teacher = isinstance(getattr(model, 'teacher', None), nn.Module)
    if not isinstance(getattr(model, 'backbone', None), nn.Module):
        raise TypeError(f'{type(model).__name__} has no `backbone`: pass a '
                        'config whose model has a ViT backbone.')
    if encoder == 'auto':
        encoder = getattr(model, 'feature_encoder', 'student') \
            if has_teacher else 'student'
    if encoder == 'teacher':
        if not has_teacher:
            raise ValueError(
                f'{type(model).__name__} has no EMA teacher: use '
                "encoder='student' (or 'auto') for its backbone.")
        return 'teacher', 'teacher'
    return 'backbone', 'student' if has_teacher else 'backbone'


def _strip(key: str) -> str:
    return key[len('module.'):] if key.startswith('module.') else key


def _check_encoder_weights(model: nn.Module, state_dict: Dict, attribute: str,
                           checkpoint: str, encoder_name: str) -> None:
    """Raise if the checkpoint lacks (or mis-shapes) a weight of the
    encoder, so that a randomly initialised encoder is never analysed."""
    prefix = attribute + '.'
    saved = {_strip(k): v for k, v in state_dict.items()}
    missing, mismatched = [], []
    for name, value in getattr(model, attribute).state_dict().items():
        key = prefix + name
        if key not in saved:
            missing.append(key)
        elif tuple(saved[key].shape) != tuple(value.shape):
            mismatched.append(f'{key}: checkpoint '
                              f'{tuple(saved[key].shape)}, model '
                              f'{tuple(value.shape)}')
    if missing:
        shown = ', '.join(missing[:5]) + (' ...' if len(missing) > 5 else '')
        hint = ("it has no EMA teacher weights: use --encoder student "
                "(encoder='student')") if attribute == 'teacher' and any(
                    _strip(k).startswith('backbone.') for k in state_dict) \
            else ('check that CONFIG is the config the checkpoint was '
                  'trained with')
        raise KeyError(
            f'Checkpoint {checkpoint!r} lacks {len(missing)} weights of the '
            f'{encoder_name} encoder (e.g. {shown}): {hint}.')
    if mismatched:
        raise ValueError(
            f'Checkpoint {checkpoint!r} does not fit the model built from '
            f'the config ({len(mismatched)} shape mismatches, e.g. '
            f'{mismatched[0]}): pass the config the checkpoint was trained '
            'with.')


def _squeeze_pair(pair: Tuple[int, int]) -> Union[int, Tuple[int, int]]:
    return pair[0] if pair[0] == pair[1] else tuple(pair)


def normalization_of(cfg_or_model) -> dict:
    """``dict(mean, std, to_rgb)`` of a config's (or model's) data
    preprocessor; ``to_rgb`` is True when it flips the channels of the BGR
    images the pipeline loads (``to_rgb``, ``bgr_to_rgb`` or
    ``rgb_to_bgr``), i.e. when the model sees RGB images."""
    if isinstance(cfg_or_model, nn.Module):
        pre = getattr(cfg_or_model, 'data_preprocessor', None)
        if pre is None or not hasattr(pre, 'mean'):
            return dict(DEFAULT_NORMALIZATION)
        norm = bool(getattr(pre, '_enable_normalize', True))
        return dict(
            mean=pre.mean.flatten().tolist() if norm else None,
            std=pre.std.flatten().tolist() if norm else None,
            to_rgb=bool(
                getattr(pre, '_channel_conversion', False)
                or getattr(pre, 'to_rgb', False)))
    cfg = cfg_or_model
    pre = cfg.get('model', {}).get('data_preprocessor') or cfg.get(
        'data_preprocessor')
    if not pre:
        return dict(DEFAULT_NORMALIZATION)
    return dict(
        mean=list(pre['mean']) if pre.get('mean') is not None else None,
        std=list(pre['std']) if pre.get('std') is not None else None,
        to_rgb=bool(
            pre.get('to_rgb') or pre.get('bgr_to_rgb')
            or pre.get('rgb_to_bgr')))


def encoder_info(encoder: nn.Module) -> dict:
    """Geometry of an mmpretrain ViT encoder (``patch_size``, ``img_size``,
    ``grid``, ``num_layers``, ``num_heads`` ...)."""
    layers = getattr(encoder, 'layers', None)
    if layers is None or not len(layers) or not hasattr(layers[0], 'attn'):
        raise TypeError(f'{type(encoder).__name__} is not a ViT with '
                        '`layers[i].attn`.')
    patch = to_pair(encoder.patch_embed.projection.kernel_size)
    grid = to_pair(encoder.patch_resolution)
    return dict(
        encoder_type=type(encoder).__name__,
        patch_size=_squeeze_pair(patch),
        img_size=_squeeze_pair((grid[0] * patch[0], grid[1] * patch[1])),
        grid=list(grid),
        num_extra_tokens=int(getattr(encoder, 'num_extra_tokens', 1)),
        num_layers=len(layers),
        num_heads=int(layers[0].attn.num_heads),
        embed_dims=int(getattr(encoder, 'embed_dims',
                               layers[0].attn.embed_dims)))


def load_encoder(config,
                 checkpoint: str,
                 encoder: str = 'auto') -> Tuple[nn.Module, dict]:
    """``(encoder in eval mode, info)``: ``encoder`` (``'student'``,
    ``'teacher'``, ``'auto'``) of the config's model loaded from
    ``checkpoint``; ``info`` has ``encoder``, ``model_type``, ``config``,
    ``checkpoint``, ``normalization`` and :func:`encoder_info`."""
    from mmengine.runner import load_state_dict

    checkpoint = os.fspath(checkpoint)
    cfg = load_config(config)
    if not osp.isfile(checkpoint):
        raise FileNotFoundError(
            f'Checkpoint file {checkpoint!r} does not exist: train one '
            f'(python tools/train.py {cfg.filename}) or fix the path.')
    model = build_model(cfg)
    attribute, name = _select_encoder(model, encoder)
    loaded = read_checkpoint(cfg, checkpoint)
    state_dict = loaded.get('state_dict', loaded)
    load_state_dict(model, state_dict, strict=False, logger=_quiet_logger())
    _check_encoder_weights(model, state_dict, attribute, checkpoint, name)
    model.eval()
    module = getattr(model, attribute)
    module.eval()
    info = dict(
        encoder=name,
        model_type=type(model).__name__,
        config=cfg.filename,
        checkpoint=checkpoint,
        normalization=normalization_of(model))
    info.update(encoder_info(module))
    return module, info


def model_label(info: dict) -> str:
    """A short legend label, e.g. ``'SdAE student (epoch_10)'`` or
    ``'MAE (epoch_10)'``, from the ``info`` of :func:`load_encoder`."""
    name = info['model_type']
    if info['encoder'] != 'backbone':
        name += ' ' + info['encoder']
    stem = osp.splitext(osp.basename(info['checkpoint']))[0]
    return f'{name} ({stem})'


def _quiet_logger() -> logging.Logger:
    """Logger for load_checkpoint's messages about weights the analysis
    does not use (e.g. the decoder missing from an exported encoder)."""
    logger = logging.getLogger('mmsdae.analysis.checkpoints')
    logger.setLevel(logging.ERROR)
    return logger


# --------------------------------------------------------------------------
# Images
# --------------------------------------------------------------------------
def read_checkpoint(cfg, path: str) -> dict:
    """Read a checkpoint for ``cfg``'s model (:func:`check_model_type`)."""
    checkpoint = load_checkpoint_file(path)
    check_model_type(cfg, checkpoint, path)
    return checkpoint


def check_model_type(cfg, checkpoint: dict, path: str) -> None:
    """Refuse a checkpoint trained as another model type than ``cfg``'s
    (e.g. an MAE checkpoint with an SdAE config), read from the config text
    MMEngine saves in ``meta['cfg']``; checkpoints without it pass."""
    text = (checkpoint.get('meta') or {}).get('cfg') if isinstance(
        checkpoint, dict) else None
    if not isinstance(text, str):
        return
    try:
        from mmengine.config import Config
        saved = Config.fromstring(text, '.py').get('model', {}).get('type')
    except Exception:  # an unreadable saved config proves nothing
        return
    wanted = cfg.model.get('type')
    if saved and wanted and saved.split('.')[-1] != wanted.split('.')[-1]:
        raise ValueError(
            f'checkpoint {path!r} was trained as model type {saved!r}, but '
            f'the config {cfg.filename!r} builds {wanted!r}: pass the '
            'config the checkpoint was trained with.')


def find_image_files(folder: str) -> List[str]:
    """Image files under ``folder`` (recursively), sorted by path."""
    folder = os.fspath(folder)
    if not osp.isdir(folder):
        raise FileNotFoundError(
            f'Image folder {folder!r} does not exist: fix the path, or leave '
            '--images out for the procedural images.')
    files = []
    for root, dirs, names in os.walk(folder):
        dirs.sort()
        files.extend(
            osp.join(root, n) for n in names
            if n.lower().endswith(IMAGE_EXTENSIONS))
    if not files:
        raise FileNotFoundError(
            f'Image folder {folder!r} holds no image file: pass another, or '
            'leave --images out for the procedural images.')
    return sorted(files)


def image_sources(images: Optional[str] = None,
                  num_images: int = 4,
                  seed: int = 0) -> List[str]:
    """Where the images of :func:`load_images` (same arguments) come
    from: file paths, or ``'procedural:seed=S:index=I'``."""
    if images is None:
        return [
            f'procedural:seed={seed}:index={i}' for i in range(int(num_images))
        ]
    return find_image_files(images)[:int(num_images)]


def _resize_center_crop(image, size: Tuple[int, int]) -> np.ndarray:
    """Resize a PIL image so that it covers ``size`` (h, w) (bicubic), then
    crop the centre."""
    from PIL import Image

    height, width = size
    scale = max(height / image.height, width / image.width)
    new_w = max(width, int(round(image.width * scale)))
    new_h = max(height, int(round(image.height * scale)))
    image = image.resize((new_w, new_h), Image.BICUBIC)
    left, top = (new_w - width) // 2, (new_h - height) // 2
    return np.asarray(image.crop((left, top, left + width, top + height)))


def normalize_images(images: Sequence[np.ndarray],
                     data_preprocessor: Optional[dict] = None
                     ) -> torch.Tensor:
    """RGB ``uint8`` HxWx3 images -> the (B, 3, H, W) float batch a model
    gets from its data preprocessor (BGR unless it has ``to_rgb``)."""
    pre = dict(DEFAULT_NORMALIZATION) if data_preprocessor is None else \
        data_preprocessor
    to_rgb = bool(pre.get('to_rgb') or pre.get('bgr_to_rgb')
                  or pre.get('rgb_to_bgr'))
    batch = torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).float()
    if not to_rgb:
        batch = batch.flip(1)  # the model sees BGR
    if pre.get('mean') is not None:
        batch = batch - torch.tensor(pre['mean']).view(1, -1, 1, 1)
    if pre.get('std') is not None:
        batch = batch / torch.tensor(pre['std']).view(1, -1, 1, 1)
    return batch.contiguous()


def load_images(images: Optional[str] = None,
                num_images: int = 4,
                img_size: Union[int, Tuple[int, int]] = 224,
                seed: int = 0,
                data_preprocessor: Optional[dict] = None
                ) -> Tuple[List[np.ndarray], torch.Tensor]:
    """``(rgb, batch)``: ``num_images`` uint8 RGB images at ``img_size``
    (the first files of the folder ``images``, resized and centre-cropped,
    or procedural images of ``seed``) and :func:`normalize_images`'s batch
    (``data_preprocessor`` defaults to ImageNet RGB statistics)."""
    from PIL import Image

    from mmsdae.datasets import ShapesGenerator

    if int(num_images) < 1:
        raise ValueError(f'num_images must be >= 1, got {num_images}.')
    size = to_pair(img_size)
    if images is None:
        side = max(size)
        generator = ShapesGenerator(
            image_size=side, num_classes=PROCEDURAL_NUM_CLASSES, seed=seed)
        rgb = [generator.generate(i)[0] for i in range(int(num_images))]
        if size[0] != size[1]:
            rgb = [
                _resize_center_crop(Image.fromarray(img), size) for img in rgb
            ]
    else:
        rgb = []
        for path in find_image_files(images)[:int(num_images)]:
            try:
                with Image.open(path) as img:
                    rgb.append(_resize_center_crop(img.convert('RGB'), size))
            except (OSError, ValueError) as exc:
                raise ValueError(
                    f'cannot read image {path!r} ({exc}): remove or replace '
                    'it, or point --images at another folder.') from exc
    rgb = [np.ascontiguousarray(img, dtype=np.uint8) for img in rgb]
    return rgb, normalize_images(rgb, data_preprocessor)
