"""crmd's Gemini suggester: Google's Gemini REST API (``generateContent``) via aiohttp.

Off unless an API key is set: ``[plugins.gemini] api_key`` or ``GEMINI_API_KEY``.
Settings: ``model`` (default gemini-2.5-flash), ``timeout`` (seconds, default 10),
``base_url`` (default Google's). Gemini is asked for JSON; an answer that is not the
JSON asked for is treated as no answer, and crmd asks the next suggester. crmd itself
checks rules and messages before using them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any

import aiohttp
import msgspec
import structlog

from crmd.plugins import PluginContext, hookimpl

NAME = "gemini"
DEFAULT_BASE = "https://generativelanguage.googleapis.com"
log = structlog.get_logger(__name__)


class Variants(msgspec.Struct):
    variants: list[str]


class RuleAnswer(msgspec.Struct):
    rule: str


class SummaryAnswer(msgspec.Struct):
    summary: str


class TagsAnswer(msgspec.Struct):
    tags: list[str]


class Settings(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """``[plugins.gemini]``; ``api_key`` also from ``GEMINI_API_KEY``."""

    api_key: str = ""
    # \Z, not $: msgspec searches with Python's re, whose $ matches before a final "\n".
    model: Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9._-]{1,100}\Z")] = "gemini-2.5-flash"
    timeout: Annotated[float, msgspec.Meta(gt=0, le=120)] = 10.0
    base_url: Annotated[str, msgspec.Meta(pattern=r"^https?://")] = DEFAULT_BASE


class GeminiSuggester:
    name = NAME

    def __init__(self, settings: Settings, http: aiohttp.ClientSession) -> None:
        self.key = settings.api_key
        self.model = settings.model
        self.timeout = settings.timeout
        self.base = settings.base_url.rstrip("/")
        self.http = http

    async def ask(self, prompt: str, shape: type[Any]) -> Any:
        """Gemini's JSON answer decoded as ``shape``, or None for any failure."""
        url = f"{self.base}/v1beta/models/{self.model}:generateContent"
        body = {
            "contents": [{"role": "user", "parts": [{"text": prompt}]}],
            "generationConfig": {"responseMimeType": "application/json", "temperature": 0.4},
        }
        try:
            async with self.http.post(
                url,
                json=body,
                headers={"x-goog-api-key": self.key},
                timeout=aiohttp.ClientTimeout(total=self.timeout),
            ) as response:
                if response.status != 200:
                    log.warning("gemini.http_error", status=response.status)
                    return None
                reply = await response.json(content_type=None)
            text = reply["candidates"][0]["content"]["parts"][0]["text"]
            return msgspec.json.decode(text, type=shape)
        except TimeoutError:
            log.warning("gemini.timeout", timeout=self.timeout)
        except (
            aiohttp.ClientError,
            KeyError,
            IndexError,
            TypeError,
            ValueError,
            msgspec.DecodeError,
        ) as exc:
            log.warning("gemini.bad_answer", error=f"{type(exc).__name__}: {exc}"[:200])
        return None

    async def suggest_messages(
        self, objective: str, intent: str, audience: str, n: int
    ) -> Sequence[str] | None:
        answer = await self.ask(
            f"Write {n} short SMS marketing messages (at most 160 characters each) for this "
            f"objective: {objective!r}, intent: {intent!r}, audience rule: {audience!r}. "
            "Personalise only with these placeholders: {first_name|there}, {name}, "
            '{location}, {spend}, {visits}. Answer as JSON: {"variants": ["..."]}.',
            Variants,
        )
        return answer.variants[:n] if answer else None

    async def rule_from_text(self, text: str, fields: Sequence[str]) -> str | None:
        answer = await self.ask(
            "Translate this audience description into a rule. Fields: "
            f"{', '.join(fields)}. Operators: > >= < <= = != contains in (...); join with "
            "AND, OR, NOT. Dates: lastActive < 90d means inactive for more than 90 days. "
            f'Description: {text!r}. Answer as JSON: {{"rule": "..."}}.',
            RuleAnswer,
        )
        return answer.rule if answer else None

    async def summarize_campaign(
        self, campaign: dict[str, Any], stats: dict[str, int], breakdown: dict[str, Any]
    ) -> str | None:
        answer = await self.ask(summary_prompt(campaign, stats, breakdown), SummaryAnswer)
        return answer.summary if answer else None

    async def tag_segment(self, rule: str, stats: dict[str, Any]) -> Sequence[str] | None:
        answer = await self.ask(
            f"Give 1 to 4 short marketing labels (like Win-back, High value) for the "
            f'customer segment {rule!r} ({stats}). Answer as JSON: {{"tags": ["..."]}}.',
            TagsAnswer,
        )
        return answer.tags if answer else None


def summary_prompt(
    campaign: dict[str, Any], stats: dict[str, int], breakdown: dict[str, Any]
) -> str:
    """The question for a campaign's summary. With an effect measured, Gemini is given
    crmd's statement of it to include word for word, and told to claim nothing beyond
    it (crmd appends the statement to an answer without it all the same)."""
    prompt = (
        "Summarise in two plain sentences how this campaign went. Name: "
        f"{campaign.get('name')!r}; delivery: {stats}; delivery by spend band: {breakdown}."
    )
    statement = campaign.get("effectStatement")
    if statement:
        prompt += (
            f" Its effect on orders (messaged customers against a held-out group, with 95 % "
            f"intervals): {msgspec.json.encode(campaign.get('effect')).decode()}. Include "
            f"this sentence word for word, and claim no effect beyond it: {statement!r}"
        )
    return prompt + ' Answer as JSON: {"summary": "..."}.'


@hookimpl
def crmd_suggesters(context: PluginContext) -> list[GeminiSuggester]:
    settings = context.settings(Settings)
    if not settings.api_key:
        return []
    return [GeminiSuggester(settings, context.http)]
