"""Typed settings: defaults < settings file (TOML) < environment (``CSMS_...``) < command line.

Nested groups map to TOML tables and to environment variables with a double underscore:
``[ocpp] port = 9000`` in the file is ``CSMS_OCPP__PORT=9000`` in the environment.
Secrets (fields typed :class:`pydantic.SecretStr`) are read from the environment only; a
settings file that contains one is refused with an error naming the variable to use instead.
"""

from __future__ import annotations

import os
import socket
import tomllib
from contextvars import ContextVar
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field, SecretStr, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    InitSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

DEFAULT_CONFIG_FILE = Path("config/csms.toml")
PROJECT_ROOT = Path(__file__).resolve().parents[1]
"""The source tree (``config/`` beside ``csms/``), where the shipped defaults live."""
ENV_PREFIX = "CSMS_"


class SettingsError(ValueError):
    """The settings file or environment is invalid."""


class OcppSettings(BaseModel):
    """The websocket endpoint chargers connect to (OCPP-J 1.6 §3, 2.0.1 Part 4)."""

    model_config = {"extra": "forbid"}

    host: str = "0.0.0.0"
    port: int = Field(9000, ge=0, le=65535)
    path_prefix: str = "/ocpp"
    unknown_stations: Literal["accept", "reject"] = "accept"
    """``accept`` registers an unknown charger on first connect; ``reject`` answers HTTP 404."""
    heartbeat_interval: int = Field(300, ge=1)
    """Seconds, sent in the BootNotification response."""
    call_timeout: float = Field(30.0, gt=0)
    """Seconds to wait for a CALLRESULT before a command ends as ``timeout``."""
    ping_interval: float | None = 20.0
    ping_timeout: float | None = 20.0
    open_timeout: float = 10.0
    max_message_size: int = Field(1 << 20, ge=1024)
    """Largest frame accepted, in bytes; larger frames close the connection (1009)."""
    backlog: int = Field(4096, ge=1)
    """Listen backlog, sized for reconnect storms after an outage."""
    compression: bool = False
    """permessage-deflate; off by default (CPU per connection, few chargers use it)."""
    reuse_port: bool = False
    """SO_REUSEPORT: several worker processes share the port (``csms serve --workers``)."""
    tls_cert: Path | None = None
    """Server certificate (PEM, chain after the leaf) for ``wss://`` (security profiles 2, 3)."""
    tls_key: Path | None = None
    """Private key of ``tls_cert`` (PEM, unencrypted: keep it readable by the CSMS only)."""
    tls_ca: Path | None = None
    """CA bundle that client certificates must verify against (security profile 3)."""
    tls_port: int | None = Field(None, ge=0, le=65535)
    """Serve ``wss://`` on this extra port and keep ``port`` as plain ``ws://`` (migration);
    unset with ``tls_cert``: ``port`` itself serves ``wss://`` only."""
    default_security_profile: int = Field(1, ge=0, le=3)
    """Profile of stations without one of their own (see :mod:`csms.security.profiles`)."""

    @field_validator("path_prefix")
    @classmethod
    def _normalise_prefix(cls, value: str) -> str:
        value = "/" + value.strip("/")
        return "" if value == "/" else value

    @model_validator(mode="after")
    def _check_tls(self) -> OcppSettings:
        _check_cert_pair(self.tls_cert, self.tls_key, "ocpp")
        if self.tls_cert is None and (self.tls_ca is not None or self.tls_port is not None):
            raise ValueError("ocpp.tls_ca and ocpp.tls_port need ocpp.tls_cert and tls_key")
        return self

    @property
    def tls(self) -> bool:
        """Whether ``wss://`` is served (on ``port`` or ``tls_port``)."""
        return self.tls_cert is not None


class HttpSettings(BaseModel):
    """The HTTP side (API, dashboard, uploads), used by later work."""

    model_config = {"extra": "forbid"}

    host: str = "0.0.0.0"
    port: int = Field(8080, ge=0, le=65535)
    reuse_port: bool = False
    """SO_REUSEPORT: several worker processes share the port (``csms serve --workers``)."""
    upload_port: int | None = Field(None, ge=0, le=65535)
    """Also listen on this port (0: any free one) and put it in HTTP upload locations, so
    that a charger's upload reaches the process that asked for it (``--workers``)."""
    tls_cert: Path | None = None
    """Server certificate (PEM): serve HTTPS instead of HTTP (upload port included)."""
    tls_key: Path | None = None
    """Private key of ``tls_cert`` (PEM, unencrypted)."""

    @model_validator(mode="after")
    def _check_tls(self) -> HttpSettings:
        _check_cert_pair(self.tls_cert, self.tls_key, "http")
        return self


