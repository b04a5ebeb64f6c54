"""The MQTT broker: connection settings, Mosquitto's production configuration and its accounts, and the
embedded amqtt broker used when none is configured.

Mosquitto is the production broker (docs/design.md, decision 5). ``scope3 broker config`` writes its
``mosquitto.conf`` and, from the database, its password file and ACL: every device has its own account
that may only publish under ``scope3/<tenant>/<device>/#``, the ingest service has one that may only read
``scope3/+/+/readings``, and nobody connects anonymously. Provisioning rewrites both files and reloads the
broker (SIGHUP to the pid in the configuration's ``pid_file``) whenever a device is added, re-keyed or
removed; Mosquitto 2.0 re-reads them on SIGHUP and disconnects clients whose account is gone.

When ``SCOPE3_MQTT_URL`` is unset, the platform runs amqtt in-process so the demo needs nothing
installed; amqtt speaks MQTT 3.1.1 only, moves a few thousand messages a second and accepts anyone:
enough for a demo on one machine, never for production.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import os
import secrets
import signal
import socket
import threading
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, quote, unquote, urlsplit

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from ..config import Settings
from ..errors import BrokerUnavailable, ConfigurationError
from ..models import BrokerAccount, Device, Tenant
from .contract import READINGS_FILTER, device_topic_pattern
from .credentials import mosquitto_hash, mqtt_username

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class MqttParams:
    host: str
    port: int
    username: str | None = None
    password: str | None = None
    # 5 for Mosquitto (shared subscriptions, receive maximum); 4 (3.1.1) for amqtt.
    protocol: int = 5

    def url(self) -> str:
        auth = f"{quote(self.username, safe='')}:{quote(self.password or '', safe='')}@" if self.username else ""
        return f"mqtt://{auth}{self.host}:{self.port}?protocol={self.protocol}"

    def with_credentials(self, username: str, password: str) -> MqttParams:
        return MqttParams(self.host, self.port, username, password, self.protocol)


def parse_mqtt_url(url: str) -> MqttParams:
    """``mqtt://[user:password@]host[:port][?protocol=5|3.1.1]``."""
    parts = urlsplit(url)
    if parts.scheme not in ("mqtt", "tcp"):
        raise ConfigurationError(f"MQTT URL must start with mqtt://, got {url!r}")
    if not parts.hostname:
        raise ConfigurationError(f"MQTT URL {url!r} names no host")
    query = parse_qs(parts.query)
    proto = query.get("protocol", ["5"])[0]
    if proto not in ("5", "3.1.1", "4"):
        raise ConfigurationError(f"MQTT protocol must be 5 or 3.1.1, got {proto!r}")
    return MqttParams(
        host=parts.hostname,
        port=parts.port or 1883,
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password else None,
        protocol=5 if proto == "5" else 4,
    )


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def port_open(host: str, port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex((host, port)) == 0


class EmbeddedBroker:
    """amqtt running on its own event loop in a daemon thread."""

    def __init__(self, host: str = "127.0.0.1", port: int | None = None) -> None:
        self.host = host
        self.port = port or free_port(host)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="amqtt-broker", daemon=True)
        self._broker: object | None = None

    @property
    def params(self) -> MqttParams:
        return MqttParams(host=self.host, port=self.port, protocol=4)

    def start(self) -> EmbeddedBroker:
        from amqtt.broker import Broker

        config = {
            "listeners": {"default": {"type": "tcp", "bind": f"{self.host}:{self.port}"}},
            "plugins": {"amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True}},
        }

        async def _start() -> object:
            broker = Broker(config)
            await broker.start()
            return broker

        self._thread.start()
        try:
            self._broker = asyncio.run_coroutine_threadsafe(_start(), self._loop).result(timeout=20)
        except Exception as exc:
            raise BrokerUnavailable(f"could not start the embedded MQTT broker on port {self.port}: {exc}") from exc
        log.warning(
            "embedded amqtt broker on %s:%s ACCEPTS ANONYMOUS CLIENTS: any process that reaches this port can "
            "publish readings for any device. Demo use only; in production run Mosquitto with the "
            "configuration from `scope3 broker config` and set SCOPE3_MQTT_URL.", self.host, self.port)
        return self

    def stop(self) -> None:
        if self._broker is not None:
            broker = self._broker
            try:
                asyncio.run_coroutine_threadsafe(broker.shutdown(), self._loop).result(timeout=10)  # type: ignore[attr-defined]
            except Exception:  # shutting down anyway
                log.warning("embedded broker did not shut down cleanly", exc_info=True)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)


