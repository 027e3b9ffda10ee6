"""Shared pieces of the command line: the app, options defined once, JSON and table output."""

from __future__ import annotations

import importlib
import json
import math
import os
import re
import sys
from collections.abc import Iterator, MutableMapping
from typing import Any

import numpy as np
import typer
import typer.core
import typer.main
from rich.console import Console
from rich.table import Table
from rich.text import Text

from ..errors import clean_name, clean_text
from ..formatting import cell_text, is_prose

# Each command -> the module of this package that defines it, in the order `llmroofline --help`
# lists them (tests/test_cli_lazy.py checks this against what the modules register).
COMMAND_MODULES = {
    "app": "app_cmds", "validate": "calibration_cmds", "calibrate": "calibration_cmds",
    "estimate": "estimate_cmds", "ops": "estimate_cmds", "roofline": "plot_cmds", "compare": "plot_cmds",
    "demo": "plot_cmds", "recommend": "recommend_cmds", "pareto": "recommend_cmds",
}


class _LazyCommands(MutableMapping[str, Any]):
    """The root group's commands, each built the first time it is looked up.

    A process runs one command: importing every command module (and through them comparison
    meshes, `recommend`, plots, calibration) and turning every command's signature into click
    options costs it tens of milliseconds for nothing. Listed names come from COMMAND_MODULES, so
    `--help`, usage errors and suggestions see every command; looking one up imports its module
    (which registers its commands on `app`) and builds it as Typer would have.
    """

    def __init__(self, built: MutableMapping[str, Any]) -> None:
        self._built = dict(built)  # commands Typer already built: the groups, modules imported earlier

    def __getitem__(self, name: str) -> Any:
        if name not in self._built:
            if name not in COMMAND_MODULES:
                raise KeyError(name)
            importlib.import_module(f"{__package__}.{COMMAND_MODULES[name]}")
            info = next(c for c in app.registered_commands if c.name == name)
            self._built[name] = typer.main.get_command_from_info(
                info, pretty_exceptions_short=app.pretty_exceptions_short, rich_markup_mode=app.rich_markup_mode)
        return self._built[name]

    def __iter__(self) -> Iterator[str]:  # the lazy commands first, then the groups, as Typer orders them
        yield from COMMAND_MODULES
        yield from (name for name in self._built if name not in COMMAND_MODULES)

    def __len__(self) -> int:
        return len({*COMMAND_MODULES, *self._built})

    def __contains__(self, name: object) -> bool:
        return name in COMMAND_MODULES or name in self._built

    def __setitem__(self, name: str, command: Any) -> None:
        self._built[name] = command

    def __delitem__(self, name: str) -> None:
        raise TypeError("commands cannot be removed")


class _LazyGroup(typer.core.TyperGroup):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.commands = _LazyCommands(self.commands)


