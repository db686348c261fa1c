"""Plain-text and Markdown tables: the one renderer of ``ppml-fast bench`` and of the
simulation's per-round records."""

from __future__ import annotations

__all__ = ["render"]


def render(head: list[str], body: list[list[str]], markdown: bool) -> str:
    """A table of strings, as Markdown or as aligned columns of plain text.

    Parameters
    ----------
    head : list of str
        The column titles.
    body : list of list of str
        The rows, each with one cell per column.
    markdown : bool
        A Markdown table (``| a | b |`` lines under a ``|---|`` rule) instead of
        left-aligned columns separated by two spaces under a rule of dashes.

    Returns
    -------
    str
        The table, without a trailing newline.
    """
    if markdown:
        out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        out += ["| " + " | ".join(b) + " |" for b in body]
        return "\n".join(out)
    widths = [max(len(x[i]) for x in [head, *body]) for i in range(len(head))]
    lines = ["  ".join(h.ljust(w) for h, w in zip(head, widths, strict=True))]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(c.ljust(w) for c, w in zip(b, widths, strict=True)) for b in body]
    return "\n".join(lines)