# --- Mosquitto: production configuration and accounts -------------------------------------------

INGEST_ACCOUNT = "scope3-ingest"
# The shared-subscription group the ingest workers join ($share/<group>/scope3/+/+/readings).
INGEST_SHARE_GROUP = "ingest"

# Bytes of QoS 1 messages Mosquitto keeps per client beyond those in flight. With
# max_queued_messages 0 this is the only bound, and a message arriving beyond it IS DROPPED, so it
# must hold every message that can pile up while the ingest is down: 1 GiB is ~10 million readings
# of ~100 bytes, about 3 hours at 1,000 readings/s.
DEFAULT_MAX_QUEUED_BYTES = 1 << 30
# Unacknowledged messages Mosquitto sends one client: above the ingest batch (2,000 by default, the
# writer acknowledges only after commit and keeps a second batch filling) and far below paho's 65535
# message ids.
DEFAULT_MAX_INFLIGHT = 10_000
# Larger than the ingest's 1 MiB payload limit, so an oversized message reaches the ingest and is
# kept in rejects with its reason instead of being dropped silently by the broker.
DEFAULT_MAX_PACKET_SIZE = 4 << 20


def mosquitto_config(
    directory: Path,
    *,
    host: str = "127.0.0.1",
    port: int = 1883,
    tls_port: int | None = None,
    user: str | None = None,
    max_queued_bytes: int = DEFAULT_MAX_QUEUED_BYTES,
    max_inflight_messages: int = DEFAULT_MAX_INFLIGHT,
    autosave_interval_s: int = 60,
    log_dest: str = "stderr",
) -> str:
    """A complete ``mosquitto.conf`` for production (Mosquitto 2.0), with its files under ``directory``.

    ``tls_port`` adds a TLS listener whose certificate lines are written commented out, to be filled in.
    """
    d = directory.resolve()
    return "\n".join([
        _mosquitto_header(d),
        _mosquitto_security(d, user),
        _mosquitto_listeners(host, port, tls_port),
        _mosquitto_persistence(d, autosave_interval_s),
        _mosquitto_queues(max_queued_bytes, max_inflight_messages),
        _mosquitto_logging(log_dest),
    ])


# Each section of mosquitto.conf ends with a newline; mosquitto_config puts a blank line between them.


def _mosquitto_header(d: Path) -> str:
    return f"""\
# Mosquitto configuration for the scope3 platform, written by `scope3 broker config` on
# {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC. Start it with: mosquitto -c {d / "mosquitto.conf"}
# Requires Mosquitto 2.0 or later (PBKDF2-SHA512 "$7$" password hashes, SIGHUP reload).
"""


def _mosquitto_security(d: Path, user: str | None) -> str:
    run_as = (f"user {user}" if user else
              "# user mosquitto   (the account Mosquitto drops to when started as root; it must read the files above)")
    return f"""\
# --- Security ----------------------------------------------------------------------------------
# Nobody connects without an account. password_file and acl_file are written from the platform
# database by provisioning (`scope3 device add|rotate|remove`, `scope3 broker sync`), which then
# sends SIGHUP to the pid in pid_file: Mosquitto re-reads both and disconnects revoked accounts.
per_listener_settings false
allow_anonymous false
password_file {d / "passwd"}
acl_file {d / "acl"}
pid_file {d / "mosquitto.pid"}
{run_as}
"""


def _mosquitto_listeners(host: str, port: int, tls_port: int | None) -> str:
    tls = (
        f"""listener {tls_port}
# Meters on other networks connect here. Fill in the server certificate and key (PEM); with
# require_certificate true a meter must also present a client certificate signed by cafile.
#certfile /etc/mosquitto/certs/server.crt
#keyfile /etc/mosquitto/certs/server.key
#cafile /etc/mosquitto/certs/ca.crt
#require_certificate false
tls_version tlsv1.2
"""
        if tls_port
        else f"""# TLS: meters outside this host must connect over TLS. Add a listener such as
#   listener 8883
#   certfile /etc/mosquitto/certs/server.crt   (server certificate chain, PEM)
#   keyfile /etc/mosquitto/certs/server.key    (its private key, readable by the broker only)
#   cafile /etc/mosquitto/certs/ca.crt         (CA of client certificates, with require_certificate true)
#   require_certificate false
#   tls_version tlsv1.2
# or write it with `scope3 broker config --tls-port 8883`. Passwords cross the network in clear
# on a plain listener, so keep {host}:{port} on loopback or a private network.
"""
    )
    return f"""\
# --- Listeners ---------------------------------------------------------------------------------
listener {port} {host}
{tls}"""


