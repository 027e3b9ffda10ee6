"""The `llmroofline` command line: a thin shell over the Python API.

Each module of this package registers its commands on `app`; `main` turns bad input into one
line on stderr and exit status 2, and internal errors into exit status 1.
"""

from __future__ import annotations

import importlib
import pkgutil
import sys
import warnings

from ..errors import InputError
from .common import app, console_err

for _mod in sorted(m.name for m in pkgutil.iter_modules(__path__)):
    if _mod != "common":
        importlib.import_module(f"{__name__}.{_mod}")


def main(argv: list[str] | None = None) -> int:
    """Entry point of the console script. Returns the exit status."""
    warnings.simplefilter("ignore", category=RuntimeWarning)
    try:
        app(args=argv, prog_name="llmroofline", standalone_mode=False)
    except InputError as e:
        console_err(f"error: {e}")
        return 2
    except SystemExit as e:
        return int(e.code or 0) if isinstance(e.code, int) else 1
    except KeyboardInterrupt:
        return 130
    except Exception as e:  # noqa: BLE001 - the last line of defence for a user
        import click
        import typer

        # Typer >= 0.20 vendors click (typer._click): its exceptions derive from typer's classes.
        if isinstance(e, (click.exceptions.Exit, typer.Exit)):
            return e.exit_code
        if isinstance(e, (click.ClickException, typer.TyperException)):
            e.show()
            return e.exit_code
        if isinstance(e, (click.exceptions.Abort, typer.Abort)):
            return 1
        console_err(f"internal error: {type(e).__name__}: {e}. Please report it with the command you ran.")
        return 1
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
