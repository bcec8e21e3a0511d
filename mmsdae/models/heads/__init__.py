from .sdae_head import SdAEHead

__all__ = ['SdAEHead']
