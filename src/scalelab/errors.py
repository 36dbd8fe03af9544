"""The one exception type scalelab raises for problems a user can fix, and how stages report it."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from typing import Any, TypeVar

F = TypeVar("F", bound=Callable[..., Any])


class ScalelabError(Exception):
    """A problem with the user's config, data or environment; the message names the fix."""


class ConfigError(ScalelabError):
    """A config value is missing, mistyped, out of range or inconsistent with another."""


class DataError(ScalelabError):
    """A data file is missing, corrupted or does not match what the dataset promises."""


class TrainingDiverged(ScalelabError):
    """The training loss became NaN or infinite."""


class MissingExtra(ScalelabError):
    """A feature needs an optional dependency (`pyproject.toml`'s extras) that is not installed."""


# What each optional extra is for (pyproject.toml); `make` installs them all.
EXTRAS = {
    "audio": "data=spoken_digits",
    "server": "make mlflow-server",
    "slurm": "hydra/launcher=slurm",
    "tensorboard": "logger=tensorboard",
}


def import_extra(module: str, extra: str) -> Any:
    """Import `module`, which comes with the optional `extra`; a `MissingExtra` naming the
    install command if it is not there."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        raise MissingExtra(
            f"{EXTRAS[extra]} needs {module}, which is not installed: pip install -e '.[{extra}]'"
        ) from None


def exit_on_user_error(main: F) -> F:
    """Turn a `ScalelabError` into one line on stderr and exit status 2, without a traceback
    (and an interruption into one line and status 130).

    Hydra prints a traceback for every exception a task raises; for mistakes the user can fix
    that is noise, so stage entry points wrap their body with this.
    """

    @functools.wraps(main)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from scalelab import interrupts

        try:
            return main(*args, **kwargs)
        except ScalelabError as err:
            print(f"scalelab: error: {err}", file=sys.stderr)
            raise SystemExit(2) from None
        except interrupts.Interrupted as err:
            print(f"scalelab: {err}", file=sys.stderr)
            raise SystemExit(interrupts.EXIT_STATUS) from None

    return wrapper  # type: ignore[return-value]
