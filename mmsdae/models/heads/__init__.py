from .distill_token_head import DistillTokenClsHead
from .g2sd_head import G2SDHead
from .hybrid_distill_head import FeatureDistillHead, TokenRelationHead
from .rcmae_head import RCMAEHead
from .sdae_head import SdAEHead

__all__ = [
    'DistillTokenClsHead', 'FeatureDistillHead', 'G2SDHead', 'RCMAEHead',
    'SdAEHead', 'TokenRelationHead'
]
