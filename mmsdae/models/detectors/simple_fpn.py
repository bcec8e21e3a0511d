"""ViTDet's simple feature pyramid (Li et al. 2022, Sec. 3 and Fig. 2; the
``SimpleFeaturePyramid`` of detectron2's ViTDet project), registered in
mmdet's scope as ``SimpleFPN`` with the arguments of mmdet's
``projects/ViTDet`` neck, which the mmdet wheel does not ship."""
from typing import Sequence, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmcv.cnn import ConvModule, build_norm_layer
from mmdet.registry import MODELS
from mmengine.model import BaseModule


@MODELS.register_module()
class SimpleFPN(BaseModule):
    """Four scales from the last ViT block alone (stride 16): x4 by two 2x2
    transposed convolutions with a norm and GELU between them, x2 by one, x1
    as is, x0.5 by 2x2 max-pooling; each then a 1x1 and a 3x3 convolution
    to ``out_channels``, both normed (no bias, no activation); a fifth level
    by max-pooling the last with kernel 1, stride 2 (detectron2's
    ``LastLevelMaxPool``). Output strides 4, 8, 16, 32 (, 64).

    Args:
        backbone_channel (int): the ViT's width ``C``.
        in_channels (Sequence[int]): the four scales' widths, which must be
            ``[C / 4, C / 2, C, C]``.
        out_channels (int): the pyramid's width (256).
        num_outs (int): 4, or 5 with the max-pooled level.
        norm_cfg (dict): the norm of every layer (ViTDet: LayerNorm over
            channels, ``dict(type='mmpretrain.LN2d')``).
    """

    def __init__(self,
                 backbone_channel: int,
                 in_channels: Sequence[int],
                 out_channels: int,
                 num_outs: int = 5,
                 norm_cfg: dict = dict(type='mmpretrain.LN2d'),
                 init_cfg=None) -> None:
        super().__init__(init_cfg=init_cfg)
        C = backbone_channel
        if list(in_channels) != [C // 4, C // 2, C, C]:
            raise ValueError(
                f'SimpleFPN: in_channels must be the widths of its scales, '
                f'[{C // 4}, {C // 2}, {C}, {C}] for backbone_channel={C}; '
                f'got {list(in_channels)}.')
        if num_outs not in (4, 5):
            raise ValueError(f'SimpleFPN: num_outs must be 4 or 5, got '
                             f'{num_outs}.')
        self.num_outs = num_outs
        self.fpn1 = nn.Sequential(
            nn.ConvTranspose2d(C, C // 2, 2, 2),
            build_norm_layer(norm_cfg, C // 2)[1], nn.GELU(),
            nn.ConvTranspose2d(C // 2, C // 4, 2, 2))
        self.fpn2 = nn.ConvTranspose2d(C, C // 2, 2, 2)
        self.fpn3 = nn.Identity()
        self.fpn4 = nn.MaxPool2d(kernel_size=2, stride=2)
        self.lateral_convs = nn.ModuleList(
            ConvModule(c, out_channels, 1, norm_cfg=norm_cfg, act_cfg=None)
            for c in in_channels)
        self.fpn_convs = nn.ModuleList(
            ConvModule(out_channels, out_channels, 3, padding=1,
                       norm_cfg=norm_cfg, act_cfg=None)
            for _ in in_channels)

    def forward(self, inputs: Tuple[torch.Tensor]) -> Tuple[torch.Tensor]:
        """``inputs``: the backbone's outputs; the last one (stride 16) is
        used."""
        x = inputs[-1]
        scales = (self.fpn1(x), self.fpn2(x), self.fpn3(x), self.fpn4(x))
        outs = [
            fpn(lateral(s)) for s, lateral, fpn in zip(
                scales, self.lateral_convs, self.fpn_convs)
        ]
        if self.num_outs == 5:
            outs.append(F.max_pool2d(outs[-1], 1, stride=2))
        return tuple(outs)
