# Copyright (c) OpenMMLab. All rights reserved.
from .procedural import ProceduralShapesDataset, ShapesGenerator
from .shape_task import ProceduralShapeTaskDataset, ShapeTaskGenerator
from .transforms import BadImageError, SafeLoadImageFromFile

__all__ = [
    'BadImageError', 'ProceduralShapeTaskDataset', 'ProceduralShapesDataset',
    'SafeLoadImageFromFile', 'ShapesGenerator', 'ShapeTaskGenerator'
]
