"""mmsdae: self-distilled masked image modeling on the OpenMMLab stack.

Importing the package registers its modules into mmpretrain's registries
(configs use ``custom_imports=dict(imports=['mmsdae'])`` with
``default_scope='mmpretrain'``) and allow-lists the types MMEngine writes into
checkpoints, so that resuming works under torch's ``weights_only`` loading.
"""
from .utils import allow_mmengine_checkpoint_globals
from .version import __version__

allow_mmengine_checkpoint_globals()

from . import datasets, engine, evaluation, models  # noqa: E402,F401

__all__ = ['__version__', 'datasets', 'engine', 'evaluation', 'models']
