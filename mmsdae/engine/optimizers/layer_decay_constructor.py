"""Layer-wise learning-rate decay for any model whose backbone is a ViT.

mmpretrain's :class:`LearningRateDecayOptimWrapperConstructor` does the
work (it is the MAE / BEiT rule: a parameter at depth ``i`` of ``L + 2``
gets ``lr * rate ** (L + 1 - i)``, with the patch embedding, class token
and position embedding at depth 0, block ``k`` at depth ``k + 1`` and
everything after the backbone at depth ``L + 1``, i.e. the full lr). It
asks the *top-level* model for ``get_layer_depth``, which mmpretrain's
classifiers have but mmdet detectors and mmseg segmentors do not. This
subclass only adds the fallback to ``model.backbone.get_layer_depth`` with
the ``backbone.`` prefix, so the same rule serves the SdAE supplementary's
COCO (decay 0.75) and ADE20K (decay 0.65) protocols. It is registered in
mmpretrain's scope; mmdet / mmseg configs name it as
``constructor='mmpretrain.ViTLayerDecayOptimWrapperConstructor'``.
"""
import functools

from mmpretrain.engine.optimizers import \
    LearningRateDecayOptimWrapperConstructor
from mmpretrain.registry import OPTIM_WRAPPER_CONSTRUCTORS


@OPTIM_WRAPPER_CONSTRUCTORS.register_module()
class ViTLayerDecayOptimWrapperConstructor(
        LearningRateDecayOptimWrapperConstructor):
    """Layer-wise lr decay whose depth comes from the model or its backbone.

    ``paramwise_cfg`` is that of the parent (``layer_decay_rate``,
    ``flat_decay_mult``, ``custom_keys`` ...). A rate outside ``(0, 1]``
    is refused.
    """

    def __init__(self, optim_wrapper_cfg, paramwise_cfg=None):
        super().__init__(optim_wrapper_cfg, paramwise_cfg)
        rate = self.paramwise_cfg.get('layer_decay_rate', 1.0)
        if not 0 < rate <= 1:
            raise ValueError(
                f'paramwise_cfg.layer_decay_rate={rate}: use a value in '
                '(0, 1] (0.65 for ViT-B fine-tuning, 1.0 for no decay).')

    def add_params(self, params, module, prefix='', get_layer_depth=None,
                   **kwargs):
        if get_layer_depth is None and not hasattr(module, 'get_layer_depth'):
            backbone = getattr(module, 'backbone', None)
            if not hasattr(backbone, 'get_layer_depth'):
                raise TypeError(
                    f'{type(module).__name__} (backbone '
                    f'{type(backbone).__name__}) has no `get_layer_depth`: '
                    'layer-wise lr decay needs a ViT backbone such as '
                    "'mmpretrain.VisionTransformer'; use the default "
                    'constructor for other backbones.')
            get_layer_depth = functools.partial(
                backbone.get_layer_depth, prefix='backbone.')
        super().add_params(params, module, prefix, get_layer_depth, **kwargs)
