"""The `llmroofline` command line: a thin shell over the Python API.

Each module of this package registers its commands on `app`; `main` turns bad input (an
InputError, or a usage error such as an unknown option) into one line on stderr and exit status
2, and internal errors into a one-line report request and exit status 1 (set
LLMROOFLINE_DEBUG=1 to see the traceback).
"""

from __future__ import annotations

import errno
import io
import os
import sys
import traceback
import warnings
from typing import Any

from ..errors import InputError
from . import catalog_cmds  # noqa: F401 - the `models` and `hardware` groups' commands
from .common import app, console_err

# The other command modules are imported when their command runs (common.COMMAND_MODULES).


def one_line(text: str) -> str:
    """Collapse a message onto one line (a message may quote a multi-line value)."""
    return " ".join(str(text).split())


def _click_exit(e: BaseException) -> int | None:
    """Exit status for click's (or typer's vendored click's) exceptions; None for anything else.

    Typer >= 0.20 vendors click (typer._click), whose classes do not derive from click's: both
    are recognized by name and attributes.
    """
    names = {c.__name__ for c in type(e).__mro__}
    if "Exit" in names and hasattr(e, "exit_code"):
        return int(e.exit_code)
    if "Abort" in names:
        return 1
    if "NoArgsIsHelpError" in names and hasattr(e, "show"):
        e.show()  # a bare `llmroofline` or `llmroofline models`: the help text
        return 2
    if "ClickException" in names and hasattr(e, "format_message"):
        ctx: Any = getattr(e, "ctx", None)
        hint = f" (see `{ctx.command_path} --help`)" if ctx is not None and "UsageError" in names else ""
        console_err(f"error: {one_line(e.format_message())}{hint}")
        return 2
    return None


def _broken_pipe() -> int:
    """Exit status 141 (128 + SIGPIPE), as a shell reports a command whose reader went away."""
    try:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at exit
    except (OSError, ValueError, AttributeError, io.UnsupportedOperation):  # stdout is not a real file (tests)
        pass
    return 141


def main(argv: list[str] | None = None) -> int:
    """Entry point of the console script. Returns the exit status: 0 success, 2 bad input
    (one line on stderr), 1 internal error."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("ignore", category=RuntimeWarning)
        warnings.simplefilter("ignore", category=DeprecationWarning)
        warnings.simplefilter("default", category=UserWarning)
        try:
            # In non-standalone mode Typer returns the exit status of a typer.Exit (130 after
            # Ctrl+C) instead of exiting: pass it on.
            rv = app(args=argv, prog_name="llmroofline", standalone_mode=False)
            if isinstance(rv, int) and not isinstance(rv, bool) and rv != 0:
                return rv
        except InputError as e:
            console_err(f"error: {one_line(str(e))}")
            return 2
        except SystemExit as e:
            # click answers a broken pipe with sys.exit(1) from inside its OSError handler
            if isinstance(e.__context__, OSError) and e.__context__.errno == errno.EPIPE:
                return _broken_pipe()
            return int(e.code or 0) if isinstance(e.code, int) else 1
        except KeyboardInterrupt:
            return 130
        except BrokenPipeError:  # the reader went away (`... | head`): nothing is wrong with the input
            return _broken_pipe()
        except Exception as e:  # noqa: BLE001 - the last line of defence for a user
            code = _click_exit(e)
            if code is not None:
                return code
            if os.environ.get("LLMROOFLINE_DEBUG"):
                traceback.print_exc()
            from .. import __version__

            console_err(one_line(
                f"internal error: {type(e).__name__}: {str(e).rstrip('.')}. This is a bug in llmroofline {__version__}: please "
                "report it on the project's issue tracker with the command you ran and the traceback that "
                "LLMROOFLINE_DEBUG=1 prints."))
            return 1
    # Warnings (e.g. an unknown model_type read by standard fields) only after a success, one line
    # each, so that bad input still ends in exactly one line.
    for w in caught:
        console_err(f"warning: {one_line(str(w.message))}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
