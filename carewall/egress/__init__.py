"""The egress filter's data path (issue 10): one plan, compiled to SQL, run on one engine.

Given a dataset whose rows are a request's subjects, a mapping (TOML) from its columns to
vocabulary categories and from its flag columns to the subject facts, and a decision per
combination of facts, write only what may go:

    mapping = load_mapping(Path("pupils.toml"))                    # mapping.py
    plan = build_plan(mapping, request.categories, decide,         # plan.py (pure)
                      source_columns=source_columns(source))
    counts = count_groups(source, mapping)                         # engines.py
    Console().print(render_dry_run(dry_run(plan, counts)))         # dryrun.py
    result = run(plan, source, "out.parquet", engine="duckdb")     # engines.py

- ``load_mapping(path_or_text) -> EgressMapping``: a ``Path`` is read, a ``str`` is TOML.
- ``build_plan(mapping, categories, decide, *, source_columns=None) -> EgressPlan``:
  ``decide(SubjectFacts) -> Mapping[category, CategoryDecision]`` is called once for each of
  the 8 combinations; outcome ``review`` lets the category's columns go to that group.
  Unmapped, unrequested and never-disclosed columns never go.
- ``select_query(plan, source_table, order=None)`` / ``count_query(mapping, source_table)``
  -> sqlglot trees; ``render(tree, "duckdb" | "postgres" | "spark")`` -> SQL text.
- ``Source.csv(path)``, ``Source.parquet(path)``, ``Source.sqlite(path, table)``,
  ``Source.postgres(url, table, schema="public")``; ``source_columns(source)``.
- ``count_groups(source, mapping, engine="duckdb") -> dict[SubjectFacts, int]``.
- ``run(plan, source, out_path, engine="duckdb" | "spark" | "postgres",
  fmt="parquet" | "csv", progress=None, *, overwrite=False) -> RunResult`` (rows per group,
  rows left out, path, SHA-256 hex and size of the file). Nothing to write: no file, and
  ``path`` / ``sha256`` are None.
- ``dry_run(plan, counts) -> DryRun``: per column and group, go or not and why; ``.to_json()``
  and ``render_dry_run(dry)`` (Rich).

The same output on every engine: the plan's output columns in mapping order, every value
as text (the engine's cast of the source value; CSV read as written), NULL where the row's
group may not have the column, rows of non-receiving groups left out, the remaining rows
in source order (file order; SQLite ``rowid``; PostgreSQL ``ctid``). Flags read fail closed
(:mod:`carewall.egress.mapping`). Errors never carry row values.
"""

from carewall.egress.compile import count_query, render, select_query
from carewall.egress.dryrun import DryRun, dry_run, render_dry_run
from carewall.egress.engines import RunResult, count_groups, run
from carewall.egress.mapping import EgressMapping, load_mapping
from carewall.egress.plan import ColumnVerdict, EgressPlan, GroupPlan, build_plan
from carewall.egress.reading import source_columns
from carewall.egress.sources import Source

__all__ = [
    "ColumnVerdict",
    "DryRun",
    "EgressMapping",
    "EgressPlan",
    "GroupPlan",
    "RunResult",
    "Source",
    "build_plan",
    "count_groups",
    "count_query",
    "dry_run",
    "load_mapping",
    "render",
    "render_dry_run",
    "run",
    "select_query",
    "source_columns",
]
