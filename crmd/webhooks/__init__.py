"""Webhooks out: crmd's own events (a message's outcome, an unsubscribe, an import
done, a flow entered...) posted to the URLs a tenant subscribed, signed the Standard
Webhooks way and retried with back-off.

``emit`` (``crmd.webhooks.emit``) is the one call the rest of crmd makes. It records a
delivery document per subscription before it returns, so an event is never lost to a
crash after it; the clock hands the due deliveries out in bounded batches
(``crmd.webhooks.deliver``), each attempt claimed by a conditional update so that two
processes never make the same attempt."""
