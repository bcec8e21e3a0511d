"""``to_pair``: an int or a 2-sequence as an ``(int, int)`` pair (image,
patch and grid sizes); shared by the checkpoint code and the models."""
import numbers
from typing import Sequence, Tuple, Union


def to_pair(value: Union[int, Sequence[int]]) -> Tuple[int, int]:
    """``7 -> (7, 7)``, ``(7, 5) -> (7, 5)``."""
    if isinstance(value, numbers.Number):
        return int(value), int(value)
    value = tuple(int(v) for v in value)
    if len(value) != 2:
        raise ValueError(f'expected an int or a pair, got {value!r}.')
    return value
