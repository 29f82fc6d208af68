"""Estimates drawn with their 95 % intervals, as SVG (STYLE 29: a chart draws the
interval, not only the point). One horizontal scale for all the rows of a drawing, zero
always on it and marked; each interval a bar, its estimate a dot. A difference's bar
wholly above zero is green, wholly below red, across zero grey: the colour says only
what the interval supports.

Like ``crmd.console.chart``, drawn from numbers and the console's own labels; every
text is escaped by ``Markup.format`` all the same."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple

from markupsafe import Markup

ABOVE, BELOW, ACROSS, PLAIN = "#1e7a4a", "#b3261e", "#8a93a3", "#2456c7"
DOT = INK = "#1d2430"
AXIS = "#5b6576"
WIDTH = 400
ROW = 30
TOP = 8
AXIS_ROOM = 24
"""Below the rows: the zero mark's and the ends' figures."""
RIGHT = 12
LABELLED = 36
"""Room at the left for a row's label (``A``, ``B``...), when rows have one."""


class Row(NamedTuple):
    label: str
    """Drawn at the row's left (empty: none)."""
    interval: Mapping[str, float]
    """``estimate``, ``low`` and ``high``."""
    said: str
    """The row in words, for a screen reader."""


def _colour(low: float, high: float) -> str:
    if low > 0:
        return ABOVE
    if high < 0:
        return BELOW
    return ACROSS


def _scale(rows: Sequence[Row]) -> tuple[float, float]:
    """The values at the axis's two ends: every interval and zero, with a margin."""
    low = min([0.0, *(float(r.interval["low"]) for r in rows)])
    high = max([0.0, *(float(r.interval["high"]) for r in rows)])
    if high - low <= 0:
        high = low + 1.0  # nothing but zero: any scale will do
    margin = (high - low) * 0.06
    return low - (margin if low < 0 else 0.0), high + (margin if high > 0 else 0.0)


def interval_chart(
    rows: Sequence[Row], tick: Callable[[float], str], *, title: str, by_sign: bool = True
) -> Markup:
    """The rows on one scale, zero marked, with ``tick`` writing the intervals' outer
    ends under the axis. ``by_sign``: a difference, coloured by what its interval
    supports; else a figure (a rate, an amount), all in one colour."""
    if not rows:
        return Markup("")
    left = LABELLED if any(r.label for r in rows) else 8
    height = TOP + ROW * len(rows) + AXIS_ROOM
    low, high = _scale(rows)

    def x(value: float) -> float:
        return left + (WIDTH - left - RIGHT) * (value - low) / (high - low)

    zero = x(0.0)
    bottom = TOP + ROW * len(rows)
    parts: list[Markup] = [
        Markup(
            '<line x1="{l}" y1="{b}" x2="{r}" y2="{b}" stroke="{axis}" stroke-width="1"></line>'
            '<line x1="{z:.1f}" y1="{t}" x2="{z:.1f}" y2="{b2}" stroke="{axis}" '
            'stroke-width="1.5" stroke-dasharray="3 3" data-zero="1"></line>'
        ).format(l=left, r=WIDTH - RIGHT, b=bottom, z=zero, t=TOP - 4, b2=bottom + 4, axis=AXIS)
    ]
    lowest = min(float(r.interval["low"]) for r in rows)
    highest = max(float(r.interval["high"]) for r in rows)
    marks = [(zero, "0")]  # then the intervals' outer ends, where there is room
    for value in (lowest, highest):
        if all(abs(x(value) - at) > 56 for at, _ in marks):
            marks.append((x(value), tick(value)))
    for at, text in marks:
        anchor = "start" if at < left + 24 else "end" if at > WIDTH - RIGHT - 24 else "middle"
        parts.append(
            Markup(
                '<text x="{x:.1f}" y="{y}" text-anchor="{a}" font-size="13" fill="{c}">{t}</text>'
            ).format(x=at, y=bottom + 18, a=anchor, c=AXIS, t=text)
        )
    for i, row in enumerate(rows):
        mid = TOP + ROW * i + ROW / 2
        lo, hi = float(row.interval["low"]), float(row.interval["high"])
        estimate = float(row.interval["estimate"])
        if row.label:
            parts.append(
                Markup(
                    '<text x="{x}" y="{y:.1f}" text-anchor="end" font-size="14" '
                    'font-weight="600" fill="{c}">{t}</text>'
                ).format(x=left - 10, y=mid + 5, c=INK, t=row.label)
            )
        parts.append(
            Markup(
                '<rect x="{x:.1f}" y="{y:.1f}" width="{w:.1f}" height="10" rx="5" fill="{c}" '
                'data-interval="1"><title>{said}</title></rect>'
                '<circle cx="{cx:.1f}" cy="{y2:.1f}" r="6" fill="{dot}" stroke="#fff" '
                'stroke-width="2" data-estimate="1"></circle>'
            ).format(
                x=x(lo),
                y=mid - 5,
                w=max(x(hi) - x(lo), 2.0),
                c=_colour(lo, hi) if by_sign else PLAIN,
                said=row.said,
                cx=x(estimate),
                y2=mid,
                dot=DOT,
            )
        )
    said = "; ".join(r.said for r in rows)
    return Markup(
        '<svg class="intervals" viewBox="0 0 {w} {h}" role="img" aria-label="{label}" '
        'xmlns="http://www.w3.org/2000/svg"><title>{title}</title>{parts}</svg>'
    ).format(w=WIDTH, h=height, label=f"{title}: {said}", title=title, parts=Markup("").join(parts))


def interval_of(value: Any) -> dict[str, float] | None:
    """An ``Interval`` as the view has it (a dict, or a Struct), or None."""
    if value is None:
        return None
    if isinstance(value, Mapping):
        return {k: float(value[k]) for k in ("estimate", "low", "high")}
    return {k: float(getattr(value, k)) for k in ("estimate", "low", "high")}
