from .hooks import *  # noqa: F401,F403
from .loops import ResumableEpochBasedTrainLoop  # noqa: F401
from .optimizers import *  # noqa: F401,F403
