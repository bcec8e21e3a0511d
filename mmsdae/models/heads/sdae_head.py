"""SdAE's target normalization (Eq. 3) and cosine loss (Eq. 4)."""
import torch
import torch.nn.functional as F
from mmengine.model import BaseModule
from mmpretrain.registry import MODELS


@MODELS.register_module()
class SdAEHead(BaseModule):
    """Compare decoder predictions with the teacher's features.

    Eq. 3 (teacher normalization): each teacher feature is standardised over
    its channels, ``(f - mean(f)) / sqrt(var(f) + eps)`` (biased variance,
    no affine), like MAE's per-patch pixel normalization.

    Eq. 4 (loss): per masked token i, the cosine similarity between the
    prediction and the normalized teacher feature; the loss is
    ``1 - cos`` averaged over the tokens with :math:`m^i = 1`. The constant 1
    only shifts the value (same gradient as the negative cosine) so that a
    perfect prediction scores 0. It is mmpretrain's ``CosineSimilarityLoss``
    with ``shift_factor=1``. (Eq. 4 as printed puts the sums over i inside a
    single cosine; the per-token cosine, as in the released code's
    non-fold path and in the method's description, is used here.)

    The teacher's last LayerNorm already standardises each token; Eq. 3
    matters once that norm's affine weights have moved away from (1, 0).

    Args:
        norm_target (bool): apply Eq. 3; ``False`` is Table 5 row 1 (no
            teacher normalization). Defaults to True.
        eps (float): the epsilon of Eq. 3. Defaults to 1e-6 (as the released
            code).
        loss (dict): the loss config.
    """

    def __init__(self,
                 norm_target: bool = True,
                 eps: float = 1e-6,
                 loss: dict = dict(
                     type='CosineSimilarityLoss',
                     shift_factor=1.0,
                     scale_factor=1.0),
                 init_cfg=None) -> None:
        super().__init__(init_cfg=init_cfg)
        if eps <= 0:
            raise ValueError(f'eps={eps} must be positive (Eq. 3 divides by '
                             'sqrt(var + eps)).')
        self.norm_target = norm_target
        self.eps = eps
        self.loss_module = MODELS.build(loss)

    def normalize_target(self, target: torch.Tensor) -> torch.Tensor:
        """Eq. 3: standardise every token's feature over its channels."""
        mean = target.mean(dim=-1, keepdim=True)
        var = target.var(dim=-1, unbiased=False, keepdim=True)
        return (target - mean) / (var + self.eps).sqrt()

    def loss(self, pred: torch.Tensor, target: torch.Tensor,
             target_mask: torch.Tensor) -> torch.Tensor:
        """Eq. 4 over the target positions.

        Args:
            pred: (B, N, C) decoder predictions at every patch position.
            target: (B, N, C) teacher features at every patch position
                (entries outside ``target_mask`` are ignored).
            target_mask: (B, N) bool, True where the loss applies.
        """
        if pred.shape != target.shape:
            raise ValueError(
                f'prediction {tuple(pred.shape)} and teacher target '
                f'{tuple(target.shape)} differ: the decoder must predict '
                'teacher-sized features (predict_feature_dim = encoder '
                'embed_dims).')
        pred = pred[target_mask]
        target = target[target_mask].float()
        if self.norm_target:
            target = self.normalize_target(target)
        return self.loss_module(pred.float(), target)

    @torch.no_grad()
    def mean_cosine(self, pred: torch.Tensor, target: torch.Tensor,
                    target_mask: torch.Tensor) -> torch.Tensor:
        """Mean cosine similarity between prediction and (Eq. 3 normalized)
        teacher target over the target positions: the quantity Eq. 4
        maximises, logged as ``cos_sim``."""
        target = target[target_mask].float()
        if self.norm_target:
            target = self.normalize_target(target)
        return F.cosine_similarity(pred[target_mask].float(), target,
                                   dim=-1).mean()
