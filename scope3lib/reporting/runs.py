"""Scheduled reports: papermill runs of report notebooks, per tenant, recorded in the database.

``reports/schedules.yaml`` declares each report: its notebook, a cron expression (UTC), the tenants
it runs for, parameters, output formats, retries and how many outputs to keep. Parameters are
checked against the notebook's ``parameters`` cell before anything runs. A run executes with the
tenant's own database role, writes the executed notebook and an HTML report without code under
``reports/output/<tenant>/<report>/``, and is recorded in ``report_runs`` (start, end, status, the
failing cell and error, output paths). A failed run is retried, then recorded as failed: never a
silent success.
"""

from __future__ import annotations

import ast
import datetime as dt
import json
import logging
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import sqlalchemy as sa
import yaml
from croniter import croniter
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from sqlalchemy.engine import Engine

from .. import paths
from ..errors import ConfigurationError, Scope3Error

log = logging.getLogger(__name__)



class ReportError(Scope3Error):
    """A report cannot run as asked (unknown report, bad parameters, missing notebook)."""


class InvalidParameter(ReportError):
    exit_code = 2


class ReportSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    notebook: str = Field(description="Path of the notebook, relative to the repository.")
    schedule: str = Field(description="Cron expression, UTC (e.g. '0 6 1 * *': 06:00 on the 1st).")
    tenants: Literal["all"] | list[str] = "all"
    parameters: dict[str, Any] = Field(default_factory=dict)
    formats: list[Literal["html", "ipynb"]] = Field(default_factory=lambda: ["html", "ipynb"])  # type: ignore[arg-type]
    retries: int = Field(1, ge=0, le=10, description="Extra attempts after a failure.")
    keep: int = Field(12, ge=1, le=1000, description="Outputs kept per tenant; older ones are deleted.")
    timeout_s: int = Field(1800, ge=10, description="Longest a cell may run.")

    @field_validator("schedule")
    @classmethod
    def _cron(cls, value: str) -> str:
        if not croniter.is_valid(value):
            raise ValueError(f"{value!r} is not a cron expression")
        return value

    def applies_to(self, tenant: str) -> bool:
        return self.tenants == "all" or tenant in self.tenants

    def notebook_path(self) -> Path:
        path = Path(self.notebook)
        return path if path.is_absolute() else paths.share_dir() / path


class Schedules(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    reports: dict[str, ReportSpec]


def load_schedules(path: Path | None = None) -> dict[str, ReportSpec]:
    """The reports declared in ``path`` (default: the platform's ``reports/schedules.yaml``)."""
    path = path or paths.schedules_file()
    try:
        raw = yaml.safe_load(path.read_text())
        return Schedules.model_validate(raw).reports
    except FileNotFoundError:
        raise ConfigurationError(f"report schedules not found: {path}") from None
    except yaml.YAMLError as exc:
        raise ConfigurationError(f"{path}: not valid YAML: {exc}") from None
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())
        raise ConfigurationError(f"{path}: {problems}") from None


def get_spec(name: str, path: Path | None = None) -> ReportSpec:
    path = path or paths.schedules_file()
    specs = load_schedules(path)
    if name not in specs:
        raise ReportError(f"unknown report {name!r}: {path} declares {', '.join(sorted(specs)) or 'none'}")
    return specs[name]


# --- parameters --------------------------------------------------------------------------------

_TYPES: dict[str, type | tuple[type, ...]] = {
    "int": int, "float": (int, float), "str": str, "bool": bool, "list": list, "dict": dict,
}


def notebook_parameters(notebook: Path) -> dict[str, dict[str, Any]]:
    """The notebook's ``parameters`` cell: name -> {inferred_type_name, default}."""
    import papermill

    if not notebook.exists():
        raise ReportError(f"report notebook not found: {notebook}")
    params = papermill.inspect_notebook(str(notebook))
    if not params:
        raise ReportError(f"{notebook} has no cell tagged 'parameters'")
    return {k: dict(v) for k, v in params.items()}


