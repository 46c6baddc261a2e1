"""The README starts with the two set-up commands, and CI runs exactly its test command."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
CI = ROOT / ".ci" / "run"


def bash_blocks(text: str) -> list[str]:
    return [block.strip() for block in re.findall(r"```(?:bash|sh|shell)\n(.*?)```", text, flags=re.S)]


def commands(script: str) -> list[list[str]]:
    """Each command of a shell script as argv (``&&`` chains split, comments and set-up lines dropped)."""
    out = []
    for line in script.splitlines():
        line = line.split(" #", 1)[0].strip()
        if not line or line.startswith(("#", "set ", "cd ", "export ")):
            continue
        for part in line.split("&&"):
            argv = shlex.split(part)
            if argv[:2] == ["python3", "-m"] or argv[:2] == ["python", "-m"]:
                argv = argv[2:]  # `python3 -m pip` is `pip`, `python3 -m pytest` is `pytest`
            out.append(argv)
    return out


def readme_setup() -> tuple[list[list[str]], list[list[str]]]:
    head = "\n".join(README.read_text(encoding="utf-8").splitlines()[:30])
    blocks = bash_blocks(head)
    assert len(blocks) >= 2, "the README's first lines must hold two ```bash blocks: install + run, test"
    return commands(blocks[0]), commands(blocks[1])


def test_readme_starts_with_install_and_test_commands() -> None:
    install, test = readme_setup()
    assert ["pip", "install", "torch==2.13.0"] in install  # the CPU build first, pinned
    assert ["pip", "install", "-e", ".[dev]"] in install
    assert install[-1][0] == "kdreg"  # then the main job runs
    assert test == [["pytest", "-q"]]


def test_ci_installs_like_the_readme_and_runs_its_test_command() -> None:
    install, test = readme_setup()
    ci = commands(CI.read_text(encoding="utf-8"))
    ci_without_quiet = [[arg for arg in argv if arg != "-q"] if argv[:2] == ["pip", "install"] else argv
                        for argv in ci]
    for argv in install[:-1]:  # every install step, in the same order, before the tests
        assert argv in ci_without_quiet
    positions = [ci_without_quiet.index(argv) for argv in install[:-1]]
    assert positions == sorted(positions)
    assert ci[-1] == test[0]  # the README's test command is the last thing CI runs
    assert max(positions) < len(ci) - 1