def _check_cert_pair(cert: Path | None, key: Path | None, group: str) -> None:
    if (cert is None) != (key is None):
        raise ValueError(f"{group}.tls_cert and {group}.tls_key go together: set both or none")


class UploadSettings(BaseModel):
    """Where chargers upload diagnostics logs: HTTP (on the ``http`` server) and FTP."""

    model_config = {"extra": "forbid"}

    public_host: str = "127.0.0.1"
    """Host name or address chargers connect to; goes into the upload locations."""
    http_base_url: str | None = None
    """Overrides ``http://{public_host}:{http.port}`` in HTTP locations (proxy, TLS)."""
    ftp_enabled: bool = True
    ftp_host: str = "0.0.0.0"
    """Address the FTP server binds (control and passive data connections)."""
    ftp_port: int = Field(2121, ge=0, le=65535)
    ftp_passive_ports: tuple[int, int] | None = None
    """Inclusive passive data port range, e.g. ``[30000, 30099]``; none: ephemeral ports."""
    ftp_passive_address: str | None = None
    """IPv4 address announced in PASV replies (NAT); default: ``public_host`` if it is one."""
    max_bytes: int = Field(50 * 1024 * 1024, ge=1)
    """Largest upload accepted (HTTP 413, FTP 552)."""
    slot_ttl: float = Field(3600.0, gt=0)
    """Seconds an upload location stays valid for its one upload."""
    max_attempts: int = Field(1, ge=1)
    """Upload requests a location is good for: 1 (one request, whatever its outcome; a charger
    that failed gets a fresh location when the CSMS asks again), more to let chargers retry a
    failed upload to the same location."""

    @field_validator("ftp_passive_ports")
    @classmethod
    def _check_port_range(cls, value: tuple[int, int] | None) -> tuple[int, int] | None:
        if value is not None and not 1 <= value[0] <= value[1] <= 65535:
            raise ValueError("ftp_passive_ports must be [first, last] with 1 <= first <= last")
        return value

    @field_validator("http_base_url")
    @classmethod
    def _check_base_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if not value.startswith(("http://", "https://")):
            raise ValueError("http_base_url must start with http:// or https://")
        return value.rstrip("/")


class DiagnosticsSettings(BaseModel):
    """The automated diagnostics: playbooks, SLA policies, log signatures, timing."""

    model_config = {"extra": "forbid"}

    enabled: bool = True
    playbooks: Path = Path("config/playbooks.toml")
    sla: Path = Path("config/sla.toml")
    signatures: Path = Path("config/log_signatures.toml")
    time_scale: float = Field(1.0, gt=0)
    """Multiplies every wait of the engine (grace, settle, timeouts...): 0.01 turns minutes
    into fractions of a second for demos and end-to-end tests."""
    upload_protocol: Literal["ftp", "http"] = "ftp"
    """How chargers are asked to upload logs (many chargers speak only FTP)."""


class DatabaseSettings(BaseModel):
    """Where everything is stored. Empty ``url`` means SQLite in ``data_dir``."""

    model_config = {"extra": "forbid"}

    url: str | None = None
    password: SecretStr | None = None
    """Secret: environment only (``CSMS_DATABASE__PASSWORD``); put into the URL at connect."""
    auto_migrate: bool = True
    """Apply migrations on start; off means run ``csms db upgrade`` yourself."""
    write_lanes: int = Field(1, ge=1, le=32)
    """PostgreSQL: group commits in flight at once (stations are spread over them by id).
    More than one helps when each commit waits on round trips to a distant database; on
    one machine it costs CPU (smaller batches). SQLite always writes one at a time."""


class LoggingSettings(BaseModel):
    """Structured logs (structlog)."""

    model_config = {"extra": "forbid"}

    format: Literal["console", "json"] = "console"
    level: Literal["debug", "info", "warning", "error"] = "info"
    frames: bool = False
    """Log every OCPP frame at debug level (noisy; for troubleshooting a charger)."""


class ApiSettings(BaseModel):
    """The REST API under ``/api/v1`` and the driver report intake."""

    model_config = {"extra": "forbid"}

    reports_open: bool = True
    """Driver reports may be filed without a token (rate limited per client address)."""
    report_rate_limit: str = "10/minute"
    """Reports per client address (``limits`` syntax: ``"10/minute"``, ``"100/hour"``)."""
    report_max_photos: int = Field(4, ge=0)
    report_max_photo_bytes: int = Field(5 * 1024 * 1024, ge=1)
    """Largest photo accepted (HTTP 413 above it); JPEG, PNG or WebP only."""


