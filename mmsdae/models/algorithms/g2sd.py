"""G2SD generic distillation (Huang et al., "Generic-to-Specific
Distillation of Masked Autoencoders", CVPR 2023, arXiv 2302.14771)."""
from typing import Dict, List, Optional

import torch
import torch.nn.functional as F
from mmpretrain.registry import MODELS
from mmpretrain.structures import DataSample

from ..necks.mae_feature_decoder import decoder_hidden_states
from ..utils.vit import (check_num_patches, check_same_patches,
                         check_width)
from .frozen_teacher_distiller import FrozenTeacherSelfSupervisor

#: LayerNorm epsilon of the target normalization (released engine_distill.py)
TARGET_NORM_EPS = 1e-6


@MODELS.register_module()
class G2SD(FrozenTeacherSelfSupervisor):
    """G2SD stage 1, generic distillation (paper Sec. 3; released code
    pengzhiliang/G2SD ``main_distill.py`` / ``engine_distill.py`` /
    ``models_mae.py``).

    - mask: one random mask (ratio 0.75) per image, drawn once and shared:
      the teacher encodes the same visible patches as the student (released
      code: the same ``noise`` goes to both models);
    - teacher ``model.teacher``: a full, frozen MAE (ViT-B encoder + 512 x 8
      decoder, :class:`FrozenTeacher` from a full MAE training checkpoint;
      an encoder-only file is refused). Its target is the decoder's hidden
      state after ``target_block`` blocks (4 of 8; released
      ``--layer_index 4``), before the decoder norm, class token included,
      normalized per token by LayerNorm without affine parameters, eps 1e-6
      (``nn.LayerNorm(512, eps=1e-6, elementwise_affine=False)`` in
      ``engine_distill.py``), see :meth:`teacher_targets`;
    - student: ``backbone`` (:class:`SdAEViT`, ViT-S) on the visible
      patches and ``neck`` (:class:`MAEFeatureDecoder`, 256 x 4, 8 heads)
      whose last hidden state goes to ``head`` (:class:`G2SDHead`).

    The released encoder-feature head has loss weight 0 and is left out.

    Args:
        backbone (dict): the student encoder, :class:`SdAEViT`.
        neck (dict): the student decoder, :class:`MAEFeatureDecoder`.
        head (dict): :class:`G2SDHead`.
        teacher (dict): :class:`FrozenTeacher` config with ``backbone``
            (:class:`SdAEViT`, same image and patch size as the student),
            ``neck`` (``MAEPretrainDecoder``) and ``checkpoint``.
        target_block (int): decoder blocks of the teacher to run; the
            target is the hidden state after them (released default 4).
        teacher_amp_dtype: the teacher's autocast dtype under AMP, see
            :class:`TeacherForwardMixin`.
        Others: as :class:`BaseSelfSupervisor`.
    """

    def __init__(self,
                 backbone: dict,
                 neck: dict,
                 head: dict,
                 teacher: dict,
                 target_block: int = 4,
                 teacher_amp_dtype: Optional[str] = None,
                 pretrained: Optional[str] = None,
                 data_preprocessor: Optional[dict] = None,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(
            backbone=backbone,
            neck=neck,
            head=head,
            teacher_amp_dtype=teacher_amp_dtype,
            pretrained=pretrained,
            data_preprocessor=data_preprocessor,
            init_cfg=init_cfg)
        self.target_block = target_block
        self._check_student()
        self.add_teacher('teacher', teacher)
        self._check_teacher()

    def _check_student(self) -> None:
        if not hasattr(self.backbone, 'forward_visible'):
            raise TypeError(
                f'backbone {type(self.backbone).__name__} cannot encode a '
                "given mask: use type='SdAEViT' (MAEViT + encode_patches).")
        check_num_patches(self.neck, self.backbone)
        check_width('head.in_channels', self.head.in_channels,
                    self.neck.decoder_embed.out_features,
                    'the student decoder')

    def _check_teacher(self) -> None:
        encoder, decoder = getattr(self.teacher, 'backbone', None), getattr(
            self.teacher, 'neck', None)
        if encoder is None or decoder is None:
            raise ValueError(
                'model.teacher needs a backbone (the MAE encoder) and a neck '
                '(the MAE decoder, MAEPretrainDecoder): G2SD distils the '
                'decoder hidden state.')
        if not hasattr(encoder, 'encode_patches'):
            raise TypeError(
                f'model.teacher.backbone is a {type(encoder).__name__}: use '
                "type='SdAEViT' (MAEViT + encode_patches, same weights), so "
                "the teacher can encode the student's visible patches.")
        check_same_patches(encoder, self.backbone, 'model.teacher.backbone')
        check_num_patches(decoder, encoder, 'model.teacher.neck')
        depth = len(decoder.decoder_blocks)
        if not 1 <= self.target_block <= depth:
            raise ValueError(
                f'target_block={self.target_block}: the teacher decoder has '
                f'{depth} blocks (G2SD takes block 4 of 8).')
        check_width('head.out_channels', self.head.out_channels,
                    decoder.decoder_embed.out_features, 'the teacher decoder')

    def teacher_targets(self, inputs: torch.Tensor,
                        ids_shuffle: torch.Tensor) -> torch.Tensor:
        """The G2SD target of every token, (B, 1 + N, C_teacher_decoder),
        as in the class docstring, through :meth:`run_teacher`."""
        return self.run_teacher(self._teacher_targets, inputs, ids_shuffle)

    def _teacher_targets(self, inputs: torch.Tensor,
                         ids_shuffle: torch.Tensor) -> torch.Tensor:
        visible = ids_shuffle[:, :self.backbone.num_visible]
        latent = self.teacher.backbone.encode_patches(
            inputs, visible.unsqueeze(1), keep_cls=True).squeeze(1)
        hidden = decoder_hidden_states(
            self.teacher.neck,
            latent,
            torch.argsort(ids_shuffle, dim=1),
            num_blocks=self.target_block)
        return F.layer_norm(hidden, hidden.shape[-1:], eps=TARGET_NORM_EPS)

    def loss(self, inputs: torch.Tensor, data_samples: List[DataSample],
             **kwargs) -> Dict[str, torch.Tensor]:
        """One generic-distillation step: ``{'loss': smooth L1}``."""
        # the mask first (MAE's random numbers), then the teacher: its
        # transient activations are gone before the student's are kept
        ids_shuffle = self.backbone.random_order(inputs.shape[0],
                                                 inputs.device)
        target = self.teacher_targets(inputs, ids_shuffle)
        latent, ids_restore = self.backbone.forward_visible(
            inputs, ids_shuffle)
        hidden = self.neck(latent, ids_restore)
        mask = (ids_restore >= self.backbone.num_visible).float()
        return self.head.loss(hidden, target, mask)
