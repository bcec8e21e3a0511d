"""The SdAE encoder: one ViT class serves as student and as teacher."""
from typing import Optional, Tuple

import torch
from mmengine.utils import to_2tuple
from mmpretrain.models import MAEViT, VisionTransformer
from mmpretrain.registry import MODELS


@MODELS.register_module()
class SdAEViT(MAEViT):
    """ViT encoder for SdAE pre-training (SdAE paper Sec. 2, Fig. 2).

    It is mmpretrain's :class:`MAEViT` (fixed 2-D sin-cos position
    embedding, random masking) with one extra entry point,
    :meth:`encode_patches`, that encodes chosen patch subsets, each subset as
    its own sequence with its own class token. The student uses it for the
    visible patches; the EMA teacher (a copy of this module, see
    :class:`mmsdae.models.SdAE`) uses it for the teacher views of Sec. 2.2
    (multi-fold masking, teacher crop, only-masked, full image).

    Args:
        arch, img_size, patch_size, drop_path_rate, ...: as :class:`MAEViT`.
        mask_ratio (float): ratio r of masked patches, strictly in (0, 1).
            0.75 keeps 49 of the 196 patches of a 224 px image with 16 px
            patches (supplementary Sec. 1).

    Raises:
        ValueError: if ``mask_ratio`` is outside (0, 1), if the image size is
            not divisible by the patch size, or if the ratio leaves no visible
            or no masked patch.
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
        """Encode the visible patches of a random mask, MAE style.

        Args:
            x: images (B, C, H, W).
            mask: ``True`` masks at random and returns
                ``(latent, mask, ids_restore)`` like :class:`MAEViT`;
                ``None`` or ``False`` runs the plain ViT on the whole image
                (unlike :class:`MAEViT`, where ``False`` still masks).

        Returns:
            ``latent`` (B, 1 + num_visible, C) with the class token first,
            ``mask`` (B, N) with 1 for masked patches, ``ids_restore`` (B, N)
            that un-shuffles ``cat(visible, masked)`` back to raster order;
            ``ids_restore.argsort(1)`` is the random order, whose first
            ``num_visible`` entries are the visible patches.
        """
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
        """Encode subsets of each image's patches as separate sequences.

        Every subset ``patch_ids[b, g]`` becomes one sequence: the class
        token (plus its position embedding) followed by the patch tokens at
        those indices, each with the position embedding of its own grid
        position. All ``B * G`` sequences run through the blocks as one batch,
        so the tokens of one subset never attend to another subset: this is
        the multi-fold masking of SdAE Sec. 2.2 when the subsets are folds.

        Args:
            x: images (B, C, H, W).
            patch_ids: (B, G, n) raster indices in [0, N) of the patches of
                G sequences per image.
            keep_cls: keep the class token in the output.

        Returns:
            (B, G, n (+1 with the class token), C) features after the final
            norm.
        """
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
        raise ValueError(
            f'mask_ratio={mask_ratio} is outside (0, 1): SdAE needs visible '
            'patches for the student and masked ones for the teacher; the '
            'paper uses 0.75.')
    (img_h, img_w), (patch_h, patch_w) = to_2tuple(img_size), to_2tuple(
        patch_size)
    if img_h % patch_h or img_w % patch_w:
        raise ValueError(
            f'img_size={img_size} is not divisible by patch_size='
            f'{patch_size}: choose an image size that is a multiple of the '
            'patch size (e.g. 224 with 16).')
    num_patches = (img_h // patch_h) * (img_w // patch_w)
    num_visible = int(num_patches * (1 - mask_ratio))
    if num_visible < 1 or num_visible >= num_patches:
        raise ValueError(
            f'mask_ratio={mask_ratio} leaves {num_visible} of {num_patches} '
            'patches visible: use a ratio that keeps at least one visible and '
            'one masked patch.')
