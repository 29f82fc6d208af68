"""Charts drawn on the server as SVG, from numbers alone (no text a user wrote goes in,
so the markup is safe to insert as it is). Colours are presentation attributes, which
the Content-Security-Policy allows where a style attribute would not be."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime

from markupsafe import Markup

from crmd.messages import MessageStatus
from crmd.store.documents import Campaign
from crmd.store.tenant import TenantStore

GOOD, SENT, BAD, PENDING, OTHER = "#1e7a4a", "#2456c7", "#b3261e", "#d5dae3", "#9a6200"
WIDTH, HEIGHT, PAD = 960, 240, 56
POINTS = 120
"""The most points a line of the chart has."""
LOG_READ = 5_000
"""The largest campaign whose chart is drawn from its messages' own times."""
HANDED = (MessageStatus.SENT, MessageStatus.DELIVERED, MessageStatus.FAILED, MessageStatus.UNKNOWN)
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


def deliveries_chart(timeline: Mapping[str, Sequence[int]], audience: int) -> Markup:
    """Handed over, delivered and failed so far, against the seconds since the campaign
    started (the campaign's ``timeline`` of stats snapshots)."""
    points = sorted(
        (int(second), [int(v) for v in values])
        for second, values in timeline.items()
        if str(second).isdigit() and len(values) == 3
    )
    if not points:
        return Markup(
            '<svg xmlns="{ns}" class="chart" viewBox="0 0 {w} 60" role="img" '
            'aria-label="No deliveries yet">'
            '<text x="{pad}" y="34" fill="#5b6576">No deliveries yet</text></svg>'
        ).format(ns=SVG, w=WIDTH, pad=PAD)
    if len(points) == 1:  # all within the first step: from nothing to there in 5 s
        points = [(0, [0, 0, 0]), (max(points[0][0], 5), points[0][1])]
    elif points[0][0] > 0:
        points = [(0, [0, 0, 0]), *points]
    last = max(points[-1][0], 1)
    top = max(audience, max(max(v) for _, v in points), 1)
    inner_w, inner_h = WIDTH - 2 * PAD, HEIGHT - 2 * PAD

    def xy(second: int, value: int) -> str:
        return f"{PAD + inner_w * second / last:.1f},{HEIGHT - PAD - inner_h * value / top:.1f}"

    lines = []
    for index, (name, colour) in enumerate(
        (("handed over", SENT), ("delivered", GOOD), ("failed", BAD))
    ):
        path = " ".join(xy(second, values[index]) for second, values in points)
        dots = Markup("").join(
            Markup('<circle cx="{}" cy="{}" r="3" fill="{}"></circle>').format(
                *xy(second, values[index]).split(","), colour
            )
            for second, values in points[-1:]
        )
        lines.append(
            Markup(
                '<g><title>{}</title><polyline points="{}" fill="none" stroke="{}" '
                'stroke-width="2"></polyline>{}</g>'
            ).format(name, path, colour, dots)
        )
    final = points[-1][1]
    label = (
        f"After {_duration(last)}: {final[0]:,} handed over, {final[1]:,} delivered, "
        f"{final[2]:,} failed, of {audience:,}"
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
        for i, (n, c) in enumerate((("handed over", SENT), ("delivered", GOOD), ("failed", BAD)))
    )
    return Markup(
        '<svg xmlns="{ns}" class="chart" viewBox="0 0 {w} {h}" role="img" aria-label="{label}">'
        "{legend}{axes}{lines}</svg>"
    ).format(
        ns=SVG,
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


def as_chart(campaign: Campaign) -> Markup:
    """From the campaign's stats snapshots (a campaign too large to read its log)."""
    return deliveries_chart(campaign.timeline, campaign.audienceSize)


def receipts_timeline(
    times: Sequence[Mapping[str, datetime]], points: int = POINTS
) -> dict[str, list[int]]:
    """``deliveries_chart``'s timeline from when each message was handed over,
    delivered or failed (the log's first-seen ``times``, a receipt's own timestamp for
    DELIVERED and FAILED): [handed over, delivered, failed] so far, at up to ``points``
    evenly spaced seconds from the first of them."""
    events: list[tuple[float, int]] = []
    for seen in times:
        moments = {k: v.replace(tzinfo=v.tzinfo or UTC).timestamp() for k, v in seen.items()}
        handed = [moments[k] for k in HANDED if k in moments]
        if handed:
            events.append((min(handed), 0))
        if MessageStatus.DELIVERED in moments:
            events.append((moments[MessageStatus.DELIVERED], 1))
        if MessageStatus.FAILED in moments:
            events.append((moments[MessageStatus.FAILED], 2))
    if not events:
        return {}
    events.sort()
    start, end = events[0][0], events[-1][0]
    span = max(end - start, 1.0)
    step = max(span / points, 1.0)
    timeline: dict[str, list[int]] = {}
    counts = [0, 0, 0]
    for moment, which in events:
        counts[which] += 1
        index = min(points, math.ceil((moment - start) / step))  # the step's end it is in
        second = round(index * step)
        timeline[str(second)] = list(counts)
    return timeline


async def chart_of(store: TenantStore, campaign: Campaign) -> Markup:
    """The deliveries chart from the receipts' timestamps; from the stats snapshots for
    a campaign larger than ``LOG_READ`` (its whole log would be read every second)."""
    audience = campaign.audienceSize
    if audience > LOG_READ:
        return as_chart(campaign)
    logs = store["communication_log"].find(
        {"campaignId": str(campaign.id)}, projection={"times": 1}
    )
    times = [doc["times"] async for doc in logs if doc.get("times")]
    return deliveries_chart(receipts_timeline(times), audience)
