"""One measured figure beside its baseline, and how the two compare."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

__all__ = ["Figure"]


@dataclass
class Figure:
    """A result of the suite.

    Attributes:
        name: What was measured.
        unit: The unit of ``value`` and ``baseline``.
        value: mqttpush's figure (median of the runs).
        baseline: The baseline's figure in the same run, when there is one.
        baseline_label: What the baseline is.
        better: Whether a higher or a lower value is better.
        target: The target as a ratio to the baseline (``ratio >= target`` when higher
            is better, ``ratio <= target`` when lower is).
        limit: The target as an absolute bound on ``value`` (same direction).
        runs: Every run's value (and the baseline's), for the record.
        notes: Anything else worth printing (lost, duplicates, memory...).
    """

    name: str
    unit: str
    value: float
    baseline: float | None = None
    baseline_label: str = ""
    better: Literal["higher", "lower"] = "higher"
    target: float | None = None
    limit: float | None = None
    runs: dict[str, list[float]] = field(default_factory=dict)
    notes: dict[str, Any] = field(default_factory=dict)

    @property
    def ratio(self) -> float | None:
        """``value / baseline``, when there is a baseline."""
        if self.baseline is None or self.baseline == 0:
            return None
        return self.value / self.baseline

    @property
    def met(self) -> bool | None:
        """Whether every target set is met (None when there is none)."""
        checks = []
        if self.target is not None and self.ratio is not None:
            checks.append(self._within(self.ratio, self.target))
        if self.limit is not None:
            checks.append(self._within(self.value, self.limit))
        return all(checks) if checks else None

    def _within(self, measured: float, bound: float) -> bool:
        return measured >= bound if self.better == "higher" else measured <= bound

    def to_json(self) -> dict[str, Any]:
        """The figure as plain JSON, with its ratio and verdict."""
        return {**asdict(self), "ratio": self.ratio, "met": self.met}
