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
from ..utils.vit import run_encoder
from .frozen_teacher_distiller import FrozenTeacherSelfSupervisor

TEACHER_M_INPUTS = ('visible', 'full')


@MODELS.register_module()
class HybridDistill(FrozenTeacherSelfSupervisor):
    """Distil a ViT from two frozen teachers at once.

    What the sources establish (abstracts of arXiv 2306.15876 and of the
    ICLR 2024 version, appendix ``papers/hybrid_distill_appendix.txt``):

    - ``teacher_c`` (T_c): a supervised or contrastive ViT, DeiT or CLIP.
      The student regresses its *final* features through a projection
      (:class:`FeatureDistillHead`, ``head``): discrimination;
    - ``teacher_m`` (T_m): an MIM ViT, MAE. The student imitates its token
      relations, i.e. attention maps, at *intermediate* blocks
      (:class:`TokenRelationHead`, ``relation_head``): diversity;
    - ``L = L_feature + alpha * L_relation``; appendix Table A4 sweeps alpha
      in {0, 0.1, 0.3, 0.5, 0.7, 1.0}, 1.0 is best for both teacher pairs
      (alpha = 0 is "no MIM supervision": T_m is then not run at all);
    - progressive redundant token masking of the student's input
      (``token_masking``; appendix Table A5 on / off);
    - symmetric student: no asymmetric decoder (appendix B.3 abandons it)
      and no extra attention parameters (B.1): the student is a plain ViT
      (``backbone``, :class:`SdAEViT` so it can encode a subset of the
      patches), exported alone for downstream tasks
      (``tools/model_converters/sdae_to_vit.py``: ``backbone.*``);
    - ViT-B students, 300 distillation epochs for the headline results.

    Open in those sources (the main paper's method section could not be
    consulted here), each a config option, with our default:

    - ``relation_layers``: which student blocks imitate which T_m blocks.
      Default: every block but the last (``range(depth - 1)``, the same
      index in T_m), the literal reading of "intermediate layers" with the
      last block left to T_c's features;
    - the distances: see :mod:`mmsdae.models.heads.hybrid_distill_head`
      (smooth L1 on LayerNorm-ed T_c tokens; per-head KL of attention
      rows);
    - how redundancy is scored and the schedule: see
      :mod:`mmsdae.models.utils.token_masking` (class-token attention of
      T_c's last block; stages over the training progress);
    - ``teacher_m_input``: T_m runs on the tokens the student sees
      (``'visible'``, default: an MAE encoder is trained on visible subsets,
      and the student and teacher attention rows are distributions over the
      same tokens) or on the whole image (``'full'``: its logits are
      restricted to the student's tokens, so each row is renormalised over
      them).

    One step (:meth:`loss`):

    1. T_c encodes the whole image (inference mode; the step's AMP dtype):
       final tokens (B, 1 + N, C_c) and, when masking, the redundancy score
       of every patch;
    2. the ``k`` most redundant patches are masked, ``k`` from the schedule
       at the current training progress (epoch / max_epochs);
    3. T_m gives its attention logits at ``teacher_relation_layers`` over
       the class token and the kept patches;
    4. the student encodes the class token and the kept patches; its
       attention logits at ``relation_layers`` and its final tokens go to
       the two heads, against T_c's tokens at the same positions.

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
        teacher_m_input (str): ``'visible'`` or ``'full'``, see above.
        teacher_c_norm (dict, optional): ``dict(mean=..., std=...)`` (0-255
            RGB) that T_c was trained with when it differs from the data
            preprocessor's, e.g. CLIP's; the student's input is re-normalised
            for T_c.
        teacher_amp_dtype: the teachers' autocast dtype under AMP.
        Others: as :class:`BaseSelfSupervisor`.
    """

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
        width = self.backbone.embed_dims
        if self.head.in_channels != width:
            raise ValueError(
                f'head.in_channels={self.head.in_channels} but the student '
                f'is {width} wide: set head.in_channels={width}.')

    def _check_grid(self, name: str, encoder) -> None:
        student = (tuple(self.backbone.patch_resolution),
                   self.backbone.patch_embed.projection.kernel_size)
        own = (tuple(encoder.patch_resolution),
               encoder.patch_embed.projection.kernel_size)
        if own != student:
            raise ValueError(
                f'model.{name}.backbone cuts the image into a {own[0]} grid '
                f'of {own[1]} px patches, the student into {student[0]} of '
                f'{student[1]} px: Hybrid Distill pairs the tokens one to '
                'one, so set the same img_size and patch_size.')

    def _check_teachers(self) -> None:
        for name in ('teacher_c', 'teacher_m'):
            encoder = getattr(getattr(self, name), 'backbone', None)
            if encoder is None or not hasattr(encoder, 'layers'):
                raise ValueError(f'model.{name} needs a ViT backbone.')
            self._check_grid(name, encoder)
        encoder = self.teacher_c.backbone
        if getattr(encoder, 'out_type', 'raw') != 'raw' or not getattr(
                encoder, 'with_cls_token', True):
            raise ValueError(
                "model.teacher_c.backbone must return every token: set "
                "out_type='raw' and with_cls_token=True.")
        if self.head.out_channels != encoder.embed_dims:
            raise ValueError(
                f'head.out_channels={self.head.out_channels} but T_c is '
                f'{encoder.embed_dims} wide: set head.out_channels='
                f'{encoder.embed_dims}.')
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
        cfg = dict(cfg)
        cfg.pop('type', None)
        try:
            return ProgressiveRedundantMasking(**cfg)
        except TypeError as error:
            raise TypeError(
                f'model.token_masking: {error}; it takes stages, '
                'score_teacher and score_layer (None switches masking '
                'off).') from error

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
    def restrict(logits: torch.Tensor, kept: torch.Tensor) -> torch.Tensor:
        """Logits (B, H, 1 + N, 1 + N) over every token -> over the class
        token and the ``kept`` patches (B, n): rows and columns selected, so
        their softmax renormalises the teacher's attention over the
        student's tokens."""
        batch, heads = logits.shape[:2]
        index = torch.cat([kept.new_zeros(batch, 1), kept + 1], dim=1)
        rows = index[:, None, :, None].expand(-1, heads, -1,
                                              logits.shape[-1])
        logits = logits.gather(2, rows)
        cols = index[:, None, None, :].expand(-1, heads, logits.shape[2], -1)
        return logits.gather(3, cols)

    # --- step ---------------------------------------------------------------

    def select_tokens(self, score: Optional[torch.Tensor], batch: int,
                      num_masked: int, device) -> torch.Tensor:
        """The patches the student sees, (B, N - k) in raster order."""
        if num_masked == 0:
            return all_patches(batch, self.backbone.num_patches, device)
        return self.token_masking.split(score, num_masked)[0]

    def loss(self, inputs: torch.Tensor, data_samples: List[DataSample],
             **kwargs) -> Dict[str, torch.Tensor]:
        """One Hybrid Distill step: ``loss_feature`` + ``loss_relation``
        (already multiplied by alpha), and ``masked_tokens`` (logged)."""
        batch, device = inputs.shape[0], inputs.device
        use_m = self.alpha > 0
        k = self.num_masked()
        masking = self.token_masking
        score_by_c = k > 0 and masking.score_teacher == 'teacher_c'
        target_all, score = self.teacher_c_pass(inputs, score_by_c)
        relations_m = None
        if use_m and self.teacher_m_input == 'full':
            relations_m, score_m = self.teacher_m_relations(
                inputs, all_patches(batch, self.backbone.num_patches,
                                    device))
            if not score_by_c:
                score = score_m
        kept = self.select_tokens(score, batch, k, device)
        if use_m:
            if relations_m is None:
                relations_m, _ = self.teacher_m_relations(inputs, kept)
            elif k > 0:
                relations_m = [self.restrict(r, kept) for r in relations_m]

        layers = self.relation_layers if use_m else []
        with AttentionCapture(self.backbone, layers) as capture:
            latent = self.backbone.encode_patches(
                inputs, kept.unsqueeze(1), keep_cls=True).squeeze(1)
        index = torch.cat([kept.new_zeros(batch, 1), kept + 1], dim=1)
        target = target_all.gather(
            1, index.unsqueeze(-1).expand(-1, -1, target_all.shape[-1]))
        losses = dict(loss_feature=self.head.loss(latent, target))
        if use_m:
            relation = self.relation_head.loss(capture.get(layers),
                                               relations_m)
            losses['loss_relation'] = self.alpha * relation
        losses['masked_tokens'] = torch.tensor(float(k), device=device)
        return losses
