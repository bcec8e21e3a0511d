"""The SdAE encoder: one ViT class serves as student and as teacher."""
from typing import Optional, Tuple

import torch
from mmengine.utils import to_2tuple
from mmpretrain.models import MAEViT, VisionTransformer
from mmpretrain.registry import MODELS


@MODELS.register_module()
class SdAEViT(MAEViT):
    """ViT encoder for SdAE pre-training (SdAE paper Sec. 2, Fig. 2).

    mmpretrain's :class:`MAEViT` with :meth:`encode_patches`, which encodes
    chosen patch subsets each as its own sequence: the student's visible
    patches and the teacher views of Sec. 2.2. ``mask_ratio`` (0.75,
    supplementary Sec. 1) must leave visible and masked patches.
    """

    def __init__(self,
                 arch='b',
                 img_size=224,
                 patch_size=16,
                 mask_ratio: float = 0.75,
                 **kwargs) -> None:
        _check_geometry(img_size, patch_size, mask_ratio)
        super().__init__(
            arch=arch,
            img_size=img_size,
            patch_size=patch_size,
            mask_ratio=mask_ratio,
            **kwargs)

    @property
    def num_visible(self) -> int:
        """Patches the student sees: ``int(N * (1 - r))`` as in MAE."""
        return int(self.num_patches * (1 - self.mask_ratio))

    @property
    def num_masked(self) -> int:
        return self.num_patches - self.num_visible

    def forward(self,
                x: torch.Tensor,
                mask: Optional[bool] = True
                ) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``mask=True``: :class:`MAEViT`'s random masking, ``(latent (B, 1 +
        num_visible, C), mask (B, N), ids_restore (B, N))``; ``None`` /
        ``False``: the plain ViT on the whole image (MAEViT still masks)."""
        if not mask:
            return VisionTransformer.forward(self, x)
        return super().forward(x, mask=True)

    def random_order(self, batch: int, device=None) -> torch.Tensor:
        """A random masking order, drawn as MAE's ``random_masking`` draws it
        (argsort of uniform noise, the same random numbers): (B, N) patch
        indices whose first :attr:`num_visible` are the visible patches."""
        noise = torch.rand(batch, self.num_patches, device=device)
        return torch.argsort(noise, dim=1)

    def forward_visible(self, x: torch.Tensor, ids_shuffle: torch.Tensor
                        ) -> Tuple[torch.Tensor, torch.Tensor]:
        """The masked forward of :meth:`forward` for a given order
        (:meth:`random_order`): ``(latent, ids_restore)`` as there. Lets a
        caller draw the mask before running the encoder (SdAE runs its
        teacher first)."""
        visible = ids_shuffle[:, :self.num_visible]
        latent = self.encode_patches(x, visible.unsqueeze(1), keep_cls=True)
        return latent.squeeze(1), torch.argsort(ids_shuffle, dim=1)

    def encode_patches(self,
                       x: torch.Tensor,
                       patch_ids: torch.Tensor,
                       keep_cls: bool = False) -> torch.Tensor:
        """(B, G, (1 +) n, C) final features of each subset ``patch_ids[b,
        g]`` (B, G, n) encoded as its own sequence (class token, then those
        patches with their own position embeddings): subsets never attend
        to each other, SdAE Sec. 2.2's multi-fold masking."""
        if patch_ids.dim() != 3 or patch_ids.shape[0] != x.shape[0]:
            raise ValueError(
                'patch_ids must have shape (batch, sequences, tokens) with '
                f'batch {x.shape[0]}, got {tuple(patch_ids.shape)}')
        batch, groups, length = patch_ids.shape
        tokens = self.patch_embed(x)[0] + self.pos_embed[:, 1:]
        dims = tokens.shape[-1]
        index = patch_ids.reshape(batch, groups * length, 1).expand(-1, -1, dims)
        seqs = torch.gather(tokens, 1, index).reshape(batch * groups, length,
                                                      dims)
        cls_token = (self.cls_token + self.pos_embed[:, :1]).expand(
            batch * groups, -1, -1)
        seqs = torch.cat([cls_token, seqs], dim=1)
        # as MAEViT's masked path: no pre_norm / drop_after_pos, so the
        # teacher of RC-MAE-S sees exactly what the student's encoder sees
        for layer in self.layers:
            seqs = layer(seqs)
        if self.final_norm:
            seqs = self.ln1(seqs)
        if not keep_cls:
            seqs = seqs[:, 1:]
        return seqs.reshape(batch, groups, seqs.shape[1], dims)


def _check_geometry(img_size, patch_size, mask_ratio: float) -> None:
    """Refuse image/patch sizes and mask ratios SdAE cannot run with."""
    if not 0.0 < float(mask_ratio) < 1.0:
        raise ValueError(f'mask_ratio={mask_ratio} is outside (0, 1); the '
                         'paper uses 0.75.')
    (img_h, img_w), (patch_h, patch_w) = to_2tuple(img_size), to_2tuple(
        patch_size)
    if img_h % patch_h or img_w % patch_w:
        raise ValueError(f'img_size={img_size} is not divisible by '
                         f'patch_size={patch_size}.')
    num_patches = (img_h // patch_h) * (img_w // patch_w)
    num_visible = int(num_patches * (1 - mask_ratio))
    if num_visible < 1 or num_visible >= num_patches:
        raise ValueError(
            f'mask_ratio={mask_ratio} leaves {num_visible} of {num_patches} '
            'patches visible: keep at least one visible and one masked.')