app = typer.Typer(
    cls=_LazyGroup,
    name="llmroofline",
    help="Predict LLM inference speed on accelerators without running it.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
models_app = typer.Typer(help="Bundled model architectures.", no_args_is_help=True)
hardware_app = typer.Typer(help="Bundled accelerator specifications.", no_args_is_help=True)
app.add_typer(models_app, name="models")
app.add_typer(hardware_app, name="hardware")


def _show_version(value: bool) -> None:
    if value:
        from .. import __version__

        print(f"llmroofline {__version__}")
        raise typer.Exit()


@app.callback()
def _root(version: bool = typer.Option(False, "--version", help="Print the version and exit.",
                                       callback=_show_version, is_eager=True)) -> None:
    """Predict LLM inference speed on accelerators without running it."""


_TYPE_WORDS = {"str": "TEXT", "int": "INTEGER", "float": "NUMBER", "path": "PATH", "bool": ""}


def _type_word(original: Any) -> Any:
    """What an option takes, as click writes it (TEXT, INTEGER, PATH), and nothing for a flag:
    Typer >= 0.20 writes the Python type in angle brackets (<bool>, <str>), even for flags."""

    def display(self: Any, ctx: Any) -> str | None:
        if getattr(self, "metavar", None) is not None:
            return str(self.metavar)
        if getattr(self, "is_flag", False) or getattr(self, "count", False):
            return None
        text = original(self, ctx)
        if not isinstance(text, str):
            return text
        more = text.endswith("...")
        core = text.removesuffix("...").strip("<>")
        core = core.removeprefix("list[").removesuffix("]")
        word = _TYPE_WORDS.get(core, core.upper())
        return (word + ("..." if more else "")) or None

    return display


try:  # the help panels of Typer >= 0.20; older versions already write click's words
    from typer.core import TyperArgument, TyperOption

    for _cls in (TyperOption, TyperArgument):
        if hasattr(_cls, "display_type_rich"):
            _cls.display_type_rich = _type_word(_cls.display_type_rich)  # type: ignore[method-assign]
except ImportError:  # pragma: no cover
    pass

_DIGITS = re.compile(r"[0-9]{1,18}")


class _QuickCoercion:
    """Option values that need no parsing, passed on as Typer's own coercion would return them.

    Typer >= 0.20 checks every option's value through a pydantic TypeAdapter, built for each
    option of the command that runs, even one left unset. Importing pydantic's adapter machinery
    and building the adapters cost a one-shot command such as `estimate` (about 40 options) about 60 ms
    of its 0.3 s. A value that is None (an unset option: Typer returns None for it too), one
    already of a plain str, int, float or bool option's type (a default), or a string of digits
    for an int option has one answer; anything else still goes through Typer, with its messages.
    """

    def __init__(self, param: Any, slow: Any) -> None:
        self.param, self.slow = param, slow

    def coerce(self, value: Any, param: Any, ctx: Any) -> Any:
        if value is None:
            return None
        desc = self.param.type_descriptor
        info = desc.parameter_info
        kind = desc.annotation
        if (kind in (str, int, float, bool) and info.min is None and info.max is None
                and getattr(info, "parser", None) is None and getattr(info, "click_type", None) is None):
            if type(value) is kind:
                return value
            if kind is int and type(value) is str and _DIGITS.fullmatch(value):
                return int(value)
        return self.slow(self.param).coerce(value, param=param, ctx=ctx)


def _quick_runtime_param(slow: Any) -> Any:
    def get_runtime_param(self: Any) -> Any:
        if self._runtime_param is None and not self.multiple and self.nargs == 1:
            return _QuickCoercion(self, slow)
        return slow(self)

    return get_runtime_param


try:  # the pydantic coercion of Typer >= 0.20 (tests/test_cli_lazy.py checks the answers agree)
    from typer.core import _TyperParameter

    if hasattr(_TyperParameter, "get_runtime_param"):
        _TyperParameter.get_runtime_param = _quick_runtime_param(  # type: ignore[method-assign]
            _TyperParameter.get_runtime_param)
except ImportError:  # pragma: no cover
    pass

# Tables are wide: when the output is not a terminal (a pipe, a file, CI logs), do not squeeze them
# into rich's default 80 columns.
console = Console(width=None if sys.stdout.isatty() or os.environ.get("COLUMNS") else 160)
err_console = Console(stderr=True)

# Options shared by several commands: help text written once.
JSON_HELP = "Print one JSON document on stdout and nothing else."
MODEL_HELP = "Model: Hugging Face id, short alias, or path to a config.json (or its folder)."
HARDWARE_HELP = "Device: catalog id or alias (case-insensitive), or path to a spec YAML file."
WEIGHT_DTYPE_HELP = ("Weight precision of the linear layers: fp32, fp16, bf16, fp8, int8, int4, mxfp4, nvfp4 (fp4 = "
                     "nvfp4). Default: as the checkpoint stores them (its quantization_config, else 16 bit).")
KV_DTYPE_HELP = "KV-cache precision (default fp16)."
TP_HELP = "Tensor-parallel degree."
IMAGES_HELP = ("Images per request (vision-language models): each adds its tokens to the prompt and its "
               "vision-encoder pass to the prefill.")
IMAGE_SIZE_HELP = ("Image size WIDTHxHEIGHT in pixels (default 1024x1024; Gemma 3 resizes every image to 896x896, "
                   "Llama 4 tiles it in 336-pixel tiles).")
PP_HELP = "Pipeline-parallel degree (stages)."
EP_HELP = ("Expert-parallel degree: devices the routed experts spread over (MoE models). Default: tp x dp when "
           "--dp > 1, else 1; it must divide tp x dp and the routed (+ redundant) experts, and divide tp or be a "
           "multiple of it.")
DP_HELP = ("Data-parallel attention replicas of tp devices each, every replica with its own sequences; GPUs = "
           "tp x dp x pp. A MoE model spreads its experts over them (ep); a dense model runs plain replicas "
           "(throughput scales, latency does not). Default: ep / tp when ep > tp, else 1.")
MOE_IMBALANCE_HELP = ("MoE load imbalance: the busiest expert-parallel device's routed rows over the mean, before "
                      "redundant experts. Default: from published DeepSeek-R1 routing statistics (2.56 at ep 32 of "
                      "256 experts), growing with ep / experts, for models with at least 64 routed experts; balanced (1) "
                      "below that.")
REDUNDANT_HELP = ("Redundant expert copies (EPLB) spread over the ep devices: each device holds (experts + N) / ep, "
                  "and the load imbalance shrinks.")
FORCE_HELP = "Overwrite existing output files (a symbolic link is never written through)."
HTML_FILE_HELP = "Also write a self-contained HTML report to FILE (.html; an existing file needs --force)."
RUNTIME_HELP = ("Serving stack: generic (default: an unspecified modern stack), trtllm, vllm, sglang, lmdeploy, "
                "llama.cpp; id@version picks the nearest profile (trtllm@0.8).")
CALIBRATION_HELP = "none (plain roofline, an upper bound), default (bundled fit), or a calibration YAML file."


MESSAGE_LIMIT = 2000  # characters of one line on stderr; names inside are capped shorter


def console_err(message: str) -> None:
    """One line on stderr, with terminal escape sequences and control characters taken out (a
    message may quote a name from a file or from someone else) and its length capped."""
    print(clean_name(message, MESSAGE_LIMIT), file=sys.stderr)


def say(message: str) -> None:
    """A line on stdout that may hold names or paths: printed as plain text (no rich markup), with
    escape sequences taken out."""
    console.print(clean_name(message, MESSAGE_LIMIT), markup=False, highlight=False)


def _cell(v: Any) -> Any:
    """A table cell or title as rich Text: no markup is interpreted (`[red]` in a model name is
    text) and no escape sequence reaches the terminal."""
    return Text(clean_text(v)) if isinstance(v, str) else v


def to_jsonable(x: Any) -> Any:
    """numpy arrays and scalars to lists and floats; non-finite floats to null."""
    if isinstance(x, dict):
        return {str(k): to_jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [to_jsonable(v) for v in x]
    if isinstance(x, np.ndarray):
        return to_jsonable(x.tolist())
    if isinstance(x, (np.bool_, bool)):
        return bool(x)
    if isinstance(x, (np.integer,)):
        return int(x)
    if isinstance(x, (float, np.floating)):
        f = float(x)
        return f if math.isfinite(f) else None
    return x


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(to_jsonable(data), indent=2, allow_nan=False) + "\n")


def write_json_stream(items: Any) -> None:
    """A JSON array written element by element as `items` (an iterator) yields them, so that a long
    run starts writing at once and never holds the whole document."""
    out = sys.stdout
    first = True
    for item in items:
        try:  # one line per element: json's C encoder (indent= would use the pure-Python one)
            text = json.dumps(item, allow_nan=False)
        except (TypeError, ValueError):  # numpy values or non-finite floats: convert first
            text = json.dumps(to_jsonable(item), allow_nan=False)
        out.write(("[\n" if first else ",\n") + text)
        first = False
    out.write("[]\n" if first else "\n]\n")


def table(title: str, columns: list[str], rows: list[list[Any]]) -> None:
    """A rich table: the first column and any column holding prose left-aligned, numbers right-aligned;
    the table is at least as wide as its title, so the title is not wrapped mid-phrase."""
    width = console.width or 160
    title = _cell(title)
    t = Table(title=title, title_justify="left", min_width=min(len(title) + 4, width))
    for i, c in enumerate(columns):
        prose = any(i < len(r) and is_prose(r[i]) for r in rows)
        t.add_column(_cell(c), justify="left" if i == 0 or prose else "right", no_wrap=i == 0)
    for r in rows:
        t.add_row(*[_cell(fmt(v)) for v in r])
    console.print(t)


def fmt(v: Any) -> str:
    """Table text; a False reads NO so that "does not fit" stands out in a terminal."""
    return cell_text(v, false="NO")


def si(value: float, unit: str) -> str:
    """1.2e12 FLOPs -> '1.20 TFLOPs'."""
    for factor, prefix in ((1e15, "P"), (1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= factor:
            return f"{value / factor:.2f} {prefix}{unit}"
    return f"{value:.3g} {unit}"
