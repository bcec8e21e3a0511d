# Copyright (c) OpenMMLab. All rights reserved.
from .imagenet_variants import ImageNetA, ImageNetC, ImageNetR, ImageNetSketch
from .inat2019 import INat2019
from .procedural import ProceduralShapesDataset, ShapesGenerator
from .shape_task import ProceduralShapeTaskDataset, ShapeTaskGenerator
from .transforms import BadImageError, SafeLoadImageFromFile

__all__ = [
    'BadImageError', 'ImageNetA', 'ImageNetC', 'ImageNetR', 'ImageNetSketch',
    'INat2019', 'ProceduralShapeTaskDataset',
    'ProceduralShapesDataset', 'SafeLoadImageFromFile', 'ShapesGenerator',
    'ShapeTaskGenerator'
]
