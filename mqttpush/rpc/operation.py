"""The ``@operation`` decorator: an agent method callable over JSON-RPC.

Params are validated by a pydantic model built from the method's signature (by name,
unknown names refused); the return value is serialised with a TypeAdapter built from
its return annotation. Both are built once, on first use.
"""

from __future__ import annotations

import inspect
import typing
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar, overload

from pydantic import BaseModel, ConfigDict, TypeAdapter, ValidationError, create_model

from mqttpush.codec import validation_detail
from mqttpush.errors import InvalidParamsError

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

__all__ = ["Operation", "operation", "operations_of"]

P = ParamSpec("P")
R = TypeVar("R")
_ATTR = "__mqttpush_operation__"


@dataclass(eq=False)
class Operation:
    """One operation of an agent.

    Attributes:
        name: The JSON-RPC method name.
        attr: The method's attribute name, looked up on the agent at call time so a
            subclass may override the method without decorating it again.
        func: The decorated coroutine function; its signature defines the params.
        description: The first paragraph of the function's docstring.
    """

    name: str
    attr: str
    func: Callable[..., Awaitable[Any]]
    description: str = ""
    _names: tuple[str, ...] = field(default=(), init=False)

    @cached_property
    def params_model(self) -> type[BaseModel]:
        """The pydantic model for the params object."""
        hints = typing.get_type_hints(self.func, include_extras=True)
        fields: dict[str, Any] = {}
        for i, (pname, param) in enumerate(inspect.signature(self.func).parameters.items()):
            if i == 0:
                continue  # the agent itself
            if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
                raise TypeError(f"operation {self.name}: *args/**kwargs cannot be validated")
            default = ... if param.default is param.empty else param.default
            fields[pname] = (hints.get(pname, Any), default)
        self._names = tuple(fields)
        return create_model(f"{self.name}_params", __config__=ConfigDict(extra="forbid"), **fields)

    @cached_property
    def result_adapter(self) -> TypeAdapter[Any]:
        """Serialiser for the return value."""
        return TypeAdapter(typing.get_type_hints(self.func, include_extras=True).get("return", Any))

    def validate(self, params: dict[str, Any] | list[Any] | None) -> dict[str, Any]:
        """Validate JSON-RPC params into keyword arguments.

        Raises:
            InvalidParamsError: Positional params, or params that fail validation
                (the detail is in ``data``).
        """
        if isinstance(params, list):
            raise InvalidParamsError(
                "params must be an object (by name)", data={"method": self.name}
            )
        model = self.params_model
        if not params and not self._names:  # nothing to validate: no params, none expected
            return {}
        try:
            validated = model.model_validate(params or {})
        except ValidationError as exc:
            raise InvalidParamsError(data=validation_detail(exc)) from exc
        return {name: getattr(validated, name) for name in self._names}

    def dump_result(self, result: Any) -> Any:  # noqa: ANN401 - JSON value out
        """Turn the return value into JSON-compatible Python data."""
        return self.result_adapter.dump_python(result, mode="json")


@overload
def operation(func: Callable[P, Awaitable[R]], /) -> Callable[P, Awaitable[R]]: ...
@overload
def operation(
    *, name: str | None = None
) -> Callable[[Callable[P, Awaitable[R]]], Callable[P, Awaitable[R]]]: ...


def operation(func: Callable[P, Awaitable[R]] | None = None, /, *, name: str | None = None) -> Any:
    """Mark an ``async def`` method of an :class:`~mqttpush.Agent` as a remote operation.

    Use as ``@operation`` or ``@operation(name="wire_name")``.
    """

    def mark(f: Callable[P, Awaitable[R]]) -> Callable[P, Awaitable[R]]:
        if not inspect.iscoroutinefunction(f):
            raise TypeError(f"@operation needs an async def function, got {f!r}")
        doc = inspect.getdoc(f) or ""
        setattr(f, _ATTR, Operation(name or f.__name__, f.__name__, f, doc.split("\n\n", 1)[0]))
        return f

    return mark if func is None else mark(func)


def operations_of(cls: type) -> dict[str, Operation]:
    """Collect the operations of a class and its bases (subclasses override by name)."""
    found: dict[str, Operation] = {}
    for klass in reversed(cls.__mro__):
        for attr in vars(klass).values():
            op = getattr(attr, _ATTR, None)
            if isinstance(op, Operation):
                found[op.name] = op
    return found