def _coerce(name: str, value: Any, type_name: str) -> Any:
    expected = _TYPES.get(type_name)
    if expected is None or (isinstance(value, expected) and not (type_name != "bool" and isinstance(value, bool))):
        return value
    if isinstance(value, str):  # from the command line
        try:
            parsed = yaml.safe_load(value)
        except yaml.YAMLError:
            parsed = value
        if type_name == "str":
            return value
        if isinstance(parsed, expected) and not (type_name != "bool" and isinstance(parsed, bool)):
            return float(parsed) if type_name == "float" else parsed  # type: ignore[arg-type]
    raise InvalidParameter(f"parameter {name!r} must be {type_name}, got {value!r}")


def validate_parameters(notebook: Path, given: dict[str, Any]) -> dict[str, Any]:
    """Check ``given`` against the notebook's parameters cell; return them with the notebook's types."""
    declared = notebook_parameters(notebook)
    unknown = sorted(set(given) - set(declared))
    if unknown:
        raise InvalidParameter(
            f"unknown parameter(s) {', '.join(unknown)} for {notebook.name}; it takes {', '.join(sorted(declared))}"
        )
    return {k: _coerce(k, v, _declared_type(declared[k])) for k, v in given.items()}


def _declared_type(param: dict[str, Any]) -> str:
    """The parameter's type: its annotation, else the type of its default value (``months = 12``: int)."""
    annotated = str(param.get("inferred_type_name", "None"))
    if annotated != "None":
        return annotated
    try:
        default = ast.literal_eval(str(param.get("default")))
    except (ValueError, SyntaxError):
        return "None"
    return "None" if default is None else type(default).__name__


# --- running -----------------------------------------------------------------------------------


@dataclass
class RunResult:
    id: int
    status: str
    attempt: int
    output_ipynb: Path | None = None
    output_html: Path | None = None
    error: str | None = None
    failed_cell: int | None = None
    seconds: float = 0.0
    attempts: list[int] = field(default_factory=list)


@contextmanager
def _tenant_environment(database_url: str, tenant: str, data_dir: Path) -> Iterator[None]:
    """The kernel inherits this process's environment: give it the tenant's URL and nothing of ours.

    ``SCOPE3_DATA_DIR`` is passed on because the tenant's trained models live under it
    (``DATA_DIR/tenants/<tenant>/models``, read and written by the nightly estimates report). It is a path,
    not a credential: the scheduler service that starts the kernel runs with exactly these three variables.
    """
    saved = dict(os.environ)
    try:
        for key in [k for k in os.environ if k.startswith("SCOPE3_") or k.startswith("JUPYTERHUB_")]:
            del os.environ[key]
        os.environ["SCOPE3_TENANT_DATABASE_URL"] = database_url
        os.environ["SCOPE3_TENANT"] = tenant
        os.environ["SCOPE3_DATA_DIR"] = str(data_dir)
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def _record_start(engine: Engine, report: str, trigger: str, scheduled_for: dt.datetime | None, attempt: int,
                  params: dict[str, Any]) -> int:
    with engine.begin() as conn:
        return int(conn.scalar(sa.text(
            "INSERT INTO report_runs (tenant_id, report, trigger, scheduled_for, attempt, parameters, status) "
            "VALUES ((SELECT tenant_of(current_user)), :r, :t, :s, :a, CAST(:p AS jsonb), 'running') RETURNING id"),
            {"r": report, "t": trigger, "s": scheduled_for, "a": attempt, "p": json.dumps(params, default=str)}))


def _record_end(engine: Engine, run_id: int, status: str, *, error: str | None = None, failed_cell: int | None = None,
                ipynb: Path | None = None, html: Path | None = None) -> None:
    with engine.begin() as conn:
        conn.execute(sa.text(
            "UPDATE report_runs SET status = :st, finished_at = now(), error = :e, failed_cell = :c, "
            "output_ipynb = :i, output_html = :h WHERE id = :id"),
            {"st": status, "e": error, "c": failed_cell, "i": str(ipynb) if ipynb else None,
             "h": str(html) if html else None, "id": run_id})


