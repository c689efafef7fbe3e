"""What the hand-made models rely on about every pydantic model class the services use.

`outcomes.built` and `couple_state._trusted` make models with `object.__new__(cls)`, and
`streams.encode` reads the serializer through the instance: both skip the model metaclass's
`__getattr__` hook that a read on the class takes. They are the same only while no model
class defines its own `__new__`, and no instance holds a `__pydantic_serializer__` of its own.
"""

from __future__ import annotations

import importlib
import pkgutil

import pytest
from pydantic import BaseModel

import couples_nudge.common
import couples_nudge.notifier
import couples_nudge_schemas


def _models() -> list[type[BaseModel]]:
    for package in (couples_nudge_schemas, couples_nudge.common, couples_nudge.notifier):
        for module in pkgutil.walk_packages(package.__path__, f"{package.__name__}."):
            importlib.import_module(module.name)
    found: list[type[BaseModel]] = []
    todo = list(BaseModel.__subclasses__())
    while todo:
        cls = todo.pop()
        todo += cls.__subclasses__()
        if cls.__module__.startswith(("couples_nudge", "couples_nudge_schemas")):
            found.append(cls)
    return found


MODELS = _models()


def test_the_services_models_are_found() -> None:
    names = {cls.__name__ for cls in MODELS}
    assert {"NudgeSent", "NudgeSentData", "Partner", "PushSubscription"} <= names


@pytest.mark.parametrize("cls", MODELS, ids=lambda cls: f"{cls.__module__}.{cls.__name__}")
class TestModelClass:
    def test_is_made_by_object_new(self, cls: type[BaseModel]) -> None:
        """`cls.__new__` is `object.__new__`: `object.__new__(cls)` makes the same thing."""
        assert cls.__new__ is object.__new__

    def test_has_no_field_named_as_the_serializer(self, cls: type[BaseModel]) -> None:
        """An instance reads `__pydantic_serializer__` from its class."""
        assert "__pydantic_serializer__" not in cls.model_fields
