"""`app`: the interactive web app (optional extra `llmroofline[app]`)."""

from __future__ import annotations

import importlib.util

import typer

from ..errors import InputError
from .common import app, console_err


@app.command("app")
def app_cmd(
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on (default: this machine only)."),
    port: int = typer.Option(8050, "--port", help="TCP port."),
    debug: bool = typer.Option(False, "--debug", help="Dash debug mode (reloads on code changes; local use only)."),
) -> None:
    """Start the web app: Roofline, Compare, Estimate and Recommend tabs in the browser."""
    if importlib.util.find_spec("dash") is None:  # exit status 2 through main(), like any bad input
        raise InputError("the web app needs Dash: install llmroofline[app] (pip install 'llmroofline[app]')")
    if not 1 <= port <= 65535:
        raise InputError(f"--port must be from 1 to 65535, got {port}")
    from ..app import serve

    if host not in ("127.0.0.1", "localhost", "::1"):
        console_err(f"warning: listening on {host}: anyone who can reach this address can use the app")
    console_err(f"llmroofline app on http://{'[' + host + ']' if ':' in host else host}:{port}/ (Ctrl+C to stop)")
    serve(host=host, port=port, debug=debug)