def _to_html(ipynb: Path, html: Path, title: str) -> None:
    """The executed notebook as an HTML page without code, titled ``title``, drawing its figures with the one
    copy of plotly.js kept beside the tenant's reports (:func:`_plotly_js`)."""
    import nbformat
    from nbconvert import HTMLExporter

    exporter = HTMLExporter(exclude_input=True, exclude_input_prompt=True, exclude_output_prompt=True)
    body, _ = exporter.from_notebook_node(nbformat.read(str(ipynb), as_version=4),
                                          resources={"metadata": {"name": title}})
    script = f'<script src="../{_plotly_js(html.parent.parent).name}"></script>'
    html.write_text(body.replace("</head>", f"{script}\n</head>", 1), encoding="utf-8")


def _plotly_js(directory: Path) -> Path:
    """plotly.js of the installed plotly, copied once into ``directory`` (the tenant's reports folder) and shared
    by every report there: embedded in each, it made every report 5 MB."""
    import plotly

    target = directory / f"plotly-{plotly.__version__}.min.js"
    if not target.exists():
        source = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"
        tmp = target.with_suffix(".tmp")
        tmp.write_bytes(source.read_bytes())
        os.replace(tmp, target)
    return target


def _prune(directory: Path, keep: int) -> None:
    """Keep the ``keep`` newest runs' outputs (a run's files share the stem)."""
    stems = sorted({p.stem for p in directory.glob("*.ipynb")} | {p.stem for p in directory.glob("*.html")})
    for stem in stems[:-keep]:
        for p in directory.glob(f"{stem}.*"):
            p.unlink(missing_ok=True)


def _source_cell_index(executed: Path, index: int) -> int:
    """The failing cell's index in the report's own notebook (papermill inserts a parameters cell)."""
    import nbformat

    try:
        cells = nbformat.read(str(executed), as_version=4).cells
    except (OSError, ValueError):
        return index
    # ``index`` counts the cells papermill ran; the error banners it adds to the saved notebook afterwards
    # are not among them.
    cells = [c for c in cells if "papermill-error-cell-tag" not in c.get("metadata", {}).get("tags", [])]
    injected = [i for i, c in enumerate(cells) if "injected-parameters" in c.get("metadata", {}).get("tags", [])]
    return index - 1 if injected and index > injected[0] else index


@dataclass(frozen=True)
class _Run:
    """What every attempt of one run shares."""

    engine: Engine
    database_url: str
    tenant: str
    name: str
    spec: ReportSpec
    notebook: Path
    params: dict[str, Any]
    out_dir: Path
    data_dir: Path
    trigger: str
    scheduled_for: dt.datetime | None


def run_report(engine: Engine, database_url: str, tenant: str, name: str, spec: ReportSpec,
               parameters: dict[str, Any] | None = None, *, output_root: Path | None = None,
               trigger: str = "manual", scheduled_for: dt.datetime | None = None,
               data_dir: Path | None = None) -> RunResult:
    """Run report ``name`` for ``tenant`` now, with retries; every attempt is recorded.

    ``engine`` and ``database_url`` are the tenant's read-write role: the notebook runs with it and
    the run is recorded with it (row-level security keeps both inside the tenant). ``data_dir`` is the
    platform's data directory the kernel gets as ``SCOPE3_DATA_DIR`` (default: this process's setting).
    Outputs go to ``<output_root>/<tenant>/<name>/``, by default the tenant's own
    ``DATA_DIR/tenants/<tenant>/reports/<name>/`` (closed to other tenants' system users).
    """
    from ..config import Settings

    notebook = spec.notebook_path()
    params = validate_parameters(notebook, {**spec.parameters, **(parameters or {})})
    data_dir = Settings().data_dir if data_dir is None else data_dir
    out_dir = output_dir(data_dir, tenant) / name if output_root is None else output_root / tenant / name
    run = _Run(engine=engine, database_url=database_url, tenant=tenant, name=name, spec=spec, notebook=notebook,
               params=params, out_dir=out_dir, data_dir=data_dir, trigger=trigger, scheduled_for=scheduled_for)
    run.out_dir.mkdir(parents=True, exist_ok=True)
    results: list[RunResult] = []
    for attempt in range(1, spec.retries + 2):
        results.append(_attempt(run, attempt))
        if results[-1].status == "succeeded":
            break
    result = results[-1]
    result.attempts = [r.id for r in results]
    _prune(run.out_dir, spec.keep)
    return result


