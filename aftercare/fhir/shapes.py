"""Validation of many resources built alike (the HL7 v2 mapping's) at a fraction of the cost.

fhir.resources validates a resource element by element through Python validators: most of the CPU an
ADT message costs in validation. What it checks depends on the resource's shape (which elements are
present, lists or not, empty or null) and, element by element, on whether each primitive value is
one of the FHIR type declared for that element. So once a resource of one shape has passed
`validation_problems`, another of the same shape is valid exactly when each of its primitive values
passes its element's type: `ShapeValidator` remembers, per shape, the type of each primitive value
(read from the fhir.resources model fields, the same pydantic validators the models run) and checks
only those. Anything it cannot account for (an element typed as any resource, a model with validators
of its own, a field with constraints of its own, a string where an element is expected) is never
remembered, and goes through the full validation every time. A failing value is validated in full
again, so the problems reported are always `validation_problems`'.
"""

from __future__ import annotations

import types
import typing
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from fhir_core.fhirabstractmodel import FHIRAbstractModel
from fhir_core.types import FhirBase, FhirElementOrResourceBase
from pydantic import BaseModel, TypeAdapter

from aftercare.fhir.conformance import conformance_problems
from aftercare.fhir.resources import _model_class, validation_problems

Check = Callable[[Any], bool]
Shape = tuple[Any, ...]
_LEAF_TYPES = (str, bool, int, float)
# The validators every fhir.resources model runs; a model with others is never remembered.
_COMMON_VALIDATORS = frozenset(FHIRAbstractModel.__pydantic_decorators__.model_validators)


class _Unknown(Exception):
    """A resource whose values' types cannot be read from the models: validated in full each time."""


def shape_of(resource: dict[str, Any]) -> tuple[Shape, list[Any]]:
    """The shape of a resource (element names in their order, lists, nulls and value kinds, its
    `resourceType`) and its primitive values, in the order the shape lists them."""
    values: list[Any] = []
    return _shape(resource, values), values


def _shape(node: Any, values: list[Any]) -> Any:
    if isinstance(node, dict):
        return tuple(
            (key, value if key == "resourceType" else _shape(value, values)) for key, value in node.items()
        )
    if isinstance(node, list):
        return ("list", *(_shape(item, values) for item in node))
    if node is None:
        return "null"
    values.append(node)
    return type(node).__name__


class ShapeValidator:
    """`validation_problems` for resources of shapes it has seen valid before, remembered up to `size`
    shapes (the least recently used forgotten first)."""

    def __init__(self, size: int = 4096) -> None:
        self._size = size
        # per shape, the check of each primitive value; None: a shape validated in full every time
        self._checks: OrderedDict[Shape, tuple[Check, ...] | None] = OrderedDict()
        self.full = 0  # resources validated in full: the shapes not remembered, and failures

    def problems(self, resource: Any) -> list[tuple[str, str]]:
        """As `validation_problems(resource)`."""
        self.full += 1
        if not isinstance(resource, dict) or not isinstance(resource.get("resourceType"), str):
            return validation_problems(resource)
        shape, values = shape_of(resource)
        if shape in self._checks:
            self._checks.move_to_end(shape)
            checks = self._checks[shape]
            if checks is not None and all(check(value) for check, value in zip(checks, values, strict=True)):
                self.full -= 1
                return conformance_problems(resource)
            return validation_problems(resource)
        found = validation_problems(resource)
        if not found:
            self._checks[shape] = _checks_of(resource)
            if len(self._checks) > self._size:
                self._checks.popitem(last=False)
        return found


def _checks_of(resource: dict[str, Any]) -> tuple[Check, ...] | None:
    """The check of each primitive value of a valid resource, in `shape_of`'s order; None when a
    value's type cannot be read from the models."""
    model = _model_class(resource["resourceType"])
    if model is None:
        return None
    checks: list[Check] = []
    try:
        _learn(model, resource, checks)
    except _Unknown:
        return None
    return tuple(checks)


def _learn(model: type[BaseModel], node: dict[str, Any], checks: list[Check]) -> None:
    """The check of each primitive value of `node` (valid as `model`), in `shape_of`'s order."""
    fields = _fields(model)
    for key, value in node.items():
        if key == "resourceType":
            continue
        kind = fields.get(key)
        if kind is None:
            raise _Unknown
        for item in value if isinstance(value, list) else [value]:
            if item is None:
                continue
            if isinstance(kind, type):
                if not isinstance(item, dict):
                    raise _Unknown
                _learn(kind, item, checks)
            elif isinstance(item, _LEAF_TYPES):
                checks.append(kind)
            else:
                raise _Unknown


_FIELDS: dict[type[BaseModel], dict[str, type[BaseModel] | Check]] = {}


def _fields(model: type[BaseModel]) -> dict[str, type[BaseModel] | Check]:
    """Each element name of a model (by alias and by field name): the model of a complex element, or the
    check of a primitive one."""
    known = _FIELDS.get(model)
    if known is not None:
        return known
    decorators = model.__pydantic_decorators__
    if (
        set(decorators.model_validators) - _COMMON_VALIDATORS
        or decorators.field_validators
        or decorators.validators
        or decorators.root_validators
    ):
        raise _Unknown
    found: dict[str, type[BaseModel] | Check] = {}
    for name, field in model.model_fields.items():
        if field.metadata:
            continue  # constraints of the field's own: never remembered
        kind = _kind(field.annotation)
        if kind is None:
            continue
        found[name] = kind
        if field.alias:
            found[field.alias] = kind
    _FIELDS[model] = found
    return found


def _kind(annotation: Any) -> type[BaseModel] | Check | None:
    """A complex element's model, or a primitive element's check; None for what cannot be read."""
    arguments = [argument for argument in typing.get_args(annotation) if argument is not type(None)]
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        return _kind(arguments[0]) if len(arguments) == 1 else None
    if origin is list:
        return _kind(arguments[0]) if len(arguments) == 1 else None
    if isinstance(annotation, type) and issubclass(annotation, FhirBase):
        if issubclass(annotation, FhirElementOrResourceBase):
            return None
        model = annotation.get_model_klass()
        return model if isinstance(model, type) and issubclass(model, BaseModel) else None
    if origin is typing.Annotated or annotation in _LEAF_TYPES:
        validator = TypeAdapter(annotation, config=FHIRAbstractModel.model_config).validator
        return typing.cast(Check, validator.isinstance_python)
    return None
