"""A DeiT-style ViT with a distillation token that also starts from a
plain ViT checkpoint (G2SD specific distillation, classification)."""
import math

import torch
from mmengine.logging import print_log
from mmengine.model.weight_init import trunc_normal_
from mmpretrain.models.backbones import DistilledVisionTransformer
from mmpretrain.registry import MODELS


def _is_square(n: int) -> bool:
    return n >= 0 and math.isqrt(n)**2 == n


@MODELS.register_module()
class DistilledViT(DistilledVisionTransformer):
    """mmpretrain's :class:`DistilledVisionTransformer` (DeiT, Touvron et
    al. 2021: a learnable distillation token next to the class token; with
    ``out_type='cls_token'`` the output is ``(cls_token, dist_token)``
    after the final norm, what :class:`DistillTokenClsHead` takes), which
    also loads an encoder saved without a distillation token.

    The student of G2SD's specific distillation comes from the generic
    stage (``tools/model_converters/sdae_to_vit.py`` export of
    ``configs/g2sd/*``): a plain ViT whose position embedding has one extra
    token (the class token). Loading it here inserts a zero position
    embedding for the distillation token, and the token itself keeps its
    ``trunc_normal(std=0.02)`` draw: at the start the token enters the
    encoder exactly as in the released G2SD code
    (``G2SD/models_vit.py`` appends ``dist_token`` after the position
    embeddings are added, i.e. with no position; trunc_normal 0.02). The
    token sits next to the class token (DeiT / mmpretrain order) rather than
    after the patches (released order); attention does not depend on the
    order. A DeiT checkpoint (two extra tokens) loads as in mmpretrain; a
    grid of another size is then resized as usual.

    Layer-wise lr decay (``get_layer_depth``, unchanged): the distillation
    token gets the last depth (the full lr), as in the released
    ``util/lr_decay.py`` (only ``cls_token`` / ``pos_embed`` /
    ``patch_embed`` are at depth 0 there).

    Args: as :class:`DistilledVisionTransformer` (``arch='deit-small'`` is
        ViT-S/16: 384 wide, 12 blocks, 6 heads).
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # kept by a Pretrained init_cfg whose file has no dist_token
        trunc_normal_(self.dist_token, std=0.02)

    def _prepare_pos_embed(self, state_dict, prefix, *args, **kwargs):
        name = prefix + 'pos_embed'
        pos_embed = state_dict.get(name)
        if pos_embed is not None and pos_embed.ndim == 3:
            length = pos_embed.shape[1]
            if not _is_square(length - self.num_extra_tokens) \
                    and _is_square(length - 1):
                print_log(
                    f'{name}: {length - 1} patch positions and 1 extra token '
                    '(a ViT without distillation token); a zero position '
                    'embedding is inserted for the distillation token.',
                    logger='current')
                zero = pos_embed.new_zeros(
                    (pos_embed.shape[0], 1, pos_embed.shape[2]))
                state_dict[name] = torch.cat(
                    [pos_embed[:, :1], zero, pos_embed[:, 1:]], dim=1)
        super()._prepare_pos_embed(state_dict, prefix, *args, **kwargs)