def _attempt(run: _Run, attempt: int) -> RunResult:
    """One attempt, recorded from its start; a failure is recorded and returned, never raised."""
    from papermill.exceptions import PapermillExecutionError

    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S%fZ")
    ipynb, html = run.out_dir / f"{stamp}.ipynb", run.out_dir / f"{stamp}.html"
    run_id = _record_start(run.engine, run.name, run.trigger, run.scheduled_for, attempt, run.params)
    started = time.monotonic()
    try:
        kept_ipynb, kept_html = _execute(run, ipynb, html)
        _record_end(run.engine, run_id, "succeeded", ipynb=kept_ipynb, html=kept_html)
        return RunResult(run_id, "succeeded", attempt, kept_ipynb, kept_html, seconds=time.monotonic() - started)
    except PapermillExecutionError as exc:
        error = f"{exc.ename}: {exc.evalue}"
        cell = _source_cell_index(ipynb, exc.cell_index)
        # papermill writes the partly executed notebook: keep it, it shows where it stopped.
        _record_end(run.engine, run_id, "failed", error=error, failed_cell=cell,
                    ipynb=ipynb if ipynb.exists() else None)
        result = RunResult(run_id, "failed", attempt, ipynb if ipynb.exists() else None, None, error,
                           cell, time.monotonic() - started)
        log.warning("report %s for %s failed in cell %s (attempt %d): %s", run.name, run.tenant, cell, attempt, error)
        return result
    except Exception as exc:  # kernel died, timeout, disk full: a failed run, recorded as such
        error = f"{type(exc).__name__}: {exc}"
        _record_end(run.engine, run_id, "failed", error=error)
        result = RunResult(run_id, "failed", attempt, None, None, error, None, time.monotonic() - started)
        log.warning("report %s for %s failed (attempt %d): %s", run.name, run.tenant, attempt, error)
        return result


def _execute(run: _Run, ipynb: Path, html: Path) -> tuple[Path | None, Path | None]:
    """Run the notebook into ``ipynb``, convert it to ``html``; the outputs the spec's formats keep."""
    import papermill

    with _tenant_environment(run.database_url, run.tenant, run.data_dir):
        papermill.execute_notebook(str(run.notebook), str(ipynb), parameters=run.params, kernel_name="python3",
                                   cwd=str(run.notebook.parent), progress_bar=False, log_output=False,
                                   execution_timeout=run.spec.timeout_s, kernel_manager_class=_local_kernels())
    if "html" in run.spec.formats:
        title = f"{run.name.replace('_', ' ').capitalize()} report, {run.tenant}, {dt.date.today():%d %B %Y}"
        _to_html(ipynb, html, title)
    if "ipynb" not in run.spec.formats:
        ipynb.unlink(missing_ok=True)
    return (ipynb if ipynb.exists() else None), (html if html.exists() else None)


def _local_kernels() -> type:
    """A kernel manager whose kernels talk over Unix sockets in a private directory instead of TCP ports on
    localhost, which any local user can reach (and ipykernel warns about on every report)."""
    import tempfile

    from jupyter_client.manager import AsyncKernelManager
    from traitlets import Unicode, default

    class LocalSocketKernelManager(AsyncKernelManager):
        transport = Unicode("ipc")

        @default("ip")
        def _private_socket_path(self) -> str:
            return str(Path(tempfile.mkdtemp(prefix="scope3-kernel-")) / "kernel")

    return LocalSocketKernelManager