def _mosquitto_persistence(d: Path, autosave_interval_s: int) -> str:
    return f"""\
# --- Persistence: queued and in-flight QoS 1 messages survive a broker restart ------------------
persistence true
persistence_location {d / "data"}/
# Seconds between saves of the in-memory state; a crash (not a clean stop) loses what arrived since.
autosave_interval {autosave_interval_s}
"""


def _mosquitto_queues(max_queued_bytes: int, max_inflight_messages: int) -> str:
    return f"""\
# --- Queues: never drop a QoS 1 reading ---------------------------------------------------------
# The default max_queued_messages (1000) silently drops QoS 1 messages for a subscriber that falls
# behind. 0 removes the count limit; memory is bounded by bytes instead. A message beyond
# max_queued_bytes is dropped, so size it for the longest ingest outage to survive.
max_queued_messages 0
max_queued_bytes {max_queued_bytes}
# Unacknowledged messages sent to one client. The ingest acknowledges a batch only after its COPY is
# committed, so this must exceed its batch size (SCOPE3_INGEST_BATCH_SIZE) and stay below 65535.
max_inflight_messages {max_inflight_messages}
max_packet_size {DEFAULT_MAX_PACKET_SIZE}
# Send small packets (acknowledgements, single readings) at once instead of waiting to fill a segment.
set_tcp_nodelay true
"""


def _mosquitto_logging(log_dest: str) -> str:
    return f"""\
# --- Logging -----------------------------------------------------------------------------------
log_dest {log_dest}
log_type error
log_type warning
log_type notice
connection_messages true
log_timestamp_format %Y-%m-%dT%H:%M:%S
"""


@dataclass(frozen=True)
class MosquittoFiles:
    """The files of a Mosquitto configured by :func:`mosquitto_config`, read from its ``mosquitto.conf``."""

    conf: Path
    password_file: Path
    acl_file: Path
    pid_file: Path | None

    @classmethod
    def from_conf(cls, conf: Path) -> MosquittoFiles:
        try:
            lines = conf.read_text().splitlines()
        except OSError as exc:
            raise ConfigurationError(
                f"cannot read Mosquitto configuration {conf}: {exc.strerror}; write it with `scope3 broker config`"
            ) from None
        opts: dict[str, str] = {}
        for line in lines:
            parts = line.strip().split(None, 1)
            if len(parts) == 2 and not parts[0].startswith("#"):
                opts.setdefault(parts[0], parts[1].strip())
        missing = [k for k in ("password_file", "acl_file") if k not in opts]
        if missing:
            raise ConfigurationError(f"{conf} sets no {' or '.join(missing)}; rewrite it with `scope3 broker config`")
        pid = opts.get("pid_file")
        return cls(conf, Path(opts["password_file"]), Path(opts["acl_file"]), Path(pid) if pid else None)

    @classmethod
    def from_settings(cls, settings: Settings) -> MosquittoFiles | None:
        """The Mosquitto whose files provisioning keeps up to date, or None when there is none."""
        if settings.mosquitto_conf is not None:
            return cls.from_conf(settings.mosquitto_conf)
        default = settings.data_dir / "mosquitto" / "mosquitto.conf"
        return cls.from_conf(default) if default.exists() else None

    def sync(self, engine: Engine) -> bool:
        """Rewrite the password file and ACL from the database, then reload Mosquitto.

        Returns True when a running broker was signalled, False when none is running (it reads the
        files when it starts).
        """
        write_auth_files(engine, self.password_file, self.acl_file)
        return self.reload()

    def reload(self) -> bool:
        if self.pid_file is None or not self.pid_file.exists():
            log.warning("no Mosquitto pid file (%s): the files are written and take effect when it starts",
                        self.pid_file)
            return False
        try:
            pid = int(self.pid_file.read_text().strip())
        except ValueError:
            raise BrokerUnavailable(f"pid file {self.pid_file} holds no process id") from None
        try:
            os.kill(pid, signal.SIGHUP)
        except ProcessLookupError:
            log.warning("Mosquitto (pid %s from %s) is not running: the files take effect when it starts",
                        pid, self.pid_file)
            return False
        except PermissionError:
            raise BrokerUnavailable(
                f"not allowed to signal Mosquitto (pid {pid}): run provisioning as the broker's user or root, "
                f"or reload it yourself (kill -HUP {pid}); until then revoked devices can still connect"
            ) from None
        return True


