"""Settings as frozen dataclasses whose fields carry their own description and valid range.

One declaration serves three readers: the core validates values with it, the
ROS nodes turn it into parameter descriptors, and the `facesym` command reads
the same YAML parameter file as the nodes. A value outside its range raises
ValueError naming the setting and the reason. Values are scalars, or a tuple
of integers (a list in YAML and ROS: an integer-array parameter) whose items
each lie in the range.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from typing import Any, TypeVar

Number = int | float


def setting(default: Any, description: str, *, min: Number | None = None, max: Number | None = None,
            choices: tuple[str, ...] | None = None, read_only: bool = False) -> Any:
    """A dataclass field with a description, an optional [min, max] range or set of choices.

    read_only marks settings a running node cannot change (they shape its subscriptions).
    """
    return dataclasses.field(default=default, metadata={
        'description': description, 'min': min, 'max': max, 'choices': choices, 'read_only': read_only})


def validate(instance: Any) -> None:
    """Check every field of a settings dataclass against its type, range and choices."""
    for field in dataclasses.fields(instance):
        value = getattr(instance, field.name)
        expected = type(field.default)
        if expected is tuple:
            _validate_tuple(instance, field, value)
            continue
        if expected is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
            object.__setattr__(instance, field.name, value)
        if type(value) is not expected:
            raise ValueError(f'{field.name} must be a {expected.__name__}, got {value!r}')
        if expected is float and not math.isfinite(value):
            raise ValueError(f'{field.name} must be a finite number, got {value}')
        meta = field.metadata
        if meta.get('min') is not None and value < meta['min']:
            raise ValueError(f'{field.name} must be >= {meta["min"]}, got {value}')
        if meta.get('max') is not None and value > meta['max']:
            raise ValueError(f'{field.name} must be <= {meta["max"]}, got {value}')
        if meta.get('choices') is not None and value not in meta['choices']:
            raise ValueError(f'{field.name} must be one of {", ".join(meta["choices"])}, got {value!r}')


def _validate_tuple(instance: Any, field: dataclasses.Field, value: Any) -> None:
    """A tuple setting holds as many integers as its default (a list from YAML, an array from ROS), each within
    [min, max]."""
    count = len(field.default)
    if isinstance(value, str) or not isinstance(value, Sequence) or len(value) != count or not all(
            isinstance(item, int) and not isinstance(item, bool) for item in value):
        shown = list(value) if isinstance(value, Sequence) and not isinstance(value, str) else value
        raise ValueError(f'{field.name} must be a list of {count} integers, got {shown!r}')
    meta = field.metadata
    for item in value:
        if meta.get('min') is not None and item < meta['min']:
            raise ValueError(f'{field.name} must hold integers >= {meta["min"]}, got {list(value)}')
        if meta.get('max') is not None and item > meta['max']:
            raise ValueError(f'{field.name} must hold integers <= {meta["max"]}, got {list(value)}')
    object.__setattr__(instance, field.name, tuple(value))


class Settings:
    """Base of settings dataclasses: validated on construction."""

    def __post_init__(self) -> None:
        validate(self)


S = TypeVar('S')


def from_mapping(cls: type[S], values: Mapping[str, Any], *, source: str = 'settings') -> S:
    """Build settings from a mapping, ignoring keys that belong to other settings classes."""
    names = {field.name for field in dataclasses.fields(cls)}
    try:
        return cls(**{key: value for key, value in values.items() if key in names})
    except TypeError as error:
        raise ValueError(f'{source}: {error}') from None
