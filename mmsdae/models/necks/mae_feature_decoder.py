"""The MAE decoder as a feature predictor: hidden states before its norm."""
from typing import Optional

import torch
from mmpretrain.models import MAEPretrainDecoder
from mmpretrain.registry import MODELS
from torch import nn


def decoder_hidden_states(decoder: nn.Module,
                          latent: torch.Tensor,
                          ids_restore: torch.Tensor,
                          num_blocks: Optional[int] = None) -> torch.Tensor:
    """The hidden state of an MAE decoder after its first ``num_blocks``
    blocks, before the decoder norm, class token first.

    The first half of ``MAEPretrainDecoder.forward`` (MAE's
    ``forward_decoder``): embed the encoder output, append mask tokens,
    un-shuffle to raster order, add the decoder position embedding, run the
    blocks; stop before ``decoder_norm`` / ``decoder_pred``. The released
    G2SD code (``models_mae.py``, ``forward_decoder``) takes both its target
    (teacher, after ``suplayer`` = 4 blocks) and its student features (all
    blocks) at this point.

    ``latent`` (B, 1 + n, C_enc) and ``ids_restore`` (B, N) as the MAE
    encoder gives them; ``num_blocks=None`` runs all. Returns
    (B, 1 + N, C_dec).
    """
    blocks = decoder.decoder_blocks
    if num_blocks is None:
        num_blocks = len(blocks)
    if not 1 <= num_blocks <= len(blocks):
        raise ValueError(f'num_blocks={num_blocks}: the decoder has '
                         f'{len(blocks)} blocks.')
    x = decoder.decoder_embed(latent)
    batch, dims = x.shape[0], x.shape[2]
    mask_tokens = decoder.mask_token.expand(
        batch, ids_restore.shape[1] + 1 - x.shape[1], -1)
    patches = torch.cat([x[:, 1:], mask_tokens], dim=1)
    patches = torch.gather(
        patches, 1, ids_restore.unsqueeze(-1).expand(-1, -1, dims))
    x = torch.cat([x[:, :1], patches], dim=1) + decoder.decoder_pos_embed
    for block in blocks[:num_blocks]:
        x = block(x)
    return x


@MODELS.register_module()
class MAEFeatureDecoder(MAEPretrainDecoder):
    """mmpretrain's ``MAEPretrainDecoder`` without its norm and pixel
    projection: ``forward`` returns the hidden states after the last block
    (:func:`decoder_hidden_states`), class token first.

    The student decoder of G2SD generic distillation: its last hidden state,
    before any decoder norm, feeds the feature-prediction head (released
    code: ``decoderfeature_pred(hidden_feature)`` on ``forward_decoder``'s
    output, which applies no ``decoder_norm``). Same parameter names as
    ``MAEPretrainDecoder`` (``decoder_embed``, ``mask_token``,
    ``decoder_pos_embed``, ``decoder_blocks``) and the same initialization
    (fixed 2-D sin-cos ``decoder_pos_embed``, ``mask_token`` ~ N(0, 0.02)).

    Args:
        num_patches, embed_dim, decoder_embed_dim, decoder_depth,
        decoder_num_heads, mlp_ratio, norm_cfg (of the blocks), init_cfg:
            as ``MAEPretrainDecoder``.
    """

    def __init__(self,
                 num_patches: int = 196,
                 embed_dim: int = 384,
                 decoder_embed_dim: int = 256,
                 decoder_depth: int = 4,
                 decoder_num_heads: int = 8,
                 mlp_ratio: float = 4.,
                 norm_cfg: dict = dict(type='LN', eps=1e-6),
                 init_cfg=None) -> None:
        super().__init__(
            num_patches=num_patches,
            embed_dim=embed_dim,
            decoder_embed_dim=decoder_embed_dim,
            decoder_depth=decoder_depth,
            decoder_num_heads=decoder_num_heads,
            mlp_ratio=mlp_ratio,
            norm_cfg=norm_cfg,
            predict_feature_dim=1,
            init_cfg=init_cfg)
        # no decoder norm / prediction layer: nothing unused to train,
        # save or make DDP look for
        del self.decoder_pred
        delattr(self, self.decoder_norm_name)
        self.decoder_norm_name = None

    @property
    def decoder_embed_dim(self) -> int:
        return self.decoder_embed.out_features

    @property
    def decoder_norm(self):
        return None

    def forward(self, x: torch.Tensor,
                ids_restore: torch.Tensor) -> torch.Tensor:
        """(B, 1 + N, decoder_embed_dim) hidden states of all blocks."""
        return decoder_hidden_states(self, x, ids_restore)
