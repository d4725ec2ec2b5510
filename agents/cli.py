"""Small helpers shared by the command-line scripts."""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Iterator

import gymnasium as gym

from gns_env.data import DatasetError
from gns_env.models import ModelUnavailableError


def parse_env_kwargs(pairs: list[str]) -> dict:
    """``["total_steps=200", "device=cpu"]`` -> ``{"total_steps": 200, "device": "cpu"}``
    (values parsed as JSON when possible, else kept as strings)."""
    kwargs = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ValueError(f"env kwarg {pair!r} is not KEY=VALUE")
        try:
            kwargs[key] = json.loads(value)
        except json.JSONDecodeError:
            kwargs[key] = value
        if isinstance(kwargs[key], list):
            kwargs[key] = tuple(kwargs[key])
    return kwargs


@contextlib.contextmanager
def user_errors() -> Iterator[None]:
    """Turn errors caused by the user's input (env ID, kwargs, data) into one line and exit 2."""
    try:
        yield
    except (DatasetError, ModelUnavailableError, ValueError, TypeError, gym.error.Error) as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)
