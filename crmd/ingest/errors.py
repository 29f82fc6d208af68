"""What can be wrong with an upload: the whole file (refused), or one row (reported)."""

from __future__ import annotations

import msgspec


class FileProblem(Exception):
    """The file as a whole is refused; nothing from it is queued."""

    def __init__(
        self, status: int, code: str, message: str, *, line: int | None = None,
        column: int | None = None,
    ) -> None:  # fmt: skip
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.line = line
        self.column = column

    def details(self) -> dict[str, int]:
        where = {"line": self.line, "column": self.column}
        return {k: v for k, v in where.items() if v is not None}


class RowError(msgspec.Struct, frozen=True):
    """One rejected row: its first line in the file, the column, a code and a message."""

    line: int
    column: str
    code: str
    message: str
