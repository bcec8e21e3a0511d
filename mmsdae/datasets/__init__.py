# Copyright (c) OpenMMLab. All rights reserved.
from .procedural import ProceduralShapesDataset, ShapesGenerator
from .transforms import BadImageError, SafeLoadImageFromFile

__all__ = [
    'BadImageError', 'ProceduralShapesDataset', 'SafeLoadImageFromFile',
    'ShapesGenerator'
]
