"""Hybrid Distill (Shi et al., "Hybrid Distillation: Connecting Masked
Autoencoders with Contrastive Learners", arXiv 2306.15876, ICLR 2024)."""
from typing import Dict, List, Optional, Sequence, Tuple

import torch
from mmengine.logging import MessageHub
from mmpretrain.registry import MODELS
from mmpretrain.structures import DataSample

from ..utils.attention_capture import AttentionCapture, normalize_layer_indices
from ..utils.token_masking import (ProgressiveRedundantMasking, all_patches,
                                   class_token_attention)
from ..utils.vit import check_same_patches, check_width, run_encoder
from .frozen_teacher_distiller import FrozenTeacherSelfSupervisor

TEACHER_M_INPUTS = ('visible', 'full')


@MODELS.register_module()
class HybridDistill(FrozenTeacherSelfSupervisor):
    """Distil a ViT from two frozen teachers at once.

    - ``teacher_c`` (T_c): a supervised or contrastive ViT, DeiT or CLIP,
      whose *final* features the student regresses through a projection
      (:class:`FeatureDistillHead`, ``head``): discrimination;
    - ``teacher_m`` (T_m): an MIM ViT, MAE, whose token relations (attention
      maps) the student imitates at *intermediate* blocks
      (:class:`TokenRelationHead`, ``relation_head``): diversity;
    - ``L = L_feature + alpha * L_relation`` (appendix Table A4: alpha = 1
      best; alpha = 0 does not run T_m);
    - progressive redundant token masking of the student's input
      (``token_masking``, appendix Table A5);
    - the student is a plain ViT (``backbone``, :class:`SdAEViT` so it can
      encode a subset of the patches), exported alone for downstream tasks.

    The defaults where the sources are silent (relation blocks, distances,
    redundancy score, schedule, ``teacher_m_input``) are listed in
    ``configs/hybrid_distill/README.md``.

    One step (:meth:`loss`): 1. :meth:`teacher_pass`, 2.
    :meth:`select_tokens` and :meth:`relation_targets`, 3.
    :meth:`student_pass`, 4. :meth:`distill_losses`.

    Args:
        backbone (dict): the student, :class:`SdAEViT` (its ``mask_ratio``
            is not used).
        head (dict): :class:`FeatureDistillHead` (student width -> T_c
            width).
        teacher_c (dict): :class:`FrozenTeacher` config whose ``backbone``
            is an mmpretrain ViT with ``out_type='raw'`` on the student's
            patch grid, and ``checkpoint``.
        teacher_m (dict): :class:`FrozenTeacher` config whose ``backbone`` is
            an MAE ViT (:class:`SdAEViT` for ``teacher_m_input='visible'``),
            and ``checkpoint``.
        relation_head (dict): :class:`TokenRelationHead`.
        alpha (float): weight of the relation term (default 1.0).
        relation_layers (Sequence[int], optional): student blocks whose
            attention imitates T_m (default: all but the last).
        teacher_relation_layers (Sequence[int], optional): the T_m blocks
            they imitate, pairwise (default: the same indices).
        token_masking (dict, optional): :class:`ProgressiveRedundantMasking`
            arguments; ``None`` switches masking off (Table A5).
        teacher_m_input (str): ``'visible'`` (default: T_m runs on the
            tokens the student sees) or ``'full'`` (T_m runs on the whole
            image; its logits are restricted to the student's tokens, so
            each row is renormalised over them).
        teacher_c_norm (dict, optional): ``dict(mean=..., std=...)`` (0-255
            RGB) that T_c was trained with when it differs from the data
            preprocessor's, e.g. CLIP's; the student's input is re-normalised
            for T_c.
        teacher_amp_dtype: the teachers' autocast dtype under AMP.
        Others: as :class:`BaseSelfSupervisor`.
    """

    #: untyped option dicts, checked at start-up (utils/preflight.py)
    nested_options = {'token_masking': ProgressiveRedundantMasking}

    def __init__(self,
                 backbone: dict,
                 head: dict,
                 teacher_c: dict,
                 teacher_m: dict,
                 relation_head: Optional[dict] = None,
                 alpha: float = 1.0,
                 relation_layers: Optional[Sequence[int]] = None,
                 teacher_relation_layers: Optional[Sequence[int]] = None,
                 token_masking: Optional[dict] = None,
                 teacher_m_input: str = 'visible',
                 teacher_c_norm: Optional[dict] = None,
                 teacher_amp_dtype: Optional[str] = None,
                 pretrained: Optional[str] = None,
                 data_preprocessor: Optional[dict] = None,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(
            backbone=backbone,
            head=head,
            teacher_amp_dtype=teacher_amp_dtype,
            pretrained=pretrained,
            data_preprocessor=data_preprocessor,
            init_cfg=init_cfg)
        if alpha < 0:
            raise ValueError(f'alpha={alpha}: the relation weight must be '
                             '>= 0 (appendix Table A4: 0 to 1, 1 best).')
        if teacher_m_input not in TEACHER_M_INPUTS:
            raise ValueError(f'teacher_m_input={teacher_m_input!r}: choose '
                             f'one of {TEACHER_M_INPUTS}.')
        self.alpha = float(alpha)
        self.teacher_m_input = teacher_m_input
        self.relation_head = MODELS.build(
            relation_head or dict(type='TokenRelationHead'))
        self.token_masking = self._build_masking(token_masking)
        self._check_student()
        self.add_teacher('teacher_c', teacher_c)
        self.add_teacher('teacher_m', teacher_m)
        self._check_teachers()
        depth = len(self.backbone.layers)
        if relation_layers is None:
            relation_layers = list(range(depth - 1))
        self.relation_layers = normalize_layer_indices(
            relation_layers, depth, 'relation_layers')
        if teacher_relation_layers is None:
            teacher_relation_layers = self.relation_layers
        self.teacher_relation_layers = normalize_layer_indices(
            teacher_relation_layers, len(self.teacher_m.backbone.layers),
            'teacher_relation_layers')
        if len(self.teacher_relation_layers) != len(self.relation_layers):
            raise ValueError(
                f'relation_layers {self.relation_layers} and '
                f'teacher_relation_layers {self.teacher_relation_layers} '
                'must pair up one to one.')
        if not self.relation_layers and self.alpha > 0:
            raise ValueError('relation_layers is empty but alpha > 0: list '
                             'the blocks that imitate T_m, or set alpha=0.')
        self._check_heads()
        self._check_masking()
        self.teacher_c_norm = self._teacher_norm(teacher_c_norm)

    # --- checks -------------------------------------------------------------

    def _check_student(self) -> None:
        if not hasattr(self.backbone, 'encode_patches'):
            raise TypeError(
                f'backbone {type(self.backbone).__name__} cannot encode a '
                "subset of the patches: use type='SdAEViT'.")
        check_width('head.in_channels', self.head.in_channels,
                    self.backbone.embed_dims, 'the student')

    def _check_teachers(self) -> None:
        for name in ('teacher_c', 'teacher_m'):
            encoder = getattr(getattr(self, name), 'backbone', None)
            if encoder is None or not hasattr(encoder, 'layers'):
                raise ValueError(f'model.{name} needs a ViT backbone.')
            check_same_patches(encoder, self.backbone,
                               f'model.{name}.backbone')
        encoder = self.teacher_c.backbone
        if getattr(encoder, 'out_type', 'raw') != 'raw' or not getattr(
                encoder, 'with_cls_token', True):
            raise ValueError(
                "model.teacher_c.backbone must return every token: set "
                "out_type='raw' and with_cls_token=True.")
        check_width('head.out_channels', self.head.out_channels,
                    encoder.embed_dims, 'T_c')
        if self.teacher_m_input == 'visible' and not hasattr(
                self.teacher_m.backbone, 'encode_patches'):
            raise TypeError(
                "teacher_m_input='visible' runs T_m on the student's patches:"
                " build model.teacher_m.backbone as type='SdAEViT' (MAEViT "
                "weights), or set teacher_m_input='full'.")

    def _check_heads(self) -> None:
        if self.relation_head.head_reduce != 'none' or self.alpha == 0:
            return
        for s, t in zip(self.relation_layers, self.teacher_relation_layers):
            heads_s = self.backbone.layers[s].attn.num_heads
            heads_t = self.teacher_m.backbone.layers[t].attn.num_heads
            if heads_s != heads_t:
                raise ValueError(
                    f'student block {s} has {heads_s} heads, T_m block {t} '
                    f"{heads_t}: set relation_head.head_reduce='mean' to "
                    'compare head-averaged attention maps.')

    def _check_masking(self) -> None:
        masking = self.token_masking
        if masking is None:
            return
        teacher = getattr(self, masking.score_teacher).backbone
        normalize_layer_indices([masking.score_layer], len(teacher.layers),
                                'token_masking.score_layer')
        if masking.score_teacher == 'teacher_m' and (
                self.teacher_m_input != 'full' or self.alpha == 0):
            raise ValueError(
                "token_masking.score_teacher='teacher_m' needs T_m's "
                "full-image pass: set teacher_m_input='full' (and alpha > "
                "0), or score with 'teacher_c'.")

    @staticmethod
    def _build_masking(cfg: Optional[dict]):
        if cfg is None:
            return None
        return ProgressiveRedundantMasking(
            **{k: v for k, v in cfg.items() if k != 'type'})

    def _teacher_norm(self, norm: Optional[dict]):
        if norm is None:
            return None
        mean = torch.tensor(norm['mean'], dtype=torch.float32)
        std = torch.tensor(norm['std'], dtype=torch.float32)
        pre = self.data_preprocessor
        if not getattr(pre, '_enable_normalize', False):
            raise ValueError(
                'teacher_c_norm re-normalises the input from the data '
                "preprocessor's mean / std, but the preprocessor does not "
                'normalise.')
        if mean.shape != (3, ) or std.shape != (3, ):
            raise ValueError('teacher_c_norm needs 3 means and 3 stds.')
        # x_c = (x * std_in + mean_in - mean_c) / std_c = x * scale + shift
        scale = pre.std.flatten().cpu() / std
        shift = (pre.mean.flatten().cpu() - mean) / std
        return scale.view(1, 3, 1, 1), shift.view(1, 3, 1, 1)

    # --- schedule -----------------------------------------------------------

    @staticmethod
    def training_progress() -> float:
        """``epoch / max_epochs`` of the running training loop (MMEngine's
        ``RuntimeInfoHook`` keeps both in the message hub); ``iter /
        max_iters`` for an iteration-based loop; 0 outside a runner."""
        hub = MessageHub.get_current_instance()
        max_epochs = hub.get_info('max_epochs')
        if max_epochs and max_epochs > 1:
            return float(hub.get_info('epoch', 0)) / float(max_epochs)
        max_iters = hub.get_info('max_iters')
        if max_iters:
            return float(hub.get_info('iter', 0)) / float(max_iters)
        return 0.0

    def num_masked(self) -> int:
        """Patches masked from the student's input at this point of the
        run (0 with masking off)."""
        if self.token_masking is None:
            return 0
        return self.token_masking.num_masked(self.backbone.num_patches,
                                             self.training_progress())

    # --- teachers -----------------------------------------------------------

    def _input_c(self, inputs: torch.Tensor) -> torch.Tensor:
        if self.teacher_c_norm is None:
            return inputs
        scale, shift = (t.to(inputs.device, inputs.dtype)
                        for t in self.teacher_c_norm)
        return inputs * scale + shift

    def teacher_c_pass(
            self, inputs: torch.Tensor, with_score: bool
    ) -> Tuple[torch.Tensor, Optional[torch.Tensor]]:
        """T_c on the whole image: its final tokens (B, 1 + N, C_c) and, if
        ``with_score``, the redundancy score (B, N) of
        :func:`class_token_attention` at ``token_masking.score_layer``."""
        return self.run_teacher(self._teacher_c_pass, inputs, with_score)

    def _teacher_c_pass(self, inputs, with_score):
        encoder = self.teacher_c.backbone
        layers = [self.token_masking.score_layer] if with_score else []
        with AttentionCapture(encoder, layers) as capture:
            tokens = run_encoder(encoder, self._input_c(inputs))[-1]
        score = class_token_attention(capture.get(layers)[0]) \
            if with_score else None
        return tokens, score

    def teacher_m_relations(
            self, inputs: torch.Tensor, kept: torch.Tensor
    ) -> Tuple[List[torch.Tensor], Optional[torch.Tensor]]:
        """T_m's attention logits at ``teacher_relation_layers`` over the
        class token and the ``kept`` patches (B, n): a list of (B, H,
        1 + n, 1 + n); plus the redundancy score when T_m scores it."""
        return self.run_teacher(self._teacher_m_relations, inputs, kept)

    def _teacher_m_relations(self, inputs, kept):
        encoder = self.teacher_m.backbone
        masking = self.token_masking
        if self.teacher_m_input == 'visible':
            with AttentionCapture(encoder,
                                  self.teacher_relation_layers) as capture:
                encoder.encode_patches(inputs, kept.unsqueeze(1),
                                       keep_cls=True)
            return capture.get(self.teacher_relation_layers), None
        layers = list(self.teacher_relation_layers)
        score_layer = None
        if masking is not None and masking.score_teacher == 'teacher_m':
            score_layer = normalize_layer_indices(
                [masking.score_layer], len(encoder.layers))[0]
            if score_layer not in layers:
                layers.append(score_layer)
        with AttentionCapture(encoder, layers) as capture:
            run_encoder(encoder, inputs)
        score = class_token_attention(capture.get([score_layer])[0]) \
            if score_layer is not None else None
        return capture.get(self.teacher_relation_layers), score

    @staticmethod
    def token_index(kept: torch.Tensor) -> torch.Tensor:
        """(B, 1 + n) positions of the class token and the ``kept`` patches
        (B, n) in a (class token + N patches) sequence."""
        return torch.cat([kept.new_zeros(kept.shape[0], 1), kept + 1], dim=1)

    @classmethod
    def restrict(cls, logits: torch.Tensor,
                 kept: torch.Tensor) -> torch.Tensor:
        """Logits (B, H, 1 + N, 1 + N) over every token -> over the class
        token and the ``kept`` patches (B, n): rows and columns selected, so
        their softmax renormalises the teacher's attention over the
        student's tokens."""
        heads = logits.shape[1]
        index = cls.token_index(kept)
        rows = index[:, None, :, None].expand(-1, heads, -1,
                                              logits.shape[-1])
        logits = logits.gather(2, rows)
        cols = index[:, None, None, :].expand(-1, heads, logits.shape[2], -1)
        return logits.gather(3, cols)

    # --- step ---------------------------------------------------------------

    def teacher_pass(
        self, inputs: torch.Tensor, num_masked: int
    ) -> Tuple[torch.Tensor, Optional[torch.Tensor],
               Optional[List[torch.Tensor]]]:
        """Step 1: T_c's final tokens (B, 1 + N, C_c); the redundancy score
        (B, N) when ``num_masked > 0`` (else None); T_m's relation logits
        over every token with ``teacher_m_input='full'`` (else None)."""
        masking = self.token_masking
        score_by_c = num_masked > 0 and masking.score_teacher == 'teacher_c'
        tokens, score = self.teacher_c_pass(inputs, score_by_c)
        relations = None
        if self.alpha > 0 and self.teacher_m_input == 'full':
            relations, score_m = self.teacher_m_relations(
                inputs,
                all_patches(inputs.shape[0], self.backbone.num_patches,
                            inputs.device))
            if not score_by_c:
                score = score_m
        return tokens, score, relations

    def select_tokens(self, score: Optional[torch.Tensor], batch: int,
                      num_masked: int, device) -> torch.Tensor:
        """Step 2: the patches the student sees, (B, N - k) in raster
        order."""
        if num_masked == 0:
            return all_patches(batch, self.backbone.num_patches, device)
        return self.token_masking.split(score, num_masked)[0]

    def relation_targets(
            self, inputs: torch.Tensor, kept: torch.Tensor,
            relations: Optional[List[torch.Tensor]]
    ) -> Optional[List[torch.Tensor]]:
        """Step 2: T_m's relation logits over the class token and the
        ``kept`` patches: from the full-image pass (``relations``) when
        there is one, else a T_m pass on those tokens; None with alpha =
        0."""
        if self.alpha == 0:
            return None
        if relations is None:
            return self.teacher_m_relations(inputs, kept)[0]
        if kept.shape[1] < self.backbone.num_patches:
            return [self.restrict(r, kept) for r in relations]
        return relations

    def student_pass(self, inputs: torch.Tensor, kept: torch.Tensor
                     ) -> Tuple[torch.Tensor, List[torch.Tensor]]:
        """Step 3: the student's final tokens (B, 1 + n, C) on the class
        token and the ``kept`` patches, and its attention logits at
        ``relation_layers`` (none with alpha = 0)."""
        layers = self.relation_layers if self.alpha > 0 else []
        with AttentionCapture(self.backbone, layers) as capture:
            latent = self.backbone.encode_patches(
                inputs, kept.unsqueeze(1), keep_cls=True).squeeze(1)
        return latent, capture.get(layers)

    def distill_losses(self, latent: torch.Tensor, target: torch.Tensor,
                       relations_s: List[torch.Tensor],
                       relations_m: Optional[List[torch.Tensor]]
                       ) -> Dict[str, torch.Tensor]:
        """Step 4: ``loss_feature`` and, with alpha > 0, ``loss_relation``
        (already multiplied by alpha)."""
        losses = dict(loss_feature=self.head.loss(latent, target))
        if self.alpha > 0:
            relation = self.relation_head.loss(relations_s, relations_m)
            losses['loss_relation'] = self.alpha * relation
        return losses

    def loss(self, inputs: torch.Tensor, data_samples: List[DataSample],
             **kwargs) -> Dict[str, torch.Tensor]:
        """One Hybrid Distill step (steps 1-4 of the class docstring): the
        losses and ``masked_tokens`` (logged)."""
        num_masked = self.num_masked()
        tokens_c, score, relations = self.teacher_pass(inputs, num_masked)
        kept = self.select_tokens(score, inputs.shape[0], num_masked,
                                  inputs.device)
        relations_m = self.relation_targets(inputs, kept, relations)
        latent, relations_s = self.student_pass(inputs, kept)
        index = self.token_index(kept)
        target = tokens_c.gather(
            1, index.unsqueeze(-1).expand(-1, -1, tokens_c.shape[-1]))
        losses = self.distill_losses(latent, target, relations_s,
                                     relations_m)
        losses['masked_tokens'] = torch.tensor(float(num_masked),
                                               device=inputs.device)
        return losses
