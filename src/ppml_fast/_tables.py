"""Plain-text and Markdown tables: the one renderer of ``ppml-fast bench`` and of the
simulation's per-round records."""

from __future__ import annotations

__all__ = ["render"]


def render(head: list[str], body: list[list[str]], markdown: bool) -> str:
    """``head`` and ``body`` as a Markdown table, or as aligned columns of plain text."""
    if markdown:
        out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        out += ["| " + " | ".join(b) + " |" for b in body]
        return "\n".join(out)
    widths = [max(len(x[i]) for x in [head, *body]) for i in range(len(head))]
    lines = ["  ".join(h.ljust(w) for h, w in zip(head, widths, strict=True))]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(c.ljust(w) for c, w in zip(b, widths, strict=True)) for b in body]
    return "\n".join(lines)
