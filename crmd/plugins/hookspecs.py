"""crmd's plugin hooks: this module is the plugin author's manual.

A plugin is a module or object with functions marked ``@hookimpl`` whose names are the
hooks below. Register it in your package's metadata under the entry-point group
``crmd``::

    [options.entry_points]
    crmd =
        my_plugin = my_package.plugin

and install the package next to crmd: ``crmd plugins`` then lists it with the hooks it
implements. Your settings come from ``[plugins.my_plugin]`` in ``crmd.toml`` (the
entry-point name is the table name); ``enabled = false`` there turns the plugin off.

Everything a hook needs arrives as an argument. Import only ``from crmd import hookimpl``
and the types named in a hook's signature.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from crmd.plugins.markers import hookspec

if TYPE_CHECKING:
    from crmd.plugins.suggester import Suggester
    from crmd.plugins.vendor import Vendor
    from crmd.runtime.actor import Actor
    from crmd.runtime.context import Runtime


@hookspec
def crmd_actors(runtime: Runtime) -> list[Actor]:  # type: ignore[empty-body]
    """Return long-lived actors for crmd's supervisor to run beside its own.

    Called once at start-up, after MongoDB and Redis are connected. ``runtime`` holds the
    configuration (``runtime.plugin_settings("<your name>")``), the database
    (``runtime.db``), Redis (``runtime.redis``) and the metrics registry.

    Subclass ``crmd.runtime.actor.Actor`` and implement ``async run()``: set
    ``self.health = Health.OK`` once ready, work until ``self.stopping`` is set, then
    finish the work in hand and return. A crash is logged and the actor is run again
    after a back-off; the restart shows in ``/readyz`` and ``/metrics``. Actor names must
    be unique: prefix them with your plugin's name. Return ``[]`` for none.
    """


@hookspec
def crmd_vendors(runtime: Runtime) -> list[Vendor]:  # type: ignore[empty-body]
    """Return the vendors this plugin provides (usually one), each an object following
    ``crmd.plugins.vendor.Vendor``: a ``name``, ``rate_limit()``, ``async send()``,
    ``verify_receipt()``, ``parse_receipts()``, ``async check()`` and ``async close()``.

    Called once at start-up. Your settings are ``runtime.plugin_settings("<name>")``
    (the ``[plugins.<name>]`` table); ``runtime.http`` is an aiohttp session you may use
    for the vendor's API (set a timeout on every call). Campaigns pick a vendor by name;
    the first vendor loaded is the default. Receipts posted to
    ``/api/v1/deliveryReceipt/<name>`` are handed to your ``verify_receipt`` and then
    ``parse_receipts``; crmd looks the message up in its own records, so a receipt can
    never reach another tenant's data. Return ``[]`` when your settings say you are off.
    """


@hookspec
def crmd_suggesters(runtime: Runtime) -> list[Suggester]:  # type: ignore[empty-body]
    """Return the AI suggesters this plugin provides, each an object following
    ``crmd.plugins.suggester.Suggester``: a ``name`` and four async methods,
    ``suggest_messages(objective, intent, audience, n)``,
    ``rule_from_text(text, fields)``, ``summarize_campaign(campaign, stats, breakdown)``
    and ``tag_segment(rule, stats)``. Any of them may return None when it has no answer.

    Several suggesters may answer the same question: crmd asks them in the order
    ``[ai] order`` gives (the rest after, in loading order), with a time budget each,
    and keeps the first answer that passes its checks (a rule must parse, a message may
    use only known placeholders). Return ``[]`` when your settings say you are off (for
    example, no API key).
    """
