# Copyright (c) OpenMMLab. All rights reserved.
from .procedural import ProceduralShapesDataset, ShapesGenerator

__all__ = ['ProceduralShapesDataset', 'ShapesGenerator']
