from .distilled_vit import DistilledViT
from .sdae_vit import SdAEViT

__all__ = ['DistilledViT', 'SdAEViT']
