"""Secrets from files: any secret key `x` of a section may be given as `x_file`, the
path of a file that holds it, as Docker and Kubernetes mount secrets (`token_file:
/run/secrets/influx_token`). The file's text without its final newline is the secret.
The other two ways need nothing here: `${VAR}` in the value and `STREAMER__...`
overrides (`streamer.config.file`).
"""

from __future__ import annotations

import functools
import typing
from pathlib import Path
from typing import Any

from pydantic import BaseModel, SecretStr

SUFFIX = "_file"


@functools.cache
def secret_keys(model: type[BaseModel]) -> frozenset[str]:
    """The fields of `model` that hold a secret (`SecretStr`, optional or not)."""
    return frozenset(
        name
        for name, field in model.model_fields.items()
        if field.annotation is SecretStr or SecretStr in typing.get_args(field.annotation)
    )


def read_secret_files(model: type[BaseModel], data: Any) -> Any:
    """`data` (a section's raw mapping) with each `x_file` of a secret `x` replaced by
    `x`, read from that file; ValueError naming the key where it cannot be."""
    if not isinstance(data, dict):
        return data
    keys = secret_keys(model)
    given = [
        k for k in data if isinstance(k, str) and k.endswith(SUFFIX) and k[: -len(SUFFIX)] in keys
    ]
    if not given:
        return data
    data = dict(data)
    for key in given:
        name = key[: -len(SUFFIX)]
        if data.get(name) is not None:
            raise ValueError(f"give {name} or {key}, not both")
        data[name] = _read(data.pop(key), key)
    return data


def _read(path: Any, key: str) -> str:
    if not isinstance(path, str | Path) or not str(path):
        raise ValueError(f"{key} should be the path of a file that holds the secret")
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ValueError(f"{key}: cannot read {str(path)!r}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise ValueError(f"{key}: {str(path)!r} is not UTF-8 text") from None
    secret = text.removesuffix("\n").removesuffix("\r")
    if not secret:
        raise ValueError(f"{key}: {str(path)!r} is empty")
    return secret


def secret_values(section: Any) -> set[str]:
    """Every secret's value in a config (a section, with the sections it holds)."""
    if isinstance(section, SecretStr):
        return {section.get_secret_value()}
    if isinstance(section, BaseModel):
        return set().union(
            *(secret_values(getattr(section, k)) for k in type(section).model_fields)
        )
    if isinstance(section, list | tuple):
        return set().union(*(secret_values(item) for item in section))
    return set()
