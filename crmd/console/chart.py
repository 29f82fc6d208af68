"""Charts drawn on the server as SVG, from numbers alone (no text a user wrote goes in,
so the markup is safe to insert as it is). Colours are presentation attributes, which
the Content-Security-Policy allows where a style attribute would not be."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import NamedTuple

from markupsafe import Markup

from crmd.messages import MessageStatus
from crmd.store.documents import Campaign
from crmd.store.tenant import TenantStore

GOOD, SENT, BAD, PENDING, OTHER = "#1e7a4a", "#2456c7", "#b3261e", "#d5dae3", "#9a6200"
OPENED, CLICKED = "#6a3fb5", "#0b7a86"
WIDTH, HEIGHT, PAD = 960, 240, 56
POINTS = 120
"""The most points a line of the chart has."""
LOG_READ = 5_000
"""The largest campaign whose chart is drawn from its messages' own times."""
HANDED = (MessageStatus.SENT, MessageStatus.DELIVERED, MessageStatus.FAILED, MessageStatus.UNKNOWN)
REACHED = (
    MessageStatus.DELIVERED,
    MessageStatus.OPENED,
    MessageStatus.CLICKED,
    MessageStatus.COMPLAINED,
)
"""A message's first-seen times that say it was delivered (the stats' ``delivered``)."""
FAILING = (MessageStatus.FAILED, MessageStatus.BOUNCED)
SVG = "http://www.w3.org/2000/svg"


def delivery_bar(stats: Mapping[str, int], audience: int, width: int = 160) -> Markup:
    """One bar: delivered, sent (no receipt yet), failed, unknown, and what is left."""
    total = max(audience, 1)
    parts = [
        ("delivered", GOOD),
        ("sent", SENT),
        ("failed", BAD),
        ("unknown", OTHER),
        ("cancelled", "#8a93a3"),
    ]
    x = 0.0
    rects = []
    said = []
    for key, colour in parts:
        count = int(stats.get(key, 0))
        if count:
            w = width * count / total
            rects.append(
                Markup(
                    '<rect x="{:.1f}" y="0" width="{:.1f}" height="10" fill="{}"></rect>'
                ).format(x, w, colour)
            )
            x += w
            said.append(f"{count:,} {key}")
    label = ", ".join(said) or "nothing sent yet"
    return Markup(
        '<svg class="delivery" width="{w}" height="10" viewBox="0 0 {w} 10" role="img" '
        'aria-label="{label} of {audience:,}"><rect x="0" y="0" width="{w}" height="10" '
        'fill="{pending}"></rect>{rects}</svg>'
    ).format(w=width, label=label, audience=audience, pending=PENDING, rects=Markup("").join(rects))


Point = tuple[int, list[int]]
DELIVERIES = (("handed over", SENT), ("delivered", GOOD), ("failed", BAD))
ENGAGEMENT = (("opened", OPENED), ("clicked", CLICKED))


def _points(timeline: Mapping[str, Sequence[int]], first: int, lines: int) -> list[Point]:
    """The timeline's points, ``lines`` values of each from ``first`` on, from 0 s; a
    point too short to have them is left out (one stored before they were kept)."""
    points = sorted(
        (int(second), [int(v) for v in values[first : first + lines]])
        for second, values in timeline.items()
        if str(second).isdigit() and len(values) >= first + lines
    )
    if len(points) == 1:  # all within the first step: from nothing to there in 5 s
        return [(0, [0] * lines), (max(points[0][0], 5), points[0][1])]
    if points and points[0][0] > 0:
        return [(0, [0] * lines), *points]
    return points


def deliveries_chart(timeline: Mapping[str, Sequence[int]], audience: int) -> Markup:
    """Handed over, delivered and failed so far, against the seconds since the campaign
    started (the campaign's ``timeline`` of stats snapshots)."""
    points = _points(timeline, 0, 3)
    if not points:
        return _empty("No deliveries yet")
    last, final = max(points[-1][0], 1), points[-1][1]
    label = (
        f"After {_duration(last)}: {final[0]:,} handed over, {final[1]:,} delivered, "
        f"{final[2]:,} failed, of {audience:,}"
    )
    return line_chart(points, DELIVERIES, max(audience, 1), label)


