"""The one exception type scalelab raises for problems a user can fix, and how stages report it."""

from __future__ import annotations

import functools
import os
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


def one_line_composition_errors(main: F) -> F:
    """Report a command line Hydra cannot compose (an unknown option of a config group, a
    mistyped or unknown key, an override it cannot parse) in one line, with exit status 2.

    Hydra prints those as a multi-line report; it only lets the exception through when
    HYDRA_FULL_ERROR is set, so this sets it for the call. Wrap `hydra.main`'s function with it
    (outermost). A user who sets HYDRA_FULL_ERROR themselves gets Hydra's full traceback.
    """

    @functools.wraps(main)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from hydra.errors import (
            ConfigCompositionException,
            MissingConfigException,
            OverrideParseException,
        )

        if "HYDRA_FULL_ERROR" in os.environ:
            return main(*args, **kwargs)
        os.environ["HYDRA_FULL_ERROR"] = "1"
        try:
            return main(*args, **kwargs)
        except (ConfigCompositionException, MissingConfigException, OverrideParseException) as err:
            print(f"scalelab: error: {composition_error_line(err)}", file=sys.stderr)
            raise SystemExit(2) from None
        finally:
            del os.environ["HYDRA_FULL_ERROR"]

    return wrapper  # type: ignore[return-value]


def composition_error_line(err: Exception) -> str:
    """One line for an exception Hydra raised while composing the config."""
    from hydra.errors import (
        ConfigCompositionException,
        MissingConfigException,
        OverrideParseException,
    )
    from omegaconf.errors import OmegaConfBaseException

    from scalelab.config import schema_error_line

    first_line = str(err).splitlines()[0]
    if isinstance(err, MissingConfigException) and err.options and err.missing_cfg_file:
        group, _, option = err.missing_cfg_file.rpartition("/")
        return f"{group}={option} is invalid: use one of {', '.join(err.options)}"
    if isinstance(err, ConfigCompositionException) and isinstance(err.__cause__, OmegaConfBaseException):
        return schema_error_line(err.__cause__)
    if isinstance(err, OverrideParseException):
        return (
            f"cannot read the override {err.override!r} ({first_line}): see "
            "https://hydra.cc/docs/advanced/override_grammar/basic"
        )
    return "; ".join(line.strip() for line in str(err).splitlines() if line.strip())
