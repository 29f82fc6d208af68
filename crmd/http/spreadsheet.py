"""CSV that is safe to open in a spreadsheet.

A cell that starts with ``=``, ``+``, ``-`` or ``@`` (or a tab or carriage return, which
some programs skip before looking) is a formula to Excel, LibreOffice and Google Sheets:
``=cmd|' /C calc'!A0`` in a rejected row would run when an operator opens errors.csv.
Every cell crmd writes goes through ``safe_cell``, which puts a ``'`` in front of such a
cell, as OWASP's CSV-injection advice says: the spreadsheet then shows it as text.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value: object) -> str:
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def csv_line(cells: Iterable[object]) -> str:
    """One CSV record, every cell made safe, ending in a newline."""
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerow([safe_cell(c) for c in cells])
    return buffer.getvalue()
