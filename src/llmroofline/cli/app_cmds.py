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
    debug: bool = typer.Option(False, "--debug", help="Dash dev tools: reloads on code changes and shows tracebacks "
                                                      "in the page (this machine only; no interactive console)."),
    allow_host: list[str] = typer.Option(None, "--allow-host", help="Also answer requests for this host name "
                                         "(repeatable), e.g. the name others use to reach --host 0.0.0.0."),
) -> None:
    """Start the web app: Roofline, Compare, Estimate and Recommend tabs in the browser."""
    if importlib.util.find_spec("dash") is None:  # exit status 2 through main(), like any bad input
        raise InputError("the web app needs Dash: install llmroofline[app] (pip install 'llmroofline[app]')")
    if not 1 <= port <= 65535:
        raise InputError(f"--port must be from 1 to 65535, got {port}")
    loopback = host in ("127.0.0.1", "localhost", "::1")
    if debug and not loopback:
        raise InputError(f"--debug shows tracebacks and reloads code: use it with --host 127.0.0.1 only, not {host}")
    from ..app import serve

    if debug:
        console_err("WARNING: debug mode: the page shows tracebacks and the server reloads on code changes. "
                    "Werkzeug's interactive console stays off. Never use this on a shared machine.")
    if not loopback:
        console_err(f"warning: listening on {host}: anyone who can reach this address can use the app")
    console_err(f"llmroofline app on http://{'[' + host + ']' if ':' in host else host}:{port}/ (Ctrl+C to stop)")
    serve(host=host, port=port, debug=debug, allow_hosts=tuple(allow_host or ()))
