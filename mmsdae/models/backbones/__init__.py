from .dense_vit import DenseViT
from .distilled_vit import DistilledViT
from .sdae_vit import SdAEViT

__all__ = ['DenseViT', 'DistilledViT', 'SdAEViT']
