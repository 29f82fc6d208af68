"""The tenant's suppression list: the addresses crmd never sends a campaign to.

An address joins it when its owner follows a signed unsubscribe link (``links``), when
a vendor says it cannot be delivered to for good (``failures``), or when an operator
adds it (one at a time or from a CSV file, ``csvfile``). ``entries`` keeps the list, one
document per address per tenant; planning asks it which of a stretch's customers to
skip.
"""
