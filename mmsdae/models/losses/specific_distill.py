"""The loss terms of G2SD's specific (task) distillation, as plain functions
of tensors (no mmdet / mmseg import), so that each can be checked by hand.

Sources: the G2SD supplementary (Sec. 1) and the released code
(pengzhiliang/G2SD):

* classification: DeiT's hard distillation (Touvron et al. 2021, Eq. 3:
  ``L = 1/2 CE(psi(Z_s), y) + 1/2 CE(psi(Z_dt), y_t)``, ``y_t =
  argmax_c Z_t(c)``); released ``G2SD/engine_finetune_dis.py``:
  ``(criterion(outputs, targets) + F.cross_entropy(distill_pred,
  teacher_out.argmax(-1))) / 2``. See :func:`hard_distillation_loss`.
* detection: supplementary Sec. 1.2, ``L = L_GT + alpha L_FPN + beta
  L_head`` (alpha 0.001, beta 0.1, "distill warm step" 500) "the same as
  [2]" (Du et al. 2021, feature richness score, FRS); released
  ``G2SD_det_dis/tools/plain_distill_net.py``. See
  :func:`objectness_weighted_distillation` and
  :func:`distill_warmup_factor`.
* segmentation: supplementary Sec. 1.3, logit-map distillation with
  temperature 1 and weight 3; released
  ``G2SD_seg_dis/src/distillation/losses/cwd.py`` (Shu et al. 2021,
  channel-wise distillation, CWD). See :func:`channel_wise_divergence`.
"""
from typing import Sequence, Tuple

import torch
import torch.nn.functional as F


