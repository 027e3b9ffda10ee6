"""The startup shortcuts of the command line and the package give the answers of the long way."""

from __future__ import annotations

import importlib
import pkgutil
import subprocess
import sys

import pytest

import llmroofline as lr
from llmroofline import hardware, model
from llmroofline.cli import common


def test_command_table_matches_what_the_modules_register():
    import llmroofline.cli as cli

    for mod in sorted(m.name for m in pkgutil.iter_modules(cli.__path__)):
        importlib.import_module(f"llmroofline.cli.{mod}")
    names = [c.name for c in common.app.registered_commands]  # in the order the modules were first imported
    assert sorted(names) == sorted(common.COMMAND_MODULES)
    for name, mod in common.COMMAND_MODULES.items():
        info = next(c for c in common.app.registered_commands if c.name == name)
        assert info.callback.__module__ == f"llmroofline.cli.{mod}"


def test_estimate_process_imports_only_what_it_runs():
    code = ("import sys; from llmroofline.cli import main; main(['estimate', '--model', 'llama2-7b', '--hardware', "
            "'a100', '--json']); print(sorted(sys.modules), file=sys.stderr)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    loaded = set(eval(out.stderr.strip().splitlines()[-1]))  # noqa: S307 - our own printout
    for name in ("llmroofline.compare", "llmroofline.recommend", "llmroofline.plots", "llmroofline.calibrate",
                 "llmroofline.cli.plot_cmds", "llmroofline.cli.recommend_cmds", "typer._adapters"):
        assert name not in loaded, name


def test_package_exports_resolve_lazily_and_keep_functions_over_submodules():
    import llmroofline.compare  # noqa: F401 - importing the submodule must not hide the function
    import llmroofline.estimate  # noqa: F401

    assert callable(lr.compare) and callable(lr.estimate) and callable(lr.recommend)
    for name in lr.__all__:
        assert getattr(lr, name) is not None
    assert set(lr.__all__) <= set(dir(lr))
    with pytest.raises(AttributeError):
        lr.no_such_name  # noqa: B018


def test_catalog_scan_agrees_with_the_full_catalog():
    scan = hardware._scan_catalog()
    assert scan is not None  # every bundled file states id, aliases and family on one line each
    table, families = scan
    assert {k: p.stem for k, p in table.items()} == hardware._lookup_table()
    assert families == {hw.family for hw in hardware.hardware_catalog().values()}
    assert model._entry_table() == model._lookup_table()
    for name in ("a100", "H20", "a100-80gb"):
        assert hardware.load_hardware(name) is hardware.hardware_catalog()[hardware._lookup_table()[name.lower()]]


def test_scan_refuses_what_it_cannot_read_on_its_own_lines(tmp_path):
    text = "id: X\nfamily: ampere\naliases: [a, b]\n"
    for bad in ("id: X\nfamily: ampere\naliases:\n  - a\n", "id: X\nfamily: ampere\n", text + "id: Y\n",
                "id: X\nfamily: [a\naliases: [a]\n", "id: Y\nfamily: ampere\naliases: [a]\n",
                "id: X\nfamily: ampere\naliases: [yes]\n"):
        path = tmp_path / "X.yaml"
        path.write_text(bad)
        assert hardware._scan_file(path) is None, bad
    path = tmp_path / "X.yaml"
    path.write_text(text)
    assert hardware._scan_file(path) == {"id": "X", "aliases": ["a", "b"], "family": "ampere"}


class _Info:
    min = max = parser = None


@pytest.mark.parametrize("kind, value", [(int, "2048"), (int, "007"), (int, 1), (str, "llama2-7b"), (str, "x y"),
                                         (float, 0.5), (bool, True), (int, None), (float, None)])
def test_quick_coercion_gives_typers_answer(kind, value):
    adapters = pytest.importorskip("typer._adapters")
    from typer.models import OptionInfo

    typer_answer = None if value is None else adapters.build_leaf_adapter(kind, OptionInfo()).validate_python(value)

    class Desc:
        annotation, parameter_info = kind, OptionInfo()

    class Param:
        type_descriptor = Desc()

    def slow(_param):
        raise AssertionError("the quick path should answer")

    answer = common._QuickCoercion(Param(), slow).coerce(value, param=None, ctx=None)
    assert answer == typer_answer and type(answer) is type(typer_answer)
