"""A component's ``command``, turned into the argument list of the program it runs.

Azure ML writes a command component's command as one line of text with placeholders:
``python score.py --data ${{inputs.data}} --out ${{outputs.scores}}``, and wraps the parts that
use an optional input in ``$[[...]]`` (``$[[--mode ${{inputs.mode}}]]``), which disappear when
the input is not given. Sluiceway never hands that text to a shell. The template is split into
words with POSIX rules (:func:`shlex.split`) *before* any value is put in, and each value then
replaces its placeholder inside its word, so a value can never become more than one argument
or run anything: ``x; rm -rf ~`` reaches the program as the single argument ``x; rm -rf ~``.

This module is pure: it knows nothing of jobs, storage or HTTP.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping
from dataclasses import dataclass

__all__ = [
    "CommandError",
    "CommandTemplate",
    "Placeholder",
    "literal_text",
    "parse_command",
    "with_interpreter",
]

_PLACEHOLDER = re.compile(r"\$\{\{\s*(?P<expr>[^{}]*?)\s*\}\}")
_REFERENCE = re.compile(r"(?P<kind>inputs|outputs)\.(?P<name>[A-Za-z_][A-Za-z0-9_]*)")
_OPEN = "$[["
_CLOSE = "]]"
_PYTHON = re.compile(r"python(3(\.\d+)?)?")


class CommandError(ValueError):
    """The command text is not a valid template; the message says what is wrong."""


@dataclass(frozen=True)
class Placeholder:
    """``${{inputs.<name>}}`` or ``${{outputs.<name>}}``."""

    kind: str  # "inputs" | "outputs"
    name: str

    def __str__(self) -> str:
        return f"${{{{{self.kind}.{self.name}}}}}"


@dataclass(frozen=True)
class _Word:
    text: str
    placeholders: tuple[Placeholder, ...]


@dataclass(frozen=True)
class _Group:
    """The words of one ``$[[...]]`` block, and of plain text (``optional`` False)."""

    words: tuple[_Word, ...]
    optional: bool


def _word(text: str) -> _Word:
    found = []
    for match in _PLACEHOLDER.finditer(text):
        expr = match["expr"]
        ref = _REFERENCE.fullmatch(expr)
        if ref is None:
            raise CommandError(
                f"placeholder ${{{{{expr}}}}} is not accepted; use ${{{{inputs.<name>}}}} or "
                "${{outputs.<name>}}"
            )
        found.append(Placeholder(ref["kind"], ref["name"]))
    if "${{" in _PLACEHOLDER.sub("", text):
        raise CommandError(f"{text!r} has an unclosed '${{{{' placeholder")
    return _Word(text, tuple(found))


@dataclass(frozen=True)
class CommandTemplate:
    """A command split into words, with its optional ``$[[...]]`` blocks marked."""

    text: str
    groups: tuple[_Group, ...]

    @property
    def placeholders(self) -> tuple[Placeholder, ...]:
        return tuple(p for g in self.groups for w in g.words for p in w.placeholders)

    def required_placeholders(self) -> tuple[Placeholder, ...]:
        """The placeholders outside every ``$[[...]]`` block."""
        return tuple(
            p for g in self.groups if not g.optional for w in g.words for p in w.placeholders
        )

    def render(self, inputs: Mapping[str, str | None], outputs: Mapping[str, str]) -> list[str]:
        """The argument list, with each placeholder replaced inside its own word.

        Args:
            inputs: Each input's value as text, or None for an input that is not given.
            outputs: Each output's folder.

        Raises:
            CommandError: a placeholder outside ``$[[...]]`` names an input that is not given,
                or names an output that is missing.
        """
        argv: list[str] = []
        for group in self.groups:
            if group.optional and any(
                p.kind == "inputs" and inputs.get(p.name) is None
                for w in group.words
                for p in w.placeholders
            ):
                continue
            for word in group.words:
                argv.append(_substitute(word, inputs, outputs))
        if not argv:
            raise CommandError("the command names no program")
        return argv


def _substitute(word: _Word, inputs: Mapping[str, str | None], outputs: Mapping[str, str]) -> str:
    def value(match: re.Match[str]) -> str:
        ref = _REFERENCE.fullmatch(match["expr"])
        assert ref is not None  # checked when parsed
        source = inputs if ref["kind"] == "inputs" else outputs
        found = source.get(ref["name"])
        if found is None:
            raise CommandError(
                f"{match.group(0)} has no value: the {ref['kind'][:-1]} {ref['name']!r} is not "
                "given, and it is not inside a $[[...]] block"
            )
        return found

    return _PLACEHOLDER.sub(value, word.text)


def parse_command(text: str) -> CommandTemplate:
    """Split a command into words and ``$[[...]]`` blocks.

    Raises:
        CommandError: the quotes are unbalanced, a ``$[[`` is not closed (or nested), a
            placeholder is malformed, or the command is empty.
    """
    try:
        words = shlex.split(text, comments=False, posix=True)
    except ValueError as exc:
        raise CommandError(f"the command cannot be split into words: {exc}") from None
    if not words:
        raise CommandError("the command is empty")
    groups: list[_Group] = []
    plain: list[_Word] = []
    block: list[_Word] | None = None
    for raw in words:
        text_ = raw
        opens = text_.startswith(_OPEN)
        if opens:
            if block is not None:
                raise CommandError("a $[[ block is opened inside another one")
            if plain:
                groups.append(_Group(tuple(plain), optional=False))
                plain = []
            block = []
            text_ = text_[len(_OPEN) :]
        closes = False
        if block is not None and text_.endswith(_CLOSE):
            closes = True
            text_ = text_[: -len(_CLOSE)]
        if _OPEN in text_:
            raise CommandError(f"{raw!r}: $[[ must start a word")
        if text_:
            (block if block is not None else plain).append(_word(text_))
        if closes and block is not None:
            if not any(w.placeholders for w in block):
                raise CommandError("a $[[...]] block must use an input, or it is never left out")
            groups.append(_Group(tuple(block), optional=True))
            block = None
    if block is not None:
        raise CommandError("a $[[ block is not closed with ]]")
    if plain:
        groups.append(_Group(tuple(plain), optional=False))
    return CommandTemplate(text, tuple(groups))


def literal_text(value: str | bool | int | float) -> str:
    """A literal input as a command-line word (booleans as Azure writes them: True/False)."""
    if isinstance(value, bool):
        return "True" if value else "False"
    return str(value)


def with_interpreter(argv: list[str], python: str) -> list[str]:
    """Run ``python``/``python3`` as the given interpreter, which has the server's packages."""
    if argv and _PYTHON.fullmatch(argv[0]):
        return [python, *argv[1:]]
    return argv
