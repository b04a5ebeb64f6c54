"""The README's examples run as written against a platform set up like the demo (issue 12).

The examples are read from ``README.md`` itself, its ``sh`` and ``python`` code blocks in order, so this test
follows every edit of the README. Each shell command runs in bash with ``scope3`` on the ``PATH`` (this
checkout's CLI) against the test database, as in an operator's shell after the demo's ``export`` line; each
Python block runs with demo tenant acme's URL in ``SCOPE3_TENANT_DATABASE_URL``, as in a notebook on acme's
hub, its expressions shown as a notebook shows them.

The platform is the demo's: tenants acme and globex made from ``demo.DEMO_TENANTS`` through the library with
the demo's users and what ``scope3 demo`` puts on them (``demo.showcase``: ML estimates, a stored scenario, a
signed checkpoint), a broker and the ingest service. Where the demo runs its embedded broker this test runs
the session's ``broker`` (Mosquitto); the demo prints its broker's address and so does the README.

* ``SKIPPED``: commands that cannot run in a test, each with its reason;
* ``PLACEHOLDERS``: what the README asks the reader to fill in, replaced with earlier output; a command with
  ``--password-stdin`` reads a password (``helpers.PASSWORD``) on standard input, as the README says;
* a command commented ``# refused (exit N)`` must fail with exit code N and one line on stderr; every other
  command must succeed;
* ``CHECKS``: what the README says a command does, checked after it (a published reading is stored and
  listed, the rollup prices it, the offline audit says OK, ...).
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import stat
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from scope3lib import demo, tenancy
from scope3lib.cli.demo import DEMO_PASSWORD
from scope3lib.demo.showcase import Showcase, showcase
from scope3lib.meters.broker import MqttParams
from tests.helpers import PASSWORD, REPO, TenantFactory, count_readings, scope3_env, start_ingest_service, wait_until

pytestmark = [pytest.mark.db, pytest.mark.broker, pytest.mark.slow]

README = REPO / "README.md"
SHELL = ("sh", "bash", "shell")

#: Commands that cannot run in a test, by how they start, with the reason.
SKIPPED = {
    "make demo": "runs the platform in the foreground until Ctrl-C; this test sets up the same tenants with the "
                 "library, and tests/test_demo.py tests the demo",
    "make test": "runs the whole test suite, this test included",
    "scope3 hub start": "runs a tenant's JupyterHub in the foreground until Ctrl-C; tests/test_hub.py starts hubs",
}

#: What the README asks the reader to fill in, and what this test fills in.
PLACEHOLDERS = {
    "<password>": "the mqtt_password that the last `device add --json` printed",
    "ENTRY_ID": "the first id that `ledger entries` listed as signed",
    "OLD_SIZE": "the tree size of the checkpoint the demo signed when it made the tenant",
    "-h 127.0.0.1 -p 1883": "the address of the test's broker: the README says to use the one the demo printed",
}

_REFUSED = re.compile(r"#\s*refused \(exit (\d)\)")


@dataclass(frozen=True)
class Example:
    kind: str  # "sh" or "python"
    line: int  # where it starts in README.md
    code: str

    def __str__(self) -> str:
        return f"README.md:{self.line}: {self.code}"


def readme_examples(text: str) -> list[Example]:
    """The shell commands (continued lines joined) and the Python blocks of the README, in order."""
    examples = []
    for block in re.finditer(r"^```(\w*)\n(.*?)^```", text, re.M | re.S):
        kind, body = block.group(1), block.group(2)
        first = text.count("\n", 0, block.start(2)) + 1
        if kind == "python":
            examples.append(Example("python", first, body))
        elif kind in SHELL:
            lines = body.splitlines()
            i = 0
            while i < len(lines):
                start, command = i, lines[i]
                while command.endswith("\\") and i + 1 < len(lines):
                    i += 1
                    command = command[:-1].rstrip() + " " + lines[i].strip()
                i += 1
                if command.strip() and not command.lstrip().startswith("#"):
                    examples.append(Example("sh", first + start, command.strip()))
    return examples


# --- what the test fills in and checks --------------------------------------------------------------


@dataclass
class Run:
    """What the examples printed so far, for the placeholders and checks."""

    engine: Engine
    demo_checkpoints: dict[str, int]
    values: dict[str, str] = field(default_factory=dict)
    published: dict[str, float] = field(default_factory=dict)  # device key -> kWh published to it
    checked: set[str] = field(default_factory=set)

    def fill(self, command: str) -> str:
        for placeholder in PLACEHOLDERS:
            if placeholder in command:
                if placeholder not in self.values:
                    raise AssertionError(f"nothing printed before this command gives {placeholder} "
                                         f"({PLACEHOLDERS[placeholder]}): {command}")
                command = command.replace(placeholder, self.values[placeholder])
        return command


def _json(out: str) -> dict[str, object]:
    data = json.loads(out)
    assert isinstance(data, dict), out
    return data


def _tenant_created(run: Run, words: list[str], out: str) -> None:
    # The README: `tenant create --json` prints slug, database_url and database_url_readonly.
    if "--json" in words:
        assert {"slug", "database_url", "database_url_readonly"} <= _json(out).keys(), out


def _device_added(run: Run, words: list[str], out: str) -> None:
    # The README: `device add --json` prints the device's topic, mqtt_username and mqtt_password.
    data = _json(out)
    assert {"topic", "mqtt_username", "mqtt_password"} <= data.keys(), out
    run.values["<password>"] = str(data["mqtt_password"])


def _published(run: Run, words: list[str], out: str) -> None:
    topic, payload = words[words.index("-t") + 1], json.loads(words[words.index("-m") + 1])
    device = topic.split("/")[2]  # scope3/<tenant>/<device>/readings
    run.published[device] = run.published.get(device, 0.0) + float(payload["kwh"])
    wait_until(lambda: count_readings(run.engine, device) >= 1, what=f"the reading of {device} to be stored")


def _devices_listed(run: Run, words: list[str], out: str) -> None:
    for device in run.published:
        line = next((li for li in out.splitlines() if li.split()[:1] == [device]), None)
        assert line is not None, f"`device list` does not list {device}:\n{out}"
        assert f"readings={count_readings(run.engine, device)}" in line and "readings=0" not in line, line


def _rolled_up(run: Run, words: list[str], out: str) -> None:
    assert "kWh ->" in out, out
    with run.engine.connect() as c:
        for device, kwh in run.published.items():
            rows = c.execute(sa.text(
                "SELECT e.activity_quantity, e.kg_co2e FROM emission_entries e JOIN devices d ON d.id = e.device_id "
                "WHERE d.device_key = :k AND e.data_source = 'iot'"), {"k": device}).all()
            assert sum(float(r.activity_quantity) for r in rows) == pytest.approx(kwh), (device, rows)
            assert all(r.kg_co2e > 0 for r in rows), (device, rows)


def _simulated(run: Run, words: list[str], out: str) -> None:
    assert re.match(r"published [1-9]\d* readings", out), out


def _entries_listed(run: Run, words: list[str], out: str) -> None:
    slug = words[words.index("entries") + 1]
    signed = [li.split()[0] for li in out.splitlines() if " signed " in li]
    assert signed, f"`ledger entries` lists no signed entry:\n{out}"
    run.values["ENTRY_ID"] = signed[0]
    run.values["OLD_SIZE"] = str(run.demo_checkpoints[slug])


def _audited(run: Run, words: list[str], out: str) -> None:
    assert out.startswith("OK: "), out


#: What the README says a command does, checked after it ran: by how the command starts.
CHECKS: dict[str, Callable[[Run, list[str], str], None]] = {
    "scope3 tenant create": _tenant_created,
    "scope3 device add": _device_added,
    "mosquitto_pub": _published,
    "scope3 device list": _devices_listed,
    "scope3 meters rollup": _rolled_up,
    "scope3 meters simulate": _simulated,
    "scope3 ledger entries": _entries_listed,
    "scope3 ledger audit": _audited,
    "scope3 ledger audit-consistency": _audited,
}
#: Checks the README's examples must reach: a reading published as shown lands, is listed and is priced.
REQUIRED = {"mosquitto_pub", "scope3 device list", "scope3 meters rollup", "scope3 ledger audit"}


def _check(run: Run, command: str, out: str) -> None:
    words = shlex.split(command, comments=True)
    if "--json" in words:
        json.loads(out)
    for start, check in CHECKS.items():
        if command.startswith(start + " "):
            check(run, words, out)
            run.checked.add(start)


# --- the platform ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def demo_platform(engine: Engine, data_dir: Path, make_module_tenant: TenantFactory) -> dict[str, Showcase]:
    """The demo's tenants as `scope3 demo` provisions them; returns what it showed on each."""
    shown = {}
    for p in demo.DEMO_TENANTS:
        make_module_tenant(p.slug, name=p.name, plan=p.plan, demo_profile=p, password=DEMO_PASSWORD,
                           users={f"{p.slug}-analyst": "member", f"{p.slug}-exec": "viewer"})
        shown[p.slug] = showcase(engine, data_dir, p.slug)
    return shown


