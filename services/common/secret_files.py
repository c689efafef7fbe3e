"""Secrets from files: every secret setting `X` can also be given as `X_FILE`, a path.

Docker and Kubernetes hand secrets to a container as files (`/run/secrets/...`, a mounted
Secret volume); `REDIS_URL_FILE=/run/secrets/redis_url` reads the URL from there. A field is
a secret when its type holds `SecretStr` or `SecretBytes` (also inside `| None` or `list[...]`),
so a new secret field gets its `_FILE` form with no further code.

The file's text is used as the variable's value would be, less one trailing newline (what
`echo` and most editors add). Setting both `X` and `X_FILE` is an error, and so is a file
that cannot be read: the message names the variable and the path, never the contents.
"""

from __future__ import annotations

import os
import types
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, Final, Union, get_args, get_origin

from pydantic import AliasChoices, SecretBytes, SecretStr
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource

__all__ = ["SUFFIX", "SecretFileError", "SecretFileSource", "is_secret", "secret_variables"]

SUFFIX: Final = "_FILE"
MAX_PATH_ECHO: Final = 200  # a path comes from the environment: never echo it unbounded


class SecretFileError(ValueError):
    """A `_FILE` variable that cannot be used; the message is safe to print (no contents)."""


def is_secret(annotation: object) -> bool:
    """Whether a field's type holds a secret: SecretStr/SecretBytes, also optional or listed."""
    if annotation in (SecretStr, SecretBytes):
        return True
    origin = get_origin(annotation)
    if origin is None:
        return False
    if origin in (Union, types.UnionType, list, tuple, set, frozenset) or str(origin).endswith(
        "Annotated"
    ):
        return any(is_secret(arg) for arg in get_args(annotation))
    return False


def _names(field_name: str, field: FieldInfo, prefix: str) -> tuple[str, tuple[str, ...]]:
    """The key a field's value goes under, and the variables it is read from, in order."""
    alias = field.validation_alias
    if isinstance(alias, str):
        return alias, (alias,)
    if isinstance(alias, AliasChoices):
        choices = tuple(choice for choice in alias.choices if isinstance(choice, str))
        return choices[0], choices
    if field.alias is not None:
        return field.alias, (field.alias,)
    return field_name, (f"{prefix}{field_name}".upper(),)  # as written in the environment


def secret_variables(settings_cls: type[BaseSettings]) -> Iterator[tuple[str, tuple[str, ...]]]:
    """(key, variable names) for every secret field of a settings class: the key is what
    the model validates the value under (its alias, else its name)."""
    prefix = settings_cls.model_config.get("env_prefix") or ""
    for name, field in settings_cls.model_fields.items():
        if is_secret(field.annotation):
            yield _names(name, field, prefix)


def _shown(path: str) -> str:
    flat = path.encode("unicode_escape").decode("ascii")
    return flat if len(flat) <= MAX_PATH_ECHO else flat[: MAX_PATH_ECHO - 3] + "..."


def read_secret_file(variable: str, path: str) -> str:
    """The secret in the file `path` names, less one trailing newline."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise SecretFileError(
            f"{variable} names a file that is not UTF-8 text ({_shown(path)})"
        ) from None
    except OSError as exc:
        why = exc.strerror or type(exc).__name__
        raise SecretFileError(
            f"{variable} names a file that cannot be read ({_shown(path)}: {why})"
        ) from None
    if text.endswith("\r\n"):
        return text[:-2]
    return text.removesuffix("\n")


class SecretFileSource(PydanticBaseSettingsSource):
    """A settings source: `<VARIABLE>_FILE` for every secret field's variables."""

    def __init__(
        self, settings_cls: type[BaseSettings], environ: Mapping[str, str] | None = None
    ) -> None:
        super().__init__(settings_cls)
        source = os.environ if environ is None else environ
        self._case_sensitive = bool(settings_cls.model_config.get("case_sensitive"))
        self._environ = {self._key(k): (k, v) for k, v in source.items()}

    def _key(self, name: str) -> str:
        return name if self._case_sensitive else name.upper()

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        # Not used: __call__ reads every secret field at once (the base class requires it).
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        values: dict[str, Any] = {}
        for key, names in secret_variables(self.settings_cls):
            given = [self._environ[self._key(n)][0] for n in names if self._key(n) in self._environ]
            files = [
                self._environ[self._key(n + SUFFIX)]
                for n in names
                if self._key(n + SUFFIX) in self._environ
            ]
            if not files:
                continue
            if given or len(files) > 1:
                clash = ", ".join([*given, *(variable for variable, _ in files)])
                raise SecretFileError(f"{clash} are set together: set only one of them")
            [(variable, path)] = files
            values[key] = read_secret_file(variable, path)
        return values
