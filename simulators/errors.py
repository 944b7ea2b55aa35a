"""The simulators' one exception tree.

``SimulatorError``
  ``PlantConfigError``      the plant YAML is unreadable or invalid (names the file and key)
  ``ScenarioError``         a scenario YAML is invalid or names an unknown controller/tag
  ``UnknownTagError``       a runtime call names a controller or tag the plant does not have
  ``ValueOutOfRange``       an engineering value does not fit the tag's register type

The root is `agent.runtime.errors.OtwatchError`, as for every otwatch exception.
"""

from __future__ import annotations

from agent.runtime.errors import OtwatchError


class SimulatorError(OtwatchError):
    """Base of every error the simulated plant raises."""


class PlantConfigError(SimulatorError):
    """The plant file is invalid; the message names the file, the key and the fix."""


class ScenarioError(SimulatorError):
    """A scenario file is invalid or does not fit the plant it is played on."""


class UnknownTagError(SimulatorError, KeyError):
    """A controller or tag name that the plant does not define."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "unknown controller or tag"


class ValueOutOfRange(SimulatorError, ValueError):
    """An engineering value that the tag's data type and scale cannot hold."""
