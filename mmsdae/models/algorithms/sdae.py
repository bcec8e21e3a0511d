"""SdAE: self-distillated masked autoencoder (Chen et al., ECCV 2022)."""
import copy
import logging
from typing import Dict, List, Optional

import torch
from mmengine.logging import MessageHub, print_log
from mmpretrain.models import BaseSelfSupervisor
from mmpretrain.registry import MODELS
from mmpretrain.structures import DataSample

from ..utils.teacher_input import TeacherInput

ENCODERS = ('student', 'teacher')


@MODELS.register_module()
class SdAE(BaseSelfSupervisor):
    """SdAE pre-training (SdAE paper Sec. 2, Fig. 2).

    - student: ``backbone`` (:class:`SdAEViT`) encodes the visible patches;
      ``neck`` (mmpretrain's ``MAEPretrainDecoder`` with
      ``predict_feature_dim`` = encoder width) predicts teacher features at
      every position.
    - teacher: ``self.teacher``, a copy of the student encoder made after
      weight initialization, without gradients and always in eval mode (no
      drop path). It is updated only by :meth:`momentum_update` (Eq. 7),
      called by :class:`SdAETeacherEMAHook`.
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
    """

    def __init__(self,
                 backbone: dict,
                 neck: dict,
                 head: dict,
                 teacher_input: dict = dict(mode='multi_fold', num_folds=3),
                 feature_encoder: str = 'student',
                 pretrained: Optional[str] = None,
                 data_preprocessor: Optional[dict] = None,
                 init_cfg: Optional[dict] = None) -> None:
        if feature_encoder not in ENCODERS:
            raise ValueError(f'feature_encoder={feature_encoder!r}: choose '
                             f'one of {ENCODERS}.')
        super().__init__(
            backbone=backbone,
            neck=neck,
            head=head,
            pretrained=pretrained,
            data_preprocessor=data_preprocessor,
            init_cfg=init_cfg)
        self.feature_encoder = feature_encoder
        self.teacher_input = TeacherInput(**teacher_input)
        self.teacher_input.check(self.backbone.num_patches,
                                 self.backbone.num_masked)
        self._check_decoder()
        self.teacher = copy.deepcopy(self.backbone)
        self.teacher.requires_grad_(False)
        self.teacher.eval()
        # Eq. 7 updates so far; in the state dict, so it survives resume
        self.register_buffer('teacher_updates', torch.zeros((),
                                                            dtype=torch.long))
        self._checked_epoch = 0
        self.register_load_state_dict_pre_hook(self._fill_missing_teacher)

    def _check_decoder(self) -> None:
        embed_dims = self.backbone.embed_dims
        out_dims = self.neck.decoder_pred.out_features
        if out_dims != embed_dims:
            raise ValueError(
                f'the decoder predicts {out_dims}-d features but the teacher '
                f'outputs {embed_dims}-d ones: set '
                f'neck.predict_feature_dim={embed_dims}.')
        if self.neck.num_patches != self.backbone.num_patches:
            raise ValueError(
                f'neck.num_patches={self.neck.num_patches} but the encoder '
                f'has {self.backbone.num_patches} patches: set '
                f'neck.num_patches={self.backbone.num_patches} '
                '((img_size / patch_size) ** 2).')
        if self.neck.decoder_embed.in_features != embed_dims:
            raise ValueError(
                f'neck.embed_dim={self.neck.decoder_embed.in_features} but '
                f'the encoder is {embed_dims} wide: set '
                f'neck.embed_dim={embed_dims}.')

    def init_weights(self) -> None:
        """Initialize the student, then start the teacher as its copy."""
        super().init_weights()
        self.teacher.load_state_dict(self.backbone.state_dict())

    @staticmethod
    def _fill_missing_teacher(module, state_dict, prefix, *args) -> None:
        """Load hook: a checkpoint with a student but no teacher (an exported
        encoder, an MAE checkpoint) starts the teacher as the loaded student,
        as the paper's teacher starts as a copy of the student."""
        teacher, student = prefix + 'teacher.', prefix + 'backbone.'
        if any(k.startswith(teacher) for k in state_dict):
            return
        copied = [k for k in list(state_dict) if k.startswith(student)]
        for key in copied:
            state_dict[teacher + key[len(student):]] = state_dict[key]
        if copied:
            print_log(
                'the checkpoint has no SdAE teacher weights: the teacher '
                f'starts as a copy of the loaded student ({len(copied)} '
                f'"{student}*" tensors).',
                logger='current',
                level=logging.WARNING)

    def train(self, mode: bool = True) -> 'SdAE':
        """Switch the student; the teacher stays in eval mode (no drop path,
        no dropout)."""
        super().train(mode)
        self.teacher.eval()
        return self

    @torch.no_grad()
    def momentum_update(self, momentum: float) -> None:
        """Eq. 7: ``phi <- eta * phi + (1 - eta) * theta``.

        ``momentum`` is eta, the weight of the OLD teacher value (the paper's
        convention; mmengine's ``ExponentialMovingAverage`` weights the new
        one). Floating-point buffers are averaged the same way, others
        copied.
        """
        if not 0.0 <= momentum <= 1.0:
            raise ValueError(f'EMA momentum {momentum} is outside [0, 1].')
        student = self.backbone.state_dict()
        for name, value in self.teacher.state_dict().items():
            if value.dtype.is_floating_point:
                value.lerp_(student[name].to(value.dtype), 1.0 - momentum)
            else:
                value.copy_(student[name])
        self.teacher_updates += 1

    def _warn_if_teacher_frozen(self) -> None:
        """Once per epoch (one host sync): warn when a whole epoch went by
        without any teacher update, i.e. no SdAETeacherEMAHook is running."""
        epoch = MessageHub.get_current_instance().get_info('epoch', 0)
        if epoch < 1 or epoch == self._checked_epoch:
            return
        self._checked_epoch = epoch
        if int(self.teacher_updates) == 0:
            print_log(
                f'epoch {epoch}: the SdAE teacher has never been updated, so '
                'it is still the initial student. Add '
                "dict(type='SdAETeacherEMAHook') to custom_hooks (Eq. 7).",
                logger='current',
                level=logging.WARNING)

    def teacher_targets(self, inputs: torch.Tensor,
                        teacher_ids: torch.Tensor) -> torch.Tensor:
        """Teacher features put back at their raster positions.

        Args:
            inputs: images (B, C, H, W).
            teacher_ids: (B, G, n) patch indices of the teacher sequences.

        Returns:
            (B, N, C); positions no sequence covers are zero.
        """
        with torch.no_grad():
            feats = self.teacher.encode_patches(inputs, teacher_ids)
            batch, groups, length, dims = feats.shape
            target = feats.new_zeros(batch, self.backbone.num_patches, dims)
            index = teacher_ids.reshape(batch, groups * length, 1)
            target.scatter_(1, index.expand(-1, -1, dims),
                            feats.reshape(batch, groups * length, dims))
        return target

    def loss(self, inputs: torch.Tensor, data_samples: List[DataSample],
             **kwargs) -> Dict[str, torch.Tensor]:
        """One SdAE step: student prediction vs teacher target (Eq. 4)."""
        self._warn_if_teacher_frozen()
        latent, _, ids_restore = self.backbone(inputs)
        pred = self.neck(latent, ids_restore)
        masked_ids = ids_restore.argsort(dim=1)[:, self.backbone.num_visible:]
        teacher_ids, target_mask = self.teacher_input.sample(
            masked_ids, self.backbone.num_patches)
        target = self.teacher_targets(inputs, teacher_ids)
        return dict(loss=self.head.loss(pred, target, target_mask))

    def extract_feat(self, inputs: torch.Tensor):
        """Features of the whole image from ``feature_encoder``."""
        encoder = self.backbone if self.feature_encoder == 'student' \
            else self.teacher
        return encoder(inputs, mask=None)
