"""Frozen value classes for PID 1, without the cost of `dataclasses`.

`dataclasses` imports `inspect` (and with it ast, dis, tokenize, re…) and compiles code with
exec() for every class: about 0.3 s of the init's start under QEMU, before the app can start.
`@frozen` gives the part of `@dataclass(frozen=True)` the init uses — keyword or positional
construction with defaults and default factories, immutability, equality, hashing, repr — plus
`fields()` and `replace()`, with one generic __init__ instead of generated code.
"""

from __future__ import annotations

# `typing` costs a noticeable import at boot; type checkers see it, PID 1 does not.
MYPY = False
if MYPY:
    from _collections_abc import Callable
    from typing import Any, TypeVar, dataclass_transform

    T = TypeVar("T")
else:

    def dataclass_transform(**_kwargs: object) -> Callable[[Any], Any]:
        return lambda f: f


class _Missing:
    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()


class FrozenInstanceError(AttributeError):
    pass


class Field:
    __slots__ = ("name", "type", "default", "default_factory")

    def __init__(self, default: Any = MISSING, default_factory: Any = MISSING) -> None:
        self.name = ""
        self.type = ""
        self.default = default
        self.default_factory = default_factory

    def value(self) -> Any:
        if self.default is not MISSING:
            return self.default
        if self.default_factory is not MISSING:
            return self.default_factory()
        return MISSING


def field(*, default: Any = MISSING, default_factory: Any = MISSING) -> Any:
    return Field(default, default_factory)


def _init(self: Any, *args: Any, **kwargs: Any) -> None:
    cls = type(self)
    names = cls.__frozen_names__
    if len(args) > len(names):
        raise TypeError(f"{cls.__name__}() takes {len(names)} arguments, got {len(args)}")
    values = dict(zip(names, args, strict=False))  # fewer args: the rest below
    if kwargs:
        for key in kwargs:
            if key not in names:
                unknown = sorted(set(kwargs) - set(names))
                raise TypeError(f"{cls.__name__}() got unexpected arguments {unknown}")
            if key in values:
                raise TypeError(f"{cls.__name__}() got multiple values for {key!r}")
        values.update(kwargs)
    if len(values) < len(names):
        for f in cls.__frozen_fields__:
            if f.name not in values:
                value = f.value()
                if value is MISSING:
                    raise TypeError(f"{cls.__name__}() missing argument {f.name!r}")
                values[f.name] = value
    # All fields at once, past the __setattr__ that refuses them: one call, not one per field.
    object.__getattribute__(self, "__dict__").update(values)


def _astuple(self: Any) -> tuple[Any, ...]:
    return tuple(getattr(self, f.name) for f in self.__frozen_fields__)


def _eq(self: Any, other: object) -> bool:
    if type(other) is not type(self):
        return NotImplemented
    return _astuple(self) == _astuple(other)


def _hash(self: Any) -> int:
    return hash((type(self).__name__, _astuple(self)))


def _repr(self: Any) -> str:
    inner = ", ".join(f"{f.name}={getattr(self, f.name)!r}" for f in self.__frozen_fields__)
    return f"{type(self).__name__}({inner})"


def _setattr(self: Any, name: str, value: Any) -> None:
    raise FrozenInstanceError(f"cannot assign to field {name!r}")


def _delattr(self: Any, name: str) -> None:
    raise FrozenInstanceError(f"cannot delete field {name!r}")


@dataclass_transform(frozen_default=True, field_specifiers=(field,))
def frozen(cls: type[T]) -> type[T]:
    """Make `cls` (annotated fields, optional defaults) an immutable value class."""
    cls_fields = []
    namespace = cls.__dict__  # one mapping proxy for the whole loop: each access makes one
    for name, annotation in namespace.get("__annotations__", {}).items():
        default = namespace.get(name, MISSING)
        if isinstance(default, Field):
            f = default
            # Class attributes stay as plain defaults (like dataclasses) except factories.
            if f.default is MISSING:
                delattr(cls, name)
            else:
                setattr(cls, name, f.default)
        else:
            f = Field(default)
        f.name, f.type = name, annotation
        cls_fields.append(f)
    ns: dict[str, Any] = {
        "__frozen_fields__": tuple(cls_fields),
        "__frozen_names__": tuple(f.name for f in cls_fields),
        "__init__": _init,
        "__eq__": _eq,
        "__hash__": _hash,
        "__repr__": _repr,
        "__setattr__": _setattr,
        "__delattr__": _delattr,
    }
    for key, value in ns.items():
        setattr(cls, key, value)
    return cls


def fields(obj: Any) -> tuple[Field, ...]:
    return obj.__frozen_fields__  # type: ignore[no-any-return]


def replace(obj: T, **changes: Any) -> T:
    values = {f.name: getattr(obj, f.name) for f in fields(obj)}
    unknown = set(changes) - set(values)
    if unknown:
        raise TypeError(f"{type(obj).__name__} has no field {sorted(unknown)[0]!r}")
    values.update(changes)
    return type(obj)(**values)