class MqttSettings(BaseModel):
    """Operations events published to an MQTT broker (off by default: no broker needed)."""

    model_config = {"extra": "forbid"}

    enabled: bool = False
    host: str = "127.0.0.1"
    port: int = Field(1883, ge=1, le=65535)
    username: str | None = None
    password: SecretStr | None = None
    """Secret: environment only (``CSMS_MQTT__PASSWORD``)."""
    client_id: str | None = None
    """Default: ``csms-{node_id}``."""
    topic_prefix: str = "csms"
    qos: Literal[0, 1, 2] = 1
    keepalive: int = Field(30, ge=5)
    buffer_size: int = Field(100_000, ge=1)
    """Events kept while the broker is away; beyond it the oldest are dropped (and counted)."""
    reconnect_initial: float = Field(0.5, gt=0)
    """Seconds before the first reconnect attempt; doubles up to ``reconnect_max``."""
    reconnect_max: float = Field(30.0, gt=0)


class WebhookSettings(BaseModel):
    """Tickets pushed to a field-service system: a signed JSON POST per open and update."""

    model_config = {"extra": "forbid"}

    url: str | None = None
    """Empty: no webhook."""
    secret: SecretStr | None = None
    """Secret: environment only (``CSMS_WEBHOOK__SECRET``); HMAC-SHA256 key of the signature."""
    timeout: float = Field(10.0, gt=0)
    max_attempts: int = Field(8, ge=1)
    """Failed deliveries after which a delivery is parked (shown by the API)."""
    backoff_initial: float = Field(1.0, gt=0)
    backoff_max: float = Field(300.0, gt=0)

    @field_validator("url")
    @classmethod
    def _check_url(cls, value: str | None) -> str | None:
        if value is None or value == "":
            return None
        if not value.startswith(("http://", "https://")):
            raise ValueError("webhook url must start with http:// or https://")
        return value


class ClusterSettings(BaseModel):
    """Several ``csms serve`` nodes on one PostgreSQL database and one MQTT broker.

    The broker is the one of ``[mqtt]`` (host, port, credentials, topic prefix; publishing
    events there stays governed by ``mqtt.enabled``). One node at a time runs the diagnostics
    engine, under a lease in the database; the others forward their events to it and route
    commands to the node holding each charger.
    """

    model_config = {"extra": "forbid"}

    enabled: bool = False
    lease_seconds: float = Field(10.0, gt=0)
    """How long the diagnostics lease lasts without renewal (takeover time after a crash)."""
    renew_seconds: float = Field(2.0, gt=0)
    """How often the leader renews its lease and every node says it is alive."""
    node_timeout: float = Field(30.0, gt=0)
    """A node silent for this long is dead: its chargers are marked disconnected."""
    rpc_timeout: float = Field(40.0, gt=0)
    """Longest wait for another node's answer (a command routed to the node holding the
    charger waits up to ``ocpp.call_timeout`` there)."""


