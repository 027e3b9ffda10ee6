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
    workers: int = typer.Option(1, "--workers", help="Worker processes (gunicorn, pip install gunicorn): above 1, "
                                "a production server where one user's heavy request holds one worker only."),
    timeout: int = typer.Option(120, "--timeout", help="With --workers: seconds after which a request's worker "
                                "is restarted."),
) -> None:
    """Start the web app: Roofline, Compare, Estimate and Recommend tabs in the browser."""
    if importlib.util.find_spec("dash") is None:  # exit status 2 through main(), like any bad input
        raise InputError("the web app needs Dash: install llmroofline[app] (pip install 'llmroofline[app]')")
    if not 1 <= port <= 65535:
        raise InputError(f"--port must be from 1 to 65535, got {port}")
    loopback = host in ("127.0.0.1", "localhost", "::1")
    if debug and not loopback:
        raise InputError(f"--debug shows tracebacks and reloads code: use it with --host 127.0.0.1 only, not {host}")
    if not 1 <= workers <= 64:
        raise InputError(f"--workers must be from 1 to 64, got {workers}")
    if not 5 <= timeout <= 3600:
        raise InputError(f"--timeout must be from 5 to 3600 seconds, got {timeout}")
    if workers > 1:
        if debug:
            raise InputError("--debug runs the development server: it cannot be combined with --workers")
        if importlib.util.find_spec("gunicorn") is None:
            raise InputError("--workers needs gunicorn (pip install gunicorn; UNIX only)")
        console_err(f"llmroofline app on http://{host}:{port}/ with {workers} workers (Ctrl+C to stop)")
        serve_with_workers(host, port, workers, timeout, tuple(allow_host or ()))
        return
    from ..app import serve

    if debug:
        console_err("WARNING: debug mode: the page shows tracebacks and the server reloads on code changes. "
                    "Werkzeug's interactive console stays off. Never use this on a shared machine.")
    if not loopback:
        console_err(f"warning: listening on {host}: anyone who can reach this address can use the app")
    console_err(f"llmroofline app on http://{'[' + host + ']' if ':' in host else host}:{port}/ (Ctrl+C to stop)")
    serve(host=host, port=port, debug=debug, allow_hosts=tuple(allow_host or ()))


def serve_with_workers(host: str, port: int, workers: int, timeout: int, allow_hosts: tuple[str, ...]) -> None:
    """Run the WSGI app (llmroofline.app.wsgi) under gunicorn with `workers` processes."""
    import os

    from gunicorn.app.base import BaseApplication

    os.environ["LLMROOFLINE_HOST"] = host
    os.environ["LLMROOFLINE_ALLOW_HOSTS"] = ",".join(allow_hosts)

    class Server(BaseApplication):  # type: ignore[misc]
        def load_config(self) -> None:
            for key, value in {"bind": f"[{host}]:{port}" if ":" in host else f"{host}:{port}", "workers": workers,
                               "timeout": timeout, "accesslog": None}.items():
                self.cfg.set(key, value)

        def load(self):  # type: ignore[no-untyped-def]
            from ..app.wsgi import server

            return server

    Server().run()