@pytest.fixture
def shell_env(database_url: str, data_dir: Path, broker: MqttParams, tmp_path: Path) -> dict[str, str]:
    """An operator's shell after the demo's `export` line, with `scope3` (this checkout's) on the PATH."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    wrapper = bin_dir / "scope3"
    wrapper.write_text(f'#!/bin/sh\nexec {shlex.quote(sys.executable)} -m scope3lib "$@"\n')
    wrapper.chmod(wrapper.stat().st_mode | stat.S_IXUSR)
    path = os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    return scope3_env(database_url, data_dir, PATH=f"{bin_dir}{os.pathsep}{os.environ['PATH']}", PYTHONPATH=path,
                      SCOPE3_MQTT_URL=broker.url())


@pytest.fixture
def ingest(ingest_url: str, broker: MqttParams) -> Iterator[None]:
    svc = start_ingest_service(ingest_url, broker, prefix="readme-ingest", batch_ms=50)
    try:
        yield
    finally:
        svc.stop(timeout=10)


# Runs a Python block statement by statement, as a notebook cell would: expressions are shown.
_NOTEBOOK = """\
import ast, sys
source = sys.stdin.read()
for node in ast.parse(source).body:
    exec(compile(ast.Interactive(body=[node]), "README.md", "single"), globals())
