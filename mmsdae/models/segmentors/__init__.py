"""mmseg-scope models (imports mmseg): list ``'mmsdae.models.segmentors'``
in a config's ``custom_imports``."""
from .g2sd_encoder_decoder import G2SDEncoderDecoder

__all__ = ['G2SDEncoderDecoder']
