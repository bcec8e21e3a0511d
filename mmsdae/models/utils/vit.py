"""Small helpers on mmpretrain ViT encoders, shared by the algorithms and
by the analysis tools (which import them from here, never the reverse)."""
import torch
from torch import nn

from ...utils.grid import to_pair

__all__ = [
    'to_pair', 'run_encoder', 'encoder_layers', 'check_num_patches',
    'check_same_patches', 'check_width'
]


def run_encoder(encoder: nn.Module, images: torch.Tensor):
    """Run a ViT encoder on the whole image, without masking.

    ``MAEViT`` (and ``SdAEViT``) mask at random unless ``mask=None``:
    mmpretrain's ``MAEViT.forward`` tests ``if mask is None or False``, so
    only ``None`` (not ``False``) disables its masking.
    """
    from mmpretrain.models import MAEViT
    if isinstance(encoder, MAEViT):
        return encoder(images, mask=None)
    return encoder(images)


def encoder_layers(encoder: nn.Module) -> nn.ModuleList:
    """The transformer blocks of an mmpretrain ViT encoder."""
    layers = getattr(encoder, 'layers', None)
    if layers is None or not len(layers):
        raise TypeError(
            f'{type(encoder).__name__} has no `layers`: pass an mmpretrain '
            'ViT encoder (VisionTransformer, MAEViT, SdAEViT).')
    return layers


def check_num_patches(neck: nn.Module, encoder: nn.Module,
                      key: str = 'neck') -> None:
    """An MAE decoder (``neck``) holds one position embedding per patch of
    its encoder: refuse a mismatch (it would fail deep inside the decoder,
    or pair positions wrongly)."""
    if neck.num_patches != encoder.num_patches:
        raise ValueError(
            f'{key}.num_patches={neck.num_patches} but the encoder has '
            f'{encoder.num_patches} patches: set {key}.num_patches='
            f'{encoder.num_patches} ((img_size / patch_size) ** 2).')


def check_same_patches(encoder: nn.Module, student: nn.Module,
                       key: str) -> None:
    """A teacher whose tokens are paired one to one with the student's
    (same mask, same positions) must cut the image into the same patches."""
    own, ref = ((tuple(e.patch_resolution),
                 tuple(e.patch_embed.projection.kernel_size))
                for e in (encoder, student))
    if own != ref:
        raise ValueError(
            f'{key} cuts the image into a {own[0]} grid of {own[1]} px '
            f'patches, the student into {ref[0]} of {ref[1]} px: set the '
            'same img_size and patch_size.')


def check_width(key: str, value: int, width: int, what: str) -> None:
    """``key`` (a config value) must equal the width of ``what``."""
    if value != width:
        raise ValueError(f'{key}={value} but {what} is {width} wide: set '
                         f'{key}={width}.')
