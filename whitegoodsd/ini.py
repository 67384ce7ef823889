"""A small INI reader that remembers where every key came from.

The original daemon's files are plain ``[SECTION]`` / ``key=value`` files with
``;`` comment lines, an inline ``; comment`` after a value, a UTF-8 BOM, and
case-insensitive section and key names.  configparser gets several of these
wrong by default and forgets line numbers once a value is read, so this module
parses the format itself and keeps ``FILE:LINE`` for every section and key.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

# Only these end a line: str.splitlines() would also split at a form feed,
# NEL or U+2028 inside a comment and shift every later line number.
LINE_BREAK = re.compile(r"\r\n|\r|\n")


@dataclass(frozen=True)
class Entry:
    """One ``key = value`` line."""

    key: str  # as written
    value: str  # stripped, inline comment removed
    line: int
    raw: str = ""  # stripped, nothing removed: for values where ';' and '#' mean themselves


@dataclass
class Section:
    """One ``[NAME]`` block; keys are looked up case-insensitively."""

    name: str  # as written
    line: int
    entries: dict[str, Entry] = field(default_factory=dict)  # lower-cased key


@dataclass(frozen=True)
class Problem:
    """Something wrong (or suspicious) at a place in the file."""

    path: str
    line: int
    section: str | None
    key: str | None
    message: str

    def __str__(self) -> str:
        where = f"{self.path}:{self.line}:"
        if self.section is not None:
            where += f" [{self.section}]"
        if self.key is not None:
            where += f" {self.key}:"
        elif self.section is not None:
            where += ":"
        return f"{where} {self.message}"


@dataclass
class Document:
    """A parsed INI file: its sections by upper-cased name, and what was odd."""

    path: str
    sections: dict[str, Section] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)  # errors
    warnings: list[Problem] = field(default_factory=list)

    def section(self, name: str) -> Section | None:
        return self.sections.get(name.strip().upper())


def strip_comment(value: str) -> str:
    """Drop an inline comment: everything from ``;``, or from `` #``."""
    cut = value.find(";")
    if cut >= 0:
        value = value[:cut]
    for i, ch in enumerate(value):
        if ch == "#" and (i == 0 or value[i - 1] in " \t"):
            value = value[:i]
            break
    return value.strip()


def lines(text: str) -> list[str]:
    """The lines of ``text``, split at ``\\n``, ``\\r\\n`` and ``\\r`` only."""
    return LINE_BREAK.split(text)


def line_of(data: bytes, offset: int) -> tuple[int, int]:
    """The line and the column (both from 1, the column in bytes) of ``data[offset]``."""
    breaks = list(re.finditer(rb"\r\n|\r|\n", data[:offset]))
    start = breaks[-1].end() if breaks else 0
    return len(breaks) + 1, offset - start + 1


def parse(text: str, path: str) -> Document:
    """Parse INI text; never raises, every oddity becomes a problem or warning."""
    doc = Document(path)
    if text.startswith("\ufeff"):
        text = text[1:]
    current: Section | None = None
    for number, raw in enumerate(lines(text), start=1):
        line = raw.strip()
        if not line or line[0] in ";#":
            continue
        if line.startswith("["):
            if not line.endswith("]") or len(line) < 3:
                doc.problems.append(
                    Problem(path, number, None, None, f"malformed section header {line!r}")
                )
                current = None
                continue
            name = line[1:-1].strip()
            key = name.upper()
            if key in doc.sections:
                doc.warnings.append(
                    Problem(
                        path,
                        number,
                        name,
                        None,
                        f"section repeated (first at line {doc.sections[key].line}); "
                        "its keys are merged",
                    )
                )
                current = doc.sections[key]
            else:
                current = Section(name, number)
                doc.sections[key] = current
            continue
        if "=" not in line:
            doc.problems.append(
                Problem(
                    path,
                    number,
                    current.name if current else None,
                    None,
                    f"expected 'key = value', got {line!r}",
                )
            )
            continue
        key_text, _, value = line.partition("=")
        key_text = key_text.strip()
        if current is None:
            doc.problems.append(
                Problem(path, number, None, key_text or None, "key outside any section")
            )
            continue
        if not key_text:
            doc.problems.append(Problem(path, number, current.name, None, "a value without a key"))
            continue
        lower = key_text.lower()
        if lower in current.entries:
            doc.warnings.append(
                Problem(
                    path,
                    number,
                    current.name,
                    key_text,
                    f"repeated (first at line {current.entries[lower].line}); "
                    "the last value is used",
                )
            )
        current.entries[lower] = Entry(key_text, strip_comment(value), number, value.strip())
    return doc
