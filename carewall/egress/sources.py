"""Where the rows come from: a CSV or Parquet file, a SQLite table, or a PostgreSQL table.

Files are read by the engines' own readers (:mod:`carewall.egress.files`). DuckDB's SQLite
and PostgreSQL scanners are extensions downloaded at run time (unreachable here), so
database tables are read through their Python drivers (:mod:`carewall.egress.databases`).
:mod:`carewall.egress.reading` reads either kind: its columns, and a relation DuckDB can
select from. Every read is wrapped by :func:`~carewall.egress.read_errors.read_errors`.

Column names. A source whose column names are not unique, compared as DuckDB and Spark
resolve identifiers (case aside), is refused (:func:`check_unique_names`): DuckDB would
read the second ``name`` as ``name_1``, so a mapping checked against the source's own names
would read another column.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from carewall.egress.mapping import shown_name
from carewall.egress.plan import first_repeated
from carewall.errors import InputError

__all__ = ["Source", "SourceKind", "check_unique_names"]

SourceKind = Literal["csv", "parquet", "sqlite", "postgres"]


@dataclass(frozen=True)
class Source:
    """A dataset to filter. Build one with :meth:`csv`, :meth:`parquet`, :meth:`sqlite` or
    :meth:`postgres`; ``location`` is a file path or a ``postgresql://`` URL."""

    kind: SourceKind
    location: str
    table: str | None = None
    schema: str | None = None

    @classmethod
    def csv(cls, path: Path | str) -> Source:
        return cls("csv", str(path))

    @classmethod
    def parquet(cls, path: Path | str) -> Source:
        return cls("parquet", str(path))

    @classmethod
    def sqlite(cls, path: Path | str, table: str) -> Source:
        return cls("sqlite", str(path), table)

    @classmethod
    def postgres(cls, url: str, table: str, schema: str = "public") -> Source:
        return cls("postgres", url, table, schema)

    @property
    def is_file(self) -> bool:
        return self.kind in ("csv", "parquet")

    @property
    def label(self) -> str:
        """A public name: the file's name, or the table (never a URL or credentials)."""
        if self.is_file:
            return Path(self.location).name
        return f"{self.kind} table {self.table!r}"

    def path(self) -> Path:
        p = Path(self.location)
        if not p.is_file():
            raise InputError(
                f"no file at the source path ({self.label})", field="SOURCE", fix="check the path"
            )
        return p


def check_unique_names(
    source: Source, names: Sequence[str], read_as: Sequence[str] | None = None
) -> None:
    """Refuse names that are not unique case aside, or that DuckDB reads under another name
    (``read_as``: DuckDB's names for the same columns, in order)."""
    repeated = first_repeated(names)
    if repeated is not None:
        raise InputError(
            f"the source {source.label} has several columns named {shown_name(repeated)} "
            "(case aside)",
            field="SOURCE",
            fix="rename its columns so that every name is unique, case aside "
            "(DuckDB would read the second under another name)",
        )
    if read_as is None:
        return
    if len(read_as) != len(names):
        raise InputError(
            f"the source {source.label} has {len(names)} column names but DuckDB reads "
            f"{len(read_as)} columns",
            field="SOURCE",
            fix="give every column a unique name in the header",
        )
    for name, got in zip(names, read_as, strict=True):
        if name.strip() and got != name.strip():
            raise InputError(
                f"the source {source.label}'s column {shown_name(name)} is read as "
                f"{shown_name(got)}",
                field="SOURCE",
                fix="give every column a unique, non-blank name (case aside)",
            )
