"""Small helpers shared by the command-line scripts."""

from __future__ import annotations

import contextlib
import json
import signal
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
    """Turn errors caused by the user's input (env ID, kwargs, data, an unreachable Ray cluster)
    into one line and exit 2."""
    try:
        yield
    except (DatasetError, ModelUnavailableError, ValueError, TypeError, ConnectionError, gym.error.Error) as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)


@contextlib.contextmanager
def interruptible(kept: str) -> Iterator[None]:
    """Turn Ctrl-C and SIGTERM into one line saying what survives (``kept``) and exit with the
    shell's code (128 + the signal number); the work in progress is stopped on the way out."""
    received = [signal.SIGINT]

    def on_sigterm(signum: int, frame: object) -> None:
        received[0] = signum
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, on_sigterm)
    try:
        yield
    except KeyboardInterrupt:
        print(f"interrupted: {kept}", file=sys.stderr)
        sys.exit(128 + received[0])
    finally:
        signal.signal(signal.SIGTERM, previous)