class LimitsSettings(BaseModel):
    """Abuse limits of the OCPP endpoint, the API and the HTTP uploads (0 turns a rate off).

    Every refusal is logged and counted in ``csms_limit_refusals_total{limit}``. Per-address
    limits see the peer address of the connection (no proxy headers are trusted): behind a
    reverse proxy or a carrier NAT many clients share one address, so raise the limits or
    list the address in ``exempt_networks``.
    """

    model_config = {"extra": "forbid"}

    ocpp_messages_per_second: float = Field(50.0, ge=0)
    """Frames per second and connection (0: no limit); over it a CALL gets a CALLERROR."""
    ocpp_message_burst: int = Field(500, ge=1)
    """Frames a connection may send at once above the rate (an offline queue being flushed)."""
    ocpp_refusals_before_close: int = Field(200, ge=0)
    """Refused frames within ``ocpp_refusal_window`` seconds after which the connection is
    closed with 1008 (policy violation); 0: never closed for its rate."""
    ocpp_refusal_window: float = Field(10.0, gt=0)
    handshakes_per_minute: int = Field(600, ge=0)
    """Websocket handshakes per client address (HTTP 429 above; 0: no limit)."""
    api_requests_per_minute: int = Field(1200, ge=0)
    """Requests to ``/api`` per client address (HTTP 429 above; 0: no limit)."""
    api_max_body_bytes: int = Field(1024 * 1024, ge=1024)
    """Largest ``/api`` request body (HTTP 413); the report intake allows its photos on top."""
    uploads_per_minute: int = Field(60, ge=0)
    """Log uploads per client address: PUT/POST to ``/uploads`` (HTTP 429) and, counted apart,
    FTP connections (421); 0: no limit. Their size limit is ``uploads.max_bytes``."""
    exempt_networks: tuple[str, ...] = ()
    """Client networks (``"10.20.0.0/16"``, ``"127.0.0.1"``) without per-address limits."""

    @field_validator("exempt_networks")
    @classmethod
    def _check_networks(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        import ipaddress

        for network in value:
            try:
                ipaddress.ip_network(network, strict=False)
            except ValueError as exc:
                raise ValueError(f"limits.exempt_networks: {exc}") from None
        return value


class RuntimeSettings(BaseModel):
    """Python runtime tuning (``[runtime]``; see :mod:`csms.runtime`)."""

    model_config = {"extra": "forbid"}

    gc_threshold: tuple[int, int, int] | None = (100_000, 50, 100)
    """``gc.set_threshold`` of every server process (``None``: CPython's (700, 10, 10)).
    High thresholds spare a server with thousands of connections most collections."""
    gc_freeze: bool = True
    """``gc.freeze()`` once listening: start-up objects are not scanned again."""

    @field_validator("gc_threshold")
    @classmethod
    def _positive(cls, value: tuple[int, int, int] | None) -> tuple[int, int, int] | None:
        if value is not None and min(value) < 1:
            raise ValueError("every gc threshold must be at least 1")
        return value


class Settings(BaseSettings):
    """Every setting of the CSMS in one typed object."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter="__",
        extra="forbid",
        nested_model_default_partial_update=True,
    )

    data_dir: Path = Path("data")
    node_id: str = Field(default_factory=socket.gethostname)
    ocpp: OcppSettings = OcppSettings()
    http: HttpSettings = HttpSettings()
    uploads: UploadSettings = UploadSettings()
    diagnostics: DiagnosticsSettings = DiagnosticsSettings()
    database: DatabaseSettings = DatabaseSettings()
    logging: LoggingSettings = LoggingSettings()
    api: ApiSettings = ApiSettings()
    mqtt: MqttSettings = MqttSettings()
    webhook: WebhookSettings = WebhookSettings()
    cluster: ClusterSettings = ClusterSettings()
    limits: LimitsSettings = LimitsSettings()
    runtime: RuntimeSettings = RuntimeSettings()

    @property
    def database_url(self) -> str:
        """The SQLAlchemy URL, SQLite in ``data_dir`` by default, with the secret password."""
        from sqlalchemy.engine import make_url

        raw = self.database.url or f"sqlite+aiosqlite:///{self.data_dir / 'csms.db'}"
        url = make_url(raw)
        if self.database.password is not None:
            url = url.set(password=self.database.password.get_secret_value())
        return url.render_as_string(hide_password=False)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings, _FileSource(settings_cls))


_CONFIG_FILE: ContextVar[Path | None] = ContextVar("csms_config_file", default=None)


class _FileSource(InitSettingsSource):
    """Reads the TOML settings file chosen by :func:`load_settings`, refusing secrets."""

    def __init__(self, settings_cls: type[BaseSettings]) -> None:
        path = _CONFIG_FILE.get()
        data = _read_file(path) if path is not None else {}
        super().__init__(settings_cls, data)


def _read_file(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as handle:
            data = tomllib.load(handle)
    except FileNotFoundError as exc:
        raise SettingsError(f"settings file not found: {path}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise SettingsError(f"settings file {path} is not valid TOML: {exc}") from exc
    for dotted in _secret_fields():
        group, _, name = dotted.partition(".")
        section = data.get(group)
        if isinstance(section, dict) and name in section:
            env = f"{ENV_PREFIX}{group.upper()}__{name.upper()}"
            raise SettingsError(
                f"{path}: '{dotted}' is a secret; set it in the environment as {env}"
            )
    return data


def _secret_fields() -> list[str]:
    found = []
    for group, info in Settings.model_fields.items():
        model = info.annotation
        if isinstance(model, type) and issubclass(model, BaseModel):
            for name, field in model.model_fields.items():
                if "SecretStr" in str(field.annotation):
                    found.append(f"{group}.{name}")
    return found


def resolve_path(path: Path) -> Path:
    """A configured file: absolute as given; relative to the working directory, else to the
    project's source tree (so ``config/playbooks.toml`` works from any directory)."""
    if path.is_absolute():
        return path
    for base in (Path.cwd(), PROJECT_ROOT):
        candidate = base / path
        if candidate.exists():
            return candidate
    raise SettingsError(f"file not found: {path} (looked in {Path.cwd()} and {PROJECT_ROOT})")


def load_settings(config: Path | None = None, **overrides: Any) -> Settings:
    """Build the settings from the file, the environment and explicit overrides.

    ``config`` defaults to ``$CSMS_CONFIG``, else ``config/csms.toml`` when it exists.
    ``overrides`` use the nested shape (``ocpp={"port": 9100}``) and win over everything.
    """
    if config is None:
        env_path = os.environ.get(f"{ENV_PREFIX}CONFIG")
        if env_path:
            config = Path(env_path)
        elif DEFAULT_CONFIG_FILE.is_file():
            config = DEFAULT_CONFIG_FILE
    token = _CONFIG_FILE.set(config)
    try:
        return Settings(**overrides)
    finally:
        _CONFIG_FILE.reset(token)
