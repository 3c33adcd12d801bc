from typing import Any

import pytest
from pydantic import BaseModel

from mqttpush import Agent, InvalidParamsError, operation


class Point(BaseModel):
    x: int
    y: int


class Calc(Agent):
    @operation
    async def add(self, a: int, b: int = 1) -> int:
        """Add two numbers.

        More text.
        """
        return a + b

    @operation(name="point.norm1")
    async def norm(self, p: Point) -> dict[str, Any]:
        return {"n": abs(p.x) + abs(p.y)}


def test_operations_are_collected_with_names_and_descriptions():
    ops = Calc.operations()
    assert set(ops) == {"add", "point.norm1"}
    assert ops["add"].description == "Add two numbers."


def test_params_are_validated_by_name():
    op = Calc.operations()["add"]
    assert op.validate({"a": "2"}) == {"a": 2, "b": 1}
    with pytest.raises(InvalidParamsError) as info:
        op.validate({"a": "x", "c": 1})
    locs = {tuple(e["loc"]) for e in info.value.data}
    assert locs == {("a",), ("c",)}
    with pytest.raises(InvalidParamsError, match="by name"):
        op.validate([1, 2])
    with pytest.raises(InvalidParamsError):
        op.validate(None)  # a is required


def test_nested_models_validate_and_results_serialise():
    op = Calc.operations()["point.norm1"]
    kwargs = op.validate({"p": {"x": -2, "y": 3}})
    assert kwargs["p"] == Point(x=-2, y=3)
    assert op.dump_result({"n": 5}) == {"n": 5}


def test_operation_requires_async_functions():
    with pytest.raises(TypeError):
        operation(lambda self: None)  # type: ignore[arg-type, return-value]
