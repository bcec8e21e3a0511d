from .rcmae_head import RCMAEHead
from .sdae_head import SdAEHead

__all__ = ['RCMAEHead', 'SdAEHead']
