"""The recipe parameters hash: one function for the agent, approvals and the ``hash`` command.

The hash is the SHA-256 (hex) of the parameters' canonical JSON (`signing.canonical_json`),
after normalising each number the way a register may hold it: a float is rounded to float32
precision (185.00000762939453 is 185.0), and a whole number is written without a fraction
(210.0 and 210 hash alike: a scaled int16 register reads 210.0, an engineer types 210). Text and
flags are hashed as they are.

Example::

    >>> recipe_parameters_hash({"recipe_temperature": 210, "recipe_dwell_time": 30.0})
    '...'   # the same as for {"recipe_temperature": 210.0, "recipe_dwell_time": 30}
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping
from typing import Any

from agent.approvals.signing import canonical_json


def normalise(value: Any) -> Any:
    """A value as the hash sees it (numbers at float32 precision, whole numbers as ints)."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            return value
        rounded = float(f"{value:.7g}")
        return int(rounded) if rounded.is_integer() else rounded
    if isinstance(value, Mapping):
        return {str(k): normalise(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [normalise(v) for v in value]
    return value


def recipe_parameters_hash(parameters: Mapping[str, Any]) -> str:
    """SHA-256 hex of the canonical JSON of a recipe's parameters (see the module doc)."""
    return hashlib.sha256(canonical_json(normalise(parameters))).hexdigest()
