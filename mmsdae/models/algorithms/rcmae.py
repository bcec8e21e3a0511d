"""RC-MAE: reconstruction-consistent masked autoencoder (Lee et al., ICLR
2023, "Exploring the role of mean teachers in self-supervised masked
auto-encoders")."""
from typing import Dict, List, Optional, Tuple, Union

import torch
from mmpretrain.registry import MODELS
from mmpretrain.structures import DataSample

from ..utils.vit import check_num_patches
from .ema_teacher import EMATeacherSelfSupervisor

TEACHER_MASKS = ('same', 'different')


@MODELS.register_module()
class RCMAE(EMATeacherSelfSupervisor):
    """RC-MAE pre-training (RC-MAE paper Sec. 5, Fig. 1(b)).

    - student: an MAE, ``backbone`` (the MAE encoder on the visible
      patches; :class:`SdAEViT`, i.e. mmpretrain's ``MAEViT`` plus
      ``encode_patches``) and ``neck`` (mmpretrain's ``MAEPretrainDecoder``,
      pixels of every patch);
    - teacher: ``teacher`` and ``teacher_neck``, EMA copies of the whole
      student (Eq. 2) updated every iteration by :class:`TeacherEMAHook`;
    - loss: :class:`RCMAEHead`, Eq. 6 on the student's masked patches.

    Args:
        teacher_mask (str): ``'same'`` (RC-MAE-S, the default: the teacher
            encodes the student's visible patches) or ``'different'``
            (RC-MAE-D: the teacher draws its own random mask; the loss stays
            on the student's masked patches), Sec. 5 / Table 2.
        feature_encoder (str): the encoder used by :meth:`extract_feat`, and
            the one ``tools/model_converters/sdae_to_vit.py`` exports unless
            told otherwise: ``'teacher'`` (the paper's choice, appendix E.2
            / F.1, Table 12) or ``'student'``.
        teacher_amp_dtype, compile_blocks: see
            :class:`EMATeacherSelfSupervisor`.
        Others: as :class:`BaseSelfSupervisor`.
    """

    teacher_of = {'backbone': 'teacher', 'neck': 'teacher_neck'}
    ema_hook = ("dict(type='TeacherEMAHook', momentum=0.996, "
                "end_momentum=1.0, update_interval='iter', schedule='iter')")

    def __init__(self,
                 backbone: dict,
                 neck: dict,
                 head: dict,
                 teacher_mask: str = 'same',
                 feature_encoder: str = 'teacher',
                 teacher_amp_dtype: Optional[str] = None,
                 compile_blocks: Union[bool, dict] = False,
                 pretrained: Optional[str] = None,
                 data_preprocessor: Optional[dict] = None,
                 init_cfg: Optional[dict] = None) -> None:
        if teacher_mask not in TEACHER_MASKS:
            raise ValueError(f'teacher_mask={teacher_mask!r}: choose '
                             f"'same' (RC-MAE-S) or 'different' (RC-MAE-D).")
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
        self.teacher_mask = teacher_mask
        self._check_student()
        self.build_teachers()

    def _check_student(self) -> None:
        if not hasattr(self.backbone, 'encode_patches'):
            raise TypeError(
                f'backbone {type(self.backbone).__name__} cannot encode given '
                "patches: use type='SdAEViT' (MAEViT + encode_patches).")
        patch = self.backbone.patch_embed.projection.kernel_size[0]
        pixels = patch * patch * self.head.in_channels
        out_dims = self.neck.decoder_pred.out_features
        if out_dims != pixels or self.head.patch_size != patch:
            raise ValueError(
                f'the decoder predicts {out_dims} values per patch and the '
                f'head uses patch_size={self.head.patch_size}, but the '
                f'encoder has {patch} px patches ({pixels} pixel values): '
                f'set neck.patch_size and head.patch_size to {patch}, and '
                'leave neck.predict_feature_dim unset.')
        check_num_patches(self.neck, self.backbone)

    def teacher_reconstruction(
            self, inputs: torch.Tensor,
            ids_restore: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """The teacher's reconstruction of every patch, ``Y^'`` of Eq. 6.

        RC-MAE-S encodes the student's visible patches (in the student's
        order, ``ids_restore.argsort()[:, :num_visible]``); RC-MAE-D draws a
        new random mask. Returns the reconstruction (B, N, P * P * C) and
        the ``ids_restore`` the teacher used. Runs through
        :meth:`run_teacher`.
        """
        return self.run_teacher(self._teacher_reconstruction, inputs,
                                ids_restore)

    def _teacher_reconstruction(self, inputs, ids_restore):
        if self.teacher_mask == 'same':
            visible = ids_restore.argsort(dim=1)[:, :self.backbone.num_visible]
            latent = self.teacher.encode_patches(
                inputs, visible.unsqueeze(1), keep_cls=True).squeeze(1)
            teacher_ids_restore = ids_restore
        else:
            latent, _, teacher_ids_restore = self.teacher(inputs)
        return self.teacher_neck(latent,
                                 teacher_ids_restore), teacher_ids_restore

    def loss(self, inputs: torch.Tensor, data_samples: List[DataSample],
             **kwargs) -> Dict[str, torch.Tensor]:
        """One RC-MAE step: Eq. 6 (``loss_rec`` + ``loss_cons``)."""
        latent, mask, ids_restore = self.backbone(inputs)
        pred = self.neck(latent, ids_restore)
        teacher_pred, _ = self.teacher_reconstruction(inputs, ids_restore)
        return self.head.loss(pred, teacher_pred, inputs, mask)