"""


def test_readme_examples_run_as_written(demo_platform: dict[str, Showcase], engine: Engine, data_dir: Path,
                                        broker: MqttParams, shell_env: dict[str, str], ingest: None,
                                        tmp_path: Path) -> None:
    examples = readme_examples(README.read_text())
    assert shutil.which("mosquitto_pub"), "the README publishes with mosquitto_pub: apt-get install mosquitto-clients"
    assert any(e.kind == "sh" for e in examples) and any(e.kind == "python" for e in examples)
    work = tmp_path / "work"
    work.mkdir()
    run = Run(engine, {slug: s.checkpoint_size for slug, s in demo_platform.items()})
    run.values["-h 127.0.0.1 -p 1883"] = f"-h {broker.host} -p {broker.port}"
    # The README's notebook runs on acme's hub, which gives it acme's read-write URL.
    tenant_url = tenancy.tenant_credentials(data_dir, demo.DEMO_TENANTS[0].slug).database_url
    skipped, ran = [], []
    started = time.monotonic()
    for example in examples:
        if example.kind == "python":
            proc = subprocess.run([sys.executable, "-c", _NOTEBOOK], input=example.code, cwd=work,
                                  env={**shell_env, "SCOPE3_TENANT_DATABASE_URL": tenant_url},
                                  capture_output=True, text=True, timeout=300)
            assert proc.returncode == 0, f"{example}\n{proc.stderr}"
            assert proc.stdout.strip(), f"{example}\nshowed nothing"
            ran.append(example)
            continue
        reason = next((r for start, r in SKIPPED.items() if example.code.startswith(start)), None)
        if reason is not None:
            skipped.append((example, reason))
            continue
        command = run.fill(example.code)
        stdin = PASSWORD + "\n" if "--password-stdin" in command else None
        proc = subprocess.run(["bash", "-c", command], input=stdin, cwd=work, env=shell_env, capture_output=True,
                              text=True, timeout=300)
        refused = _REFUSED.search(command)
        if refused:
            assert proc.returncode == int(refused.group(1)), f"{example}\nexit {proc.returncode}: {proc.stderr}"
            lines = proc.stderr.strip().splitlines()
            assert len(lines) == 1 and lines[0].startswith("error: "), f"{example}\n{proc.stderr}"
        else:
            assert proc.returncode == 0, f"{example}\nexit {proc.returncode}: {proc.stderr}{proc.stdout}"
            _check(run, command, proc.stdout)
        ran.append(example)
    print(f"ran {len(ran)} README examples in {time.monotonic() - started:.1f} s; skipped:")
    for example, reason in skipped:
        print(f"  {example}: {reason}")
    unused = [start for start in SKIPPED if not any(e.code.startswith(start) for e, _ in skipped)]
    assert not unused, f"skip rules that no README example matches any more (remove them): {unused}"
    assert run.checked >= REQUIRED, f"the README no longer shows {sorted(REQUIRED - run.checked)}"
