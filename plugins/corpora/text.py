"""Unlabeled text from local files: one UTF-8 file per language, one sentence or paragraph per line.

Either a folder of ``<language>.txt`` files (``text:path=corpus/``) or an explicit
mapping (``text:files=de=/data/de.txt;fr=/data/fr.txt``: ``;`` separates entries,
because ``,`` separates a plugin's parameters). Blank lines are skipped. ``sizes()``
counts the non-blank lines, so the α-smoothed language sampling of
:mod:`kdreg.sampling` sees the real proportions.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from kdreg.errors import DataError, ParameterError
from kdreg.plugins.spec import Corpus


@dataclass(frozen=True)
class TextParams:
    """Where the text files are."""

    path: Path | None = field(default=None, metadata={"help": "folder of <language>.txt files"})
    files: str | None = field(
        default=None, metadata={"help": "explicit mapping language=file, entries joined by ';'"}
    )
    languages: str | None = field(default=None, metadata={"help": "subset of languages, joined by '+'"})

    def __post_init__(self) -> None:
        # Files are recorded by absolute path, like every Path parameter (same text, other
        # folder: another config). Malformed entries are left for the plugin's own error.
        if self.files is None:
            return
        entries = []
        for entry in str(self.files).split(";"):
            language, eq, file = entry.partition("=")
            if eq and language.strip() and file.strip():
                entry = f"{language.strip()}={os.path.abspath(Path(file.strip()).expanduser())}"
            entries.append(entry)
        object.__setattr__(self, "files", ";".join(entries))


class TextFiles(Corpus):
    """Local text files, one per language (<path>/<language>.txt), a sentence per line."""

    Params: ClassVar[type] = TextParams

    def __init__(self, params: Any = None) -> None:
        super().__init__(params)
        self._files = self._find_files()
        self._sizes: dict[str, int] | None = None

    def _find_files(self) -> dict[str, Path]:
        from kdreg_plugins.benchmarks._hub import choose_languages, parse_language_list

        p = self.params
        if (p.path is None) == (p.files is None):
            raise ParameterError(
                "Corpus 'text' needs exactly one of path=<folder of <language>.txt files> "
                "or files=de=/data/de.txt;fr=/data/fr.txt."
            )
        files: dict[str, Path] = {}
        if p.path is not None:
            folder = Path(p.path).expanduser()
            if not folder.is_dir():
                raise DataError(
                    f"text: {folder} is not a folder; pass text:path=<folder of <language>.txt files>."
                )
            files = {f.stem: f for f in sorted(folder.glob("*.txt")) if not f.name.startswith(".")}
            if not files:
                raise DataError(f"text: {folder} has no <language>.txt files.")
        else:
            for entry in (e.strip() for e in str(p.files).split(";")):
                if not entry:
                    continue
                language, eq, file = entry.partition("=")
                if not eq or not language.strip() or not file.strip():
                    raise ParameterError(
                        f"text:files entry {entry!r} must be language=path, e.g. de=/data/de.txt."
                    )
                files[language.strip()] = Path(file.strip()).expanduser()
            for language, file in files.items():
                if not file.is_file():
                    raise DataError(f"text: the file for {language!r}, {file}, does not exist.")
        chosen = choose_languages("text", sorted(files), parse_language_list(p.languages))
        return {language: files[language] for language in chosen}

    def languages(self) -> Sequence[str]:
        return tuple(self._files)

    def texts(self, language: str) -> Iterator[str]:
        if language not in self._files:
            raise DataError(f"text: no file for language {language!r} (languages: {' '.join(self._files)}).")
        return _lines(self._files[language])

    def sizes(self) -> Mapping[str, int]:
        """Non-blank lines per language (read once; also validates every file's encoding)."""
        if self._sizes is None:
            self._sizes = {language: sum(1 for _ in _lines(path)) for language, path in self._files.items()}
        return self._sizes

    def check(self) -> None:
        empty = [language for language, n in self.sizes().items() if n == 0]
        if empty:
            raise DataError(f"text: {self._files[empty[0]]} has no text (only blank lines).")


def _lines(path: Path) -> Iterator[str]:
    """Stripped non-blank lines of a UTF-8 file; bad bytes are a DataError with the line number."""
    with path.open("rb") as handle:
        for number, raw in enumerate(handle, start=1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise DataError(
                    f"{path}: line {number} is not valid UTF-8 (byte 0x{raw[exc.start]:02x}); "
                    "re-save the file as UTF-8."
                ) from None
            if number == 1:
                line = line.lstrip("\ufeff")
            line = line.strip()
            if line:
                yield line
