"""SdAE: self-distillated masked autoencoder (Chen et al., ECCV 2022)."""
from typing import Dict, List, Optional, Union

import torch
from mmpretrain.registry import MODELS
from mmpretrain.structures import DataSample

from ..utils.teacher_input import TeacherInput
from ..utils.vit import check_num_patches, check_width
from .ema_teacher import EMATeacherSelfSupervisor


@MODELS.register_module()
class SdAE(EMATeacherSelfSupervisor):
    """SdAE pre-training (SdAE paper Sec. 2, Fig. 2).

    - student: ``backbone`` (:class:`SdAEViT`) encodes the visible patches;
      ``neck`` (mmpretrain's ``MAEPretrainDecoder`` with
      ``predict_feature_dim`` = encoder width) predicts teacher features at
      every position.
    - teacher: ``self.teacher``, the EMA copy of the student encoder
      (:class:`EMATeacherSelfSupervisor`, Eq. 7), updated by
      :class:`SdAETeacherEMAHook`.
    - teacher input: see :class:`TeacherInput` (multi-fold masking, Sec. 2.2).
    - ``head`` (:class:`SdAEHead`) normalizes the teacher features (Eq. 3)
      and applies the cosine loss (Eq. 4) on the target positions.

    Args:
        backbone, neck, head, data_preprocessor, init_cfg: as
            :class:`BaseSelfSupervisor`.
        teacher_input (dict): kwargs of :class:`TeacherInput`. Defaults to
            3 folds (supplementary Sec. 1).
        feature_encoder (str): the encoder :meth:`extract_feat` uses and
            downstream tasks get, ``'student'`` (default, Sec. 4.4) or
            ``'teacher'``.
        teacher_amp_dtype, compile_blocks: see
            :class:`EMATeacherSelfSupervisor`.
    """

    ema_hook = "dict(type='SdAETeacherEMAHook')"
    #: untyped option dicts, checked at start-up (utils/preflight.py)
    nested_options = {'teacher_input': TeacherInput}

    def __init__(self,
                 backbone: dict,
                 neck: dict,
                 head: dict,
                 teacher_input: dict = dict(mode='multi_fold', num_folds=3),
                 feature_encoder: str = 'student',
                 teacher_amp_dtype: Optional[str] = None,
                 compile_blocks: Union[bool, dict] = False,
                 pretrained: Optional[str] = None,
                 data_preprocessor: Optional[dict] = None,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(
            backbone=backbone,
            neck=neck,
            head=head,
            feature_encoder=feature_encoder,
            teacher_amp_dtype=teacher_amp_dtype,
            compile_blocks=compile_blocks,
            pretrained=pretrained,
            data_preprocessor=data_preprocessor,
            init_cfg=init_cfg)
        self.teacher_input = TeacherInput(**teacher_input)
        self.teacher_input.check(self.backbone.num_patches,
                                 self.backbone.num_masked)
        self._check_decoder()
        self.build_teachers()

    def _check_decoder(self) -> None:
        embed_dims = self.backbone.embed_dims
        out_dims = self.neck.decoder_pred.out_features
        if out_dims != embed_dims:
            raise ValueError(
                f'the decoder predicts {out_dims}-d features but the teacher '
                f'outputs {embed_dims}-d ones: set '
                f'neck.predict_feature_dim={embed_dims}.')
        check_num_patches(self.neck, self.backbone)
        check_width('neck.embed_dim', self.neck.decoder_embed.in_features,
                    embed_dims, 'the encoder')

    def teacher_targets(self, inputs: torch.Tensor,
                        teacher_ids: torch.Tensor) -> torch.Tensor:
        """Teacher features put back at their raster positions.

        Args:
            inputs: images (B, C, H, W).
            teacher_ids: (B, G, n) patch indices of the teacher sequences.

        Returns:
            (B, N, C) float32; positions no sequence covers are zero.

        All ``B x G`` sequences are one batched forward pass
        (:meth:`SdAEViT.encode_patches`), run by :meth:`run_teacher`.
        """
        return self.run_teacher(self._teacher_targets, inputs, teacher_ids)

    def _teacher_targets(self, inputs, teacher_ids):
        feats = self.teacher.encode_patches(inputs, teacher_ids)
        batch, groups, length, dims = feats.shape
        target = feats.new_zeros(batch, self.backbone.num_patches, dims)
        index = teacher_ids.reshape(batch, groups * length, 1)
        target.scatter_(1, index.expand(-1, -1, dims),
                        feats.reshape(batch, groups * length, dims))
        return target

    def loss(self, inputs: torch.Tensor, data_samples: List[DataSample],
             **kwargs) -> Dict[str, torch.Tensor]:
        """One SdAE step: student prediction vs teacher target (Eq. 4).

        Returns ``loss`` and, for the logs, ``cos_sim`` (the mean
        teacher-student cosine similarity; not part of the loss).
        """
        # the mask first, then the teacher, then the student: the teacher's
        # transient activations are freed before the student's (kept for
        # backward) exist, so they do not add to the peak memory
        ids_shuffle = self.backbone.random_order(inputs.shape[0],
                                                 inputs.device)
        masked_ids = ids_shuffle[:, self.backbone.num_visible:]
        teacher_ids, target_mask = self.teacher_input.sample(
            masked_ids, self.backbone.num_patches)
        target = self.teacher_targets(inputs, teacher_ids)
        latent, ids_restore = self.backbone.forward_visible(
            inputs, ids_shuffle)
        pred = self.neck(latent, ids_restore)
        return dict(
            loss=self.head.loss(pred, target, target_mask),
            cos_sim=self.head.mean_cosine(pred, target, target_mask))

