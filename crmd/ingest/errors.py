"""What can be wrong with an upload: the whole file (refused), or one row (reported)."""

from __future__ import annotations

import msgspec

from crmd.errors import CrmdError


class FileProblem(CrmdError):
    """The file as a whole is refused; nothing from it is queued. Its details say where:
    ``{"line", "column"}`` when known."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        line: int | None = None,
        column: int | None = None,
    ) -> None:
        where = {k: v for k, v in (("line", line), ("column", column)) if v is not None}
        super().__init__(message, details=where or None, code=code)
        self.status = status
        self.line = line
        self.column = column


class RowError(msgspec.Struct, frozen=True):
    """One rejected row: its first line in the file, the column, a code and a message."""

    line: int
    column: str
    code: str
    message: str