def _write_file(path: Path, text: str) -> None:
    """Replace ``path`` atomically, keeping the mode and group of the file it replaces (0640 when new)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        st = path.stat()
        mode, gid = st.st_mode & 0o777, st.st_gid
    except FileNotFoundError:
        mode, gid = 0o640, -1
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.chmod(tmp, mode)
        if gid != -1 and gid != os.getegid():
            try:
                os.chown(tmp, -1, gid)
            except PermissionError:
                log.warning("could not keep group %s on %s", gid, path)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_auth_files(engine: Engine, password_file: Path, acl_file: Path) -> int:
    """Write Mosquitto's password file and ACL from the database; returns the number of accounts."""
    with engine.connect() as conn:
        devices = conn.execute(
            sa.select(Tenant.slug, Device.device_key, Device.credential_hash)
            .join(Tenant, Tenant.id == Device.tenant_id)
            .where(Device.revoked_at.is_(None))
            .order_by(Tenant.slug, Device.device_key)
        ).all()
        services = conn.execute(
            sa.select(BrokerAccount.username, BrokerAccount.role, BrokerAccount.credential_hash)
            .order_by(BrokerAccount.username)
        ).all()
    header = "# Written by scope3 from the platform database; edits are overwritten.\n"
    passwd = [f"{s.username}:{s.credential_hash}" for s in services]
    acl = [header]
    for s in services:
        # The ingest reads readings and nothing else; the filter also covers $share/<group>/... subscriptions.
        acl.append(f"user {s.username}\ntopic read {READINGS_FILTER}\n")
    for d in devices:
        user = mqtt_username(d.slug, d.device_key)
        passwd.append(f"{user}:{d.credential_hash}")
        # Write only, under its own topic: a device can neither impersonate another nor read anything.
        acl.append(f"user {user}\ntopic write {device_topic_pattern(d.slug, d.device_key)}\n")
    # No comment line in the password file: mosquitto_passwd calls such a file corrupt.
    _write_file(password_file, "\n".join(passwd) + "\n")
    _write_file(acl_file, "\n".join(acl))
    return len(passwd)


def issue_ingest_account(engine: Engine, *, rotate: bool = False, username: str = INGEST_ACCOUNT) -> str | None:
    """Create the ingest service's MQTT account; returns its password when issued (now or by ``rotate``).

    The password is shown only here; the database keeps its ``$7$`` hash.
    """
    password = secrets.token_urlsafe(24)
    with engine.begin() as conn:
        exists = conn.scalar(sa.select(BrokerAccount.username).where(BrokerAccount.username == username))
        if exists is not None and not rotate:
            return None
        values = {"credential_hash": mosquitto_hash(password)}
        if exists is None:
            conn.execute(sa.insert(BrokerAccount).values(username=username, role="ingest", **values))
        else:
            conn.execute(sa.update(BrokerAccount).where(BrokerAccount.username == username).values(**values))
    return password


@dataclass(frozen=True)
class BrokerConfig:
    files: MosquittoFiles
    accounts: int
    ingest_url: str | None  # set when the ingest account's password was issued by this call


def write_broker_config(
    engine: Engine,
    directory: Path,
    *,
    host: str = "127.0.0.1",
    port: int = 1883,
    tls_port: int | None = None,
    user: str | None = None,
    max_queued_bytes: int = DEFAULT_MAX_QUEUED_BYTES,
    max_inflight_messages: int = DEFAULT_MAX_INFLIGHT,
    rotate_ingest: bool = False,
) -> BrokerConfig:
    """Write ``mosquitto.conf``, the password file and the ACL under ``directory``; reload a running broker."""
    if not 0 < max_inflight_messages < 65535:
        raise ConfigurationError("max_inflight_messages must be between 1 and 65534 (paho's message-id range)")
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "data").mkdir(exist_ok=True)
    conf = directory / "mosquitto.conf"
    _write_file(conf, mosquitto_config(directory, host=host, port=port, tls_port=tls_port, user=user,
                                       max_queued_bytes=max_queued_bytes,
                                       max_inflight_messages=max_inflight_messages))
    password = issue_ingest_account(engine, rotate=rotate_ingest)
    files = MosquittoFiles.from_conf(conf)
    accounts = write_auth_files(engine, files.password_file, files.acl_file)
    if files.pid_file is not None and files.pid_file.exists():
        files.reload()
    url = None
    if password is not None:
        url = MqttParams(host if host not in ("0.0.0.0", "::") else "127.0.0.1", port, INGEST_ACCOUNT,
                         password).url()
    return BrokerConfig(files=files, accounts=accounts, ingest_url=url)
