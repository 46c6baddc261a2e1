"""Lazy commands and light parameter coercion give exactly what plain Typer gives."""

from __future__ import annotations

from typing import Annotated, Any

import pytest
import typer
import typer.main

from kdreg.cli.loading import LazyCommands, use_light_params

ARGVS = [
    [],
    ["--name", "y", "--items", "a", "--items", "b,c", "-n", "20", "--k", "3", "--scale", "2.5", "--flag"],
    ["--n", "007", "--maybe"],
    ["--no-maybe", "--k", "0"],
    ["--k", "9"],  # out of range
    ["-n", "abc"],
    ["-n", "-3"],
    ["-n", "٣"],  # a digit, but not an ASCII one
    ["--scale", "nan"],
    ["--name", ""],
]


def _app(seen: list[dict[str, Any]]) -> typer.Typer:
    app = typer.Typer()

    @app.command()
    def cmd(
        name: str = "x",
        items: Annotated[list[str] | None, typer.Option("--items")] = None,
        n: Annotated[int | None, typer.Option("--n", "-n", min=1)] = None,
        k: Annotated[int, typer.Option("--k", min=0, max=6)] = 1,
        scale: float = 100.0,
        flag: bool = False,
        maybe: Annotated[bool | None, typer.Option("--maybe/--no-maybe")] = None,
    ) -> None:
        seen.append({"name": name, "items": items, "n": n, "k": k, "scale": scale, "flag": flag,
                     "maybe": maybe})

    return app


def _outcome(light: bool, argv: list[str]) -> tuple[Any, ...]:
    seen: list[dict[str, Any]] = []
    command = typer.main.get_command(_app(seen))
    if light:
        use_light_params(command)
    try:
        command.main(args=argv, prog_name="cmd", standalone_mode=False)
    except Exception as exc:  # usage errors: the same class and words either way
        return type(exc).__name__, str(exc)
    return tuple(sorted((k, repr(v), type(v).__name__) for k, v in seen[0].items()))


@pytest.mark.parametrize("argv", ARGVS, ids=" ".join)
def test_light_coercion_gives_what_typer_gives(argv: list[str]) -> None:
    assert _outcome(True, argv) == _outcome(False, argv)


def test_lazy_commands_build_on_first_use_and_keep_their_order() -> None:
    built: list[str] = []

    def build(module: str) -> str:
        built.append(module)
        return f"command from {module}"

    table = LazyCommands(["pkg.run", "pkg.query", "pkg.db"], build, built={"extra": "ready"})
    assert list(table) == ["extra", "run", "query", "db"] and len(table) == 4 and "db" in table
    assert built == []  # listing names imports nothing
    assert table["query"] == "command from pkg.query" and table.get("nope") is None
    assert built == ["pkg.query"] and list(table) == ["extra", "run", "query", "db"]
    table["status"] = "added"
    del table["run"]
    assert list(table) == ["extra", "query", "db", "status"]


def test_every_parameter_and_help_gets_the_light_coercion() -> None:
    command = typer.main.get_command(_app([]))
    use_light_params(command)
    params = [*command.params, command.get_help_option(typer.Context(command))]
    assert [type(p._runtime_param).__name__ for p in params] == ["_LightParam"] * len(params)