def engagement_chart(timeline: Mapping[str, Sequence[int]], delivered: int) -> Markup:
    """Messages opened (by people) and clicked so far, against the seconds since the
    first of them (``engagement_timeline``, or the stats snapshots' last two values)."""
    points = _points(timeline, 0, 2)
    if not points:
        return _empty("No opens or clicks yet")
    last, final = max(points[-1][0], 1), points[-1][1]
    label = (
        f"After {_duration(last)}: {final[0]:,} opened, {final[1]:,} clicked, "
        f"of {delivered:,} delivered"
    )
    return line_chart(points, ENGAGEMENT, max(delivered, 1), label, chart_class="chart engagement")


def _empty(said: str) -> Markup:
    return Markup(
        '<svg xmlns="{ns}" class="chart" viewBox="0 0 {w} 60" role="img" aria-label="{said}">'
        '<text x="{pad}" y="34" fill="#5b6576">{said}</text></svg>'
    ).format(ns=SVG, w=WIDTH, pad=PAD, said=said)


def line_chart(
    points: Sequence[Point],
    series: Sequence[tuple[str, str]],
    top: int,
    label: str,
    chart_class: str = "chart",
) -> Markup:
    """One line per ``(name, colour)`` of ``series`` through the points' values, up to
    ``top`` (or the highest value, if higher), with a legend and both axes."""
    last = max(points[-1][0], 1)
    top = max(top, max(max(v, default=0) for _, v in points), 1)
    inner_w, inner_h = WIDTH - 2 * PAD, HEIGHT - 2 * PAD

    def xy(second: int, value: int) -> str:
        return f"{PAD + inner_w * second / last:.1f},{HEIGHT - PAD - inner_h * value / top:.1f}"

    lines = []
    for index, (name, colour) in enumerate(series):
        path = " ".join(xy(second, values[index]) for second, values in points)
        second, values = points[-1]
        dot = Markup('<circle cx="{}" cy="{}" r="3" fill="{}"></circle>').format(
            *xy(second, values[index]).split(","), colour
        )
        lines.append(
            Markup(
                '<g><title>{}</title><polyline points="{}" fill="none" stroke="{}" '
                'stroke-width="2"></polyline>{}</g>'
            ).format(name, path, colour, dot)
        )
    axes = Markup(
        '<line x1="{pad}" y1="{base}" x2="{right}" y2="{base}" stroke="#c3cad6"></line>'
        '<line x1="{pad}" y1="{pad}" x2="{pad}" y2="{base}" stroke="#c3cad6"></line>'
        '<text x="{label_x}" y="{top_y}" text-anchor="end" font-size="15" fill="#5b6576">'
        "{top:,}</text>"
        '<text x="{label_x}" y="{zero_y}" text-anchor="end" font-size="15" fill="#5b6576">'
        "0</text>"
        '<text x="{right}" y="{time_y}" text-anchor="end" font-size="15" fill="#5b6576">'
        "{duration}</text>"
    ).format(
        pad=PAD,
        base=HEIGHT - PAD,
        right=WIDTH - PAD,
        label_x=PAD - 6,
        top_y=PAD + 4,
        zero_y=HEIGHT - PAD + 4,
        time_y=HEIGHT - PAD + 18,
        top=top,
        duration=_duration(last),
    )
    legend = Markup("").join(
        Markup(
            '<rect x="{x}" y="6" width="13" height="13" fill="{colour}"></rect>'
            '<text x="{text_x}" y="18" font-size="16" fill="#1d2430">{name}</text>'
        ).format(x=PAD + i * 150, colour=c, text_x=PAD + 18 + i * 150, name=n)
        for i, (n, c) in enumerate(series)
    )
    return Markup(
        '<svg xmlns="{ns}" class="{cls}" viewBox="0 0 {w} {h}" role="img" aria-label="{label}">'
        "{legend}{axes}{lines}</svg>"
    ).format(
        ns=SVG,
        cls=chart_class,
        w=WIDTH,
        h=HEIGHT,
        label=label,
        legend=legend,
        axes=axes,
        lines=Markup("").join(lines),
    )


