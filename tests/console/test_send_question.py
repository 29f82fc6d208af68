"""The "Send now" question: the answer sends exactly what was asked about, once: a
form changed after the question is asked about again, and a second answer (a double
click, a reload) sends nothing more."""

from __future__ import annotations

import html as markup
import re
from typing import Any

from crmd.app import Crmd
from tests.campaigns.test_delivery_loop import load
from tests.console.test_security import signed_in


def hidden(page: str, name: str) -> str:
    found = re.search(rf'<input type="hidden" name="{name}" value="([^"]*)">', page)
    assert found, name
    return markup.unescape(found[1])


async def test_the_answer_sends_what_was_asked_about_and_only_once(
    client: Any, auth: Any, system: Crmd, ingesting: Any
):
    await load(client, auth)
    csrf = await signed_in(client, "ops@example.com")
    origin = {"Origin": str(client.make_url("")).rstrip("/")}
    form = {"csrf": csrf, "name": "Ask", "rule": "spend > 10000", "message": "Hi {name}"}

    async def post(**fields: str) -> Any:
        return await client.post(
            "/campaigns", data={**form, **fields}, headers=origin, allow_redirects=False
        )

    asked = await post(action="send")
    assert asked.status == 303 and "/campaigns/new?form=" in asked.headers["Location"]
    question = await (await client.get(asked.headers["Location"])).text()
    assert "Send to 200 customers" in question
    answer = {"confirmed": hidden(question, "confirmed"), "said": hidden(question, "said")}

    # The audience changed after the question: asked again, nothing sent.
    changed = await post(action="confirmed-send", **{**answer, "rule": "spend > 0"})
    assert "/campaigns/new?form=" in changed.headers["Location"]
    again = await (await client.get(changed.headers["Location"])).text()
    assert "Send to 400 customers" in again
    assert await system.db.campaigns.count_documents({}) == 0
    # No question at all: asked.
    unasked = await post(action="confirmed-send")
    assert "/campaigns/new?form=" in unasked.headers["Location"]
    assert await system.db.campaigns.count_documents({}) == 0

    sent = await post(action="confirmed-send", **answer)
    assert re.fullmatch(r"/campaigns/[0-9a-f]{24}(\?.*)?", sent.headers["Location"])
    twice = await post(action="confirmed-send", **answer)
    assert twice.headers["Location"] == "/campaigns"
    assert await system.db.campaigns.count_documents({}) == 1

    # Enter in a field submits the form's first button: a preview, never a send.
    page = await (await client.get(asked.headers["Location"])).text()
    first = re.search(r'<button type="submit" name="action" value="([a-z-]+)"', page)
    assert first and first[1] == "preview"