def hard_distillation_loss(dist_logits: torch.Tensor,
                           teacher_logits: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of the distillation head to the teacher's hard
    prediction: ``CE(dist_logits, argmax(teacher_logits))`` averaged over
    the batch, without label smoothing (DeiT Eq. 3, second term; released
    ``F.cross_entropy(distill_pred, teacher_out.argmax(-1))``).

    Args:
        dist_logits: ``(N, K)`` logits of the student's distillation head.
        teacher_logits: ``(N, K)`` logits of the teacher on the same
            (mixed) images.
    """
    target = teacher_logits.detach().argmax(dim=1)
    return F.cross_entropy(dist_logits.float(), target)


def distill_warmup_factor(iteration: int, warmup_iters: int) -> float:
    """``min(iteration / warmup_iters, 1)``: the linear ramp of the
    detection distillation terms (supplementary Sec. 1.2, "distill warm
    step 500"; released ``if distill_warm_step > iteration: loss *=
    iteration / distill_warm_step`` with the 0-based iteration, so the
    first iteration has no distillation). ``warmup_iters <= 0``: 1."""
    if warmup_iters <= 0 or iteration >= warmup_iters:
        return 1.0
    return max(float(iteration), 0.0) / float(warmup_iters)


def objectness_weighted_distillation(
        student_feats: Sequence[torch.Tensor],
        teacher_feats: Sequence[torch.Tensor],
        student_objectness: Sequence[torch.Tensor],
        teacher_objectness: Sequence[torch.Tensor]
) -> Tuple[torch.Tensor, torch.Tensor]:
    """``(L_FPN, L_head)`` of G2SD's detection distillation (FRS, Du et al.
    2021, as the released ``plain_distill_net.py`` computes it), summed over
    the pyramid levels ``l``:

    * ``w_l = max_a sigmoid(t_obj_l[:, a])``: the teacher's RPN objectness,
      its maximum over the ``A`` anchors of each position, a ``(N, H, W)``
      spatial weight (the feature richness score; no gradient);
    * ``L_FPN = sum_l sum_{n,c,h,w} w_l (t_l - s_l)^2 / sum w_l``, with
      ``s_l`` the student's level-``l`` feature *after* its 3x3 adapter
      convolution (the caller applies it);
    * ``L_head = sum_l sum_{n,a,h,w} w_l BCE(sigmoid(s_obj_l),
      sigmoid(t_obj_l)) / sum w_l``: binary cross-entropy of the student's
      objectness to the teacher's objectness probability, per anchor,
      weighted the same way.

    Args:
        student_feats / teacher_feats: per level ``(N, C, H, W)``.
        student_objectness / teacher_objectness: per level the RPN
            classification logits ``(N, A, H, W)`` (mmdet's ``RPNHead``
            with a sigmoid: one channel per anchor).

    Returns:
        ``(L_FPN, L_head)``, float32 scalars, unweighted (the detector
        multiplies them by 0.001 and 0.1 and the warm-up factor).
    """
    if not (len(student_feats) == len(teacher_feats) == len(
            student_objectness) == len(teacher_objectness)):
        raise ValueError(
            'objectness_weighted_distillation: the student and teacher need '
            'as many feature and objectness levels, got '
            f'{len(student_feats)}, {len(teacher_feats)}, '
            f'{len(student_objectness)}, {len(teacher_objectness)}.')
    feat_loss = student_feats[0].new_zeros((), dtype=torch.float32)
    head_loss = feat_loss.clone()
    for level, (s, t, s_obj, t_obj) in enumerate(
            zip(student_feats, teacher_feats, student_objectness,
                teacher_objectness)):
        if s.shape != t.shape or s_obj.shape != t_obj.shape \
                or s_obj.shape[-2:] != s.shape[-2:]:
            raise ValueError(
                f'level {level}: student feature {tuple(s.shape)} / '
                f'objectness {tuple(s_obj.shape)} do not match the '
                f'teacher\'s {tuple(t.shape)} / {tuple(t_obj.shape)}: the '
                'teacher and the student need the same pyramid (strides, '
                'FPN channels, anchors) on the same input.')
        t_prob = t_obj.detach().float().sigmoid()
        weight = t_prob.amax(dim=1, keepdim=True)  # (N, 1, H, W)
        norm = weight.sum()
        feat_loss = feat_loss + (
            (t.detach().float() - s.float())**2 * weight).sum() / norm
        bce = F.binary_cross_entropy_with_logits(
            s_obj.float(), t_prob, reduction='none')
        head_loss = head_loss + (bce * weight).sum() / norm
    return feat_loss, head_loss


def channel_wise_divergence(student_logits: torch.Tensor,
                            teacher_logits: torch.Tensor,
                            tau: float = 1.0) -> torch.Tensor:
    """Channel-wise distillation (Shu et al. 2021, Eq. 2-3): each channel
    ``c`` of each image ``n`` is turned into a distribution over the
    ``H x W`` positions, ``phi(y)_{n,c,i} = softmax_i(y_{n,c,i} / tau)``,
    and

    ``L = tau^2 / (N C) sum_{n,c} KL(phi(y^T)_{n,c} || phi(y^S)_{n,c})``.

    The released ``cwd.py`` sums ``-phi(y^T) log phi(y^S)`` (the cross
    entropy): it differs from the KL divergence by the teacher's entropy,
    a constant for the student, so the gradients are the same; the KL form
    is 0 for identical logits.

    Args:
        student_logits / teacher_logits: ``(N, C, H, W)`` segmentation
            logits (G2SD: UperNet's ``conv_seg`` output, 150 channels, at
            1/4 of the input, before upsampling).
        tau: the temperature (G2SD: 1).

    Returns:
        A float32 scalar (unweighted; G2SD multiplies it by 3).
    """
    if student_logits.shape != teacher_logits.shape:
        raise ValueError(
            f'channel_wise_divergence: student logits '
            f'{tuple(student_logits.shape)} and teacher logits '
            f'{tuple(teacher_logits.shape)} differ: the teacher needs the '
            'same classes and output stride as the student.')
    if tau <= 0:
        raise ValueError(f'channel_wise_divergence: tau={tau} must be > 0.')
    n, c = student_logits.shape[:2]
    s = student_logits.float().reshape(n * c, -1) / tau
    t = teacher_logits.detach().float().reshape(n * c, -1) / tau
    log_p_t = F.log_softmax(t, dim=1)
    log_p_s = F.log_softmax(s, dim=1)
    kl = (log_p_t.exp() * (log_p_t - log_p_s)).sum()
    return kl * tau**2 / (n * c)
