"""Help text as prose: a docstring's hard line breaks are not the reader's.

Docstrings wrap at the source's line length. Typer joins those lines in a command's own
`--help`, but keeps them in a group's command list (rich markup mode), where "queued ones
wait, due" then ends a line in the middle of a sentence and the rest is wrapped again at
the terminal's width. `unwrap_help` gives every command and group its help with each
paragraph on one line, so the terminal alone decides where lines break. A paragraph that
starts with click's `\\b` marker keeps its lines (a list, an example)."""

from __future__ import annotations

import inspect

import typer


def unwrap(text: str) -> str:
    """`text` dedented, each paragraph (blank-line separated) on one line."""
    paragraphs = inspect.cleandoc(text).split("\n\n")
    return "\n\n".join(
        p if p.startswith("\b") else " ".join(line.strip() for line in p.splitlines())
        for p in paragraphs
    )


def unwrap_help(app: typer.Typer) -> None:
    """Unwrap the help of every command and group under `app` (in place, once at start)."""
    for info in app.registered_commands:
        text = info.help or inspect.getdoc(info.callback) or ""
        if text:
            info.help = unwrap(text)
    if app.info.help:
        app.info.help = unwrap(app.info.help)
    for group in app.registered_groups:
        if group.help:
            group.help = unwrap(group.help)
        unwrap_help(group.typer_instance)