def output_dir(data_dir: Path, tenant: str) -> Path:
    """Where a tenant's report outputs go by default: its own folder of the data directory."""
    return data_dir / "tenants" / tenant / "reports"


def history(engine: Engine, limit: int = 50) -> list[dict[str, Any]]:
    """The tenant's latest runs (tenant engine: row-level security limits them to the tenant)."""
    with engine.connect() as conn:
        rows = conn.execute(sa.text(
            "SELECT id, report, trigger, scheduled_for, attempt, status, started_at, finished_at, "
            "failed_cell, error, output_html, output_ipynb, parameters FROM report_runs "
            "ORDER BY started_at DESC, id DESC LIMIT :n"), {"n": limit}).mappings().all()
    return [dict(r) for r in rows]


# --- the scheduler -----------------------------------------------------------------------------


class Scheduler:
    """Runs a tenant's due reports. ``tick(now)`` runs what fell due since the last tick, and, every
    ``rollup_every_s`` seconds (0: never), the daily meter rollup of the last two days, so meter readings become
    emission entries by themselves."""

    def __init__(self, engine: Engine, database_url: str, tenant: str, *, schedules: Path | None = None,
                 output_root: Path | None = None, start: dt.datetime | None = None, rollup_every_s: float = 0) -> None:
        self.engine, self.database_url, self.tenant = engine, database_url, tenant
        self.schedules, self.output_root = schedules, output_root
        self.last = start or dt.datetime.now(dt.UTC)
        self.rollup_every_s = rollup_every_s
        self.last_rollup: dt.datetime | None = None

    def rollup(self, now: dt.datetime) -> None:
        """The meter rollup when due; yesterday too, so the readings of the day's last minutes are not left out."""
        if not self.rollup_every_s or (self.last_rollup and (now - self.last_rollup).total_seconds()
                                       < self.rollup_every_s):
            return
        from ..meters.rollup import rollup_daily

        self.last_rollup = now
        result = rollup_daily(self.engine, self.tenant, since=now.date() - dt.timedelta(days=1))
        if result.inserted or result.updated:
            log.info("rollup for %s: %d days added, %d updated; %.1f kWh -> %.1f kg CO2e", self.tenant,
                     result.inserted, result.updated, result.kwh, result.kg_co2e)
        for missing in result.missing_factors:
            log.warning("rollup for %s: no grid factor for %s", self.tenant, missing)

    def due(self, spec: ReportSpec, now: dt.datetime) -> list[dt.datetime]:
        """Scheduled times in (last, now]; only the latest one is run (no backlog storm after downtime)."""
        it = croniter(spec.schedule, self.last)
        times = []
        while (t := it.get_next(dt.datetime)) <= now:
            times.append(t)
        return times[-1:]

    def tick(self, now: dt.datetime | None = None) -> list[RunResult]:
        now = now or dt.datetime.now(dt.UTC)
        self.rollup(now)
        results = []
        for name, spec in load_schedules(self.schedules).items():
            if not spec.applies_to(self.tenant):
                continue
            for when in self.due(spec, now):
                log.info("running %s for %s (scheduled %s)", name, self.tenant, when.isoformat())
                results.append(run_report(self.engine, self.database_url, self.tenant, name, spec,
                                          output_root=self.output_root, trigger="schedule", scheduled_for=when))
        self.last = now
        return results

    def run_forever(self, interval_s: float = 20.0) -> None:
        while True:
            try:
                self.tick()
            except Scope3Error as exc:  # a bad schedules file: say so and keep the service alive
                log.error("scheduler: %s", exc)
            except sa.exc.DBAPIError as exc:  # the database is away: the next tick tries again
                log.error("scheduler: database error: %s", str(exc.orig).splitlines()[0] if exc.orig else exc)
            time.sleep(interval_s)
