"""mmdet-scope models (imports mmdet): list ``'mmsdae.models.detectors'`` in
a config's ``custom_imports``."""
from .g2sd_mask_rcnn import G2SDMaskRCNN
from .simple_fpn import SimpleFPN

__all__ = ['G2SDMaskRCNN', 'SimpleFPN']
