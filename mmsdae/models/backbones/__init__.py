from .sdae_vit import SdAEViT

__all__ = ['SdAEViT']