def _duration(seconds: int) -> str:
    if seconds < 120:
        return f"{seconds} s"
    if seconds < 7200:
        return f"{seconds // 60} min"
    return f"{seconds / 3600:.1f} h"


def receipts_timeline(
    times: Sequence[Mapping[str, datetime]], points: int = POINTS
) -> dict[str, list[int]]:
    """``deliveries_chart``'s timeline from when each message was handed over,
    delivered or failed (the log's first-seen ``times``, a receipt's own timestamp for
    DELIVERED and FAILED; a message first heard of opened, clicked or complained about
    was delivered then, a bounced one failed when it bounced): [handed over, delivered,
    failed] so far, at up to ``points``
    evenly spaced seconds from the first of them."""
    events: list[tuple[float, int]] = []
    for seen in times:
        moments = _moments(seen)
        handed = [moments[k] for k in HANDED if k in moments]
        if handed:
            events.append((min(handed), 0))
        # Counted once, on the line the stats count it on: a bounce fails a message
        # that was delivered (unless its recipient complained, which ranks above).
        reached = [moments[k] for k in REACHED if k in moments]
        failed = [moments[k] for k in FAILING if k in moments]
        if failed and MessageStatus.COMPLAINED not in moments:
            events.append((min(failed), 2))
        elif reached:
            events.append((min(reached), 1))
    return _timeline(events, None, 3, points)


def engagement_timeline(
    times: Sequence[Mapping[str, datetime]], points: int = POINTS
) -> dict[str, list[int]]:
    """``engagement_chart``'s timeline from when each message was first opened by a
    person and first clicked: [opened, clicked] so far, at up to ``points`` evenly
    spaced seconds from the first hand-over (so it lines up with the deliveries)."""
    events: list[tuple[float, int]] = []
    handed: list[float] = []
    for seen in times:
        moments = _moments(seen)
        handed += [moments[k] for k in HANDED if k in moments]
        for line, status in enumerate((MessageStatus.OPENED, MessageStatus.CLICKED)):
            if status in moments:
                events.append((moments[status], line))
    return _timeline(events, min(handed, default=None), 2, points)


def _moments(seen: Mapping[str, datetime]) -> dict[str, float]:
    return {k: v.replace(tzinfo=v.tzinfo or UTC).timestamp() for k, v in seen.items() if v}


def _timeline(
    events: list[tuple[float, int]], start: float | None, lines: int, points: int
) -> dict[str, list[int]]:
    """Each ``(moment, line)`` event counted on its line, at the end of the step it is
    in, from ``start`` (None: the first event) to the last event."""
    if not events:
        return {}
    events.sort()
    first = events[0][0] if start is None else min(start, events[0][0])
    span = max(events[-1][0] - first, 1.0)
    step = max(span / points, 1.0)
    timeline: dict[str, list[int]] = {}
    counts = [0] * lines
    for moment, which in events:
        counts[which] += 1
        index = min(points, math.ceil((moment - first) / step))  # the step's end it is in
        timeline[str(round(index * step))] = list(counts)
    return timeline


class Charts(NamedTuple):
    deliveries: Markup
    engagement: Markup


async def charts_of(store: TenantStore, campaign: Campaign, delivered: int) -> Charts:
    """The deliveries chart and the opens and clicks chart, from the logs' first-seen
    times; from the stats snapshots for a campaign larger than ``LOG_READ`` (its whole
    log would be read every second)."""
    audience = campaign.audienceSize
    if audience > LOG_READ:
        opened_clicked = {k: v[3:5] for k, v in campaign.timeline.items()}
        return Charts(
            deliveries_chart(campaign.timeline, audience),
            engagement_chart(opened_clicked, delivered),
        )
    logs = store["communication_log"].find(
        {"campaignId": str(campaign.id)}, projection={"times": 1}
    )
    times = [doc["times"] async for doc in logs if doc.get("times")]
    return Charts(
        deliveries_chart(receipts_timeline(times), audience),
        engagement_chart(engagement_timeline(times), delivered),
    )
