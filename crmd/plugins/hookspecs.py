"""crmd's plugin hooks: this module is the plugin author's manual.

A plugin is a module or object with functions marked ``@hookimpl`` whose names are the
hooks below. Register it in your package's metadata under the entry-point group
``crmd``::

    [options.entry_points]
    crmd =
        my_plugin = my_package.plugin

and install the package next to crmd: ``crmd plugins`` then lists it with the hooks it
implements. A function whose name is not one of these hooks stops crmd at start, with
a line naming your plugin and the name, so a typo never goes unnoticed.

Every hook is called once at start-up with one argument, ``context``: a
``crmd.plugins.PluginContext`` made for your plugin alone. It carries

- ``context.settings(YourStruct)``: your ``[plugins.<name>]`` table (the entry-point name
  is the table name), from ``crmd.toml`` and from ``CRMD_PLUGINS__<NAME>__<KEY>``
  variables alike, decoded by your own ``msgspec.Struct``. A bad value stops crmd (and
  ``crmd check-config``) with a line naming ``plugins.<name>.<key>``. ``enabled = false``
  in the table turns your plugin off before any hook is called.
- ``context.http``: an aiohttp session for your calls (set a timeout on each);
- ``context.log``: a logger that names your plugin on every line;
- ``context.public_url`` and ``context.receipt_url``: where crmd is reached, and where
  your vendor's receipts go;
- ``context.secret`` and ``context.sign(body, id, timestamp)``: a signing secret of your
  plugin's own, derived from crmd's (which you never see), for callbacks both ends of
  which you control.

Registration hooks return objects; the objects carry the async methods crmd calls
later. crmd calls each hook through pluggy's hook caller, once per plugin (each with its
own context), the plugin registered last first. Import only from ``crmd.plugins``: it
exports ``hookimpl`` and every type named below. A hook that raises, or that returns
anything but a list, stops start-up with a line naming your plugin.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from crmd.plugins.markers import hookspec

if TYPE_CHECKING:
    from crmd.plugins.context import PluginContext
    from crmd.plugins.suggester import Suggester
    from crmd.plugins.vendor import ReceiptSource, Vendor
    from crmd.runtime.actor import Actor


@hookspec
def crmd_actors(context: PluginContext) -> list[Actor]:  # type: ignore[empty-body]
    """Return long-lived actors for crmd's supervisor to run beside its own.

    Subclass ``crmd.plugins.Actor`` and implement ``async run()``: set
    ``self.health = Health.OK`` once ready, call ``self.progressed()`` as you work (an
    actor that makes no progress for its ``deadline`` is reported unhealthy and stops the
    systemd watchdog), work until ``self.stopping`` is set, then finish the work in hand
    and return. A crash is logged and the actor is run again after a back-off; the
    restart shows in ``/readyz`` and ``/metrics``. Actor names must be unique: prefix
    them with your plugin's name.

    Parameters:
        context: your plugin's ``PluginContext`` (settings, HTTP session, logger, URLs).

    Returns:
        A list of ``crmd.plugins.Actor`` instances, started after crmd's own stream
        actors and before it serves HTTP; ``[]`` for none.
    """


@hookspec
def crmd_vendors(context: PluginContext) -> list[Vendor]:  # type: ignore[empty-body]
    """Return the vendors this plugin provides (usually one), each an object following
    ``crmd.plugins.Vendor``: a ``name``, ``rate_limit()``, ``async send()``,
    ``verify_receipt()``, ``parse_receipts()``, ``async check()`` and ``async close()``.

    Campaigns pick a vendor by name; the first vendor loaded is the default. Receipts
    posted to ``context.receipt_url`` (``/api/v1/deliveryReceipt/<name>``) are handed to
    your ``verify_receipt`` and then ``parse_receipts``, each with a time limit; anything
    they raise refuses the callback with a 4xx that names your plugin. crmd looks the
    message up in its own records, so a receipt can never reach another tenant's data.
    A vendor whose provider says nothing after taking a message (SMTP) answers
    ``Accepted(..., sent=True)`` instead: the message is SENT at hand-over, and no
    receipt is awaited.

    Parameters:
        context: your plugin's ``PluginContext``; ``context.receipt_url`` is where your
            provider must post receipts, ``context.http`` the session for its API.

    Returns:
        A list of ``crmd.plugins.Vendor`` objects with distinct names; ``[]`` when your
        settings say you are off (crmd then never calls you again).
    """


@hookspec
def crmd_receipt_sources(context: PluginContext) -> list[ReceiptSource]:  # type: ignore[empty-body]
    """Return the receipt sources this plugin provides: objects following
    ``crmd.plugins.ReceiptSource``, each reporting what became of mail another vendor
    sent (a mail provider's event webhook about mail crmd handed to its SMTP relay
    through the smtp vendor). A source has a ``name``, ``reports_for`` (the vendors whose
    messages its events may name, usually ``("smtp",)``), ``verify_receipt()``,
    ``parse_receipts()`` and ``async close()``.

    Callbacks posted to ``/api/v1/deliveryReceipt/<name>`` (``context.receipt_url``)
    reach your source when no vendor has that name (a source named like a vendor stops
    start-up). They are handled as a vendor's are: ``verify_receipt`` then
    ``parse_receipts``, each in a worker thread with a time limit, anything they raise
    refusing the callback; events naming no message are dropped and counted. crmd
    finds each message in its own records and applies an event only to a message one of
    ``reports_for`` sent, so a callback never reaches another tenant's data.

    Parameters:
        context: your plugin's ``PluginContext``; ``context.receipt_url`` is the address
            to give the provider, ``context.http`` the session for its calls.

    Returns:
        A list of ``crmd.plugins.ReceiptSource`` objects with distinct names; ``[]``
        when your settings say you are off.
    """


@hookspec
def crmd_suggesters(context: PluginContext) -> list[Suggester]:  # type: ignore[empty-body]
    """Return the AI suggesters this plugin provides, each an object following
    ``crmd.plugins.Suggester``: a ``name`` and four async methods,
    ``suggest_messages(objective, intent, audience, n)``,
    ``rule_from_text(text, fields)``, ``summarize_campaign(campaign, stats, breakdown)``
    and ``tag_segment(rule, stats)``. Any of them may return None when it has no answer.

    Several suggesters may answer the same question: crmd asks them in the order
    ``[ai] order`` gives (the rest after, in loading order), with a time budget each,
    and keeps the first answer that passes its checks (a rule must parse, a message may
    use only known placeholders).

    Parameters:
        context: your plugin's ``PluginContext``; call remote models through
            ``context.http``, with a timeout.

    Returns:
        A list of ``crmd.plugins.Suggester`` objects; ``[]`` when your settings say you
        are off (for example, no API key).
    """
