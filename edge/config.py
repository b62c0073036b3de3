"""Settings of one server process, read from a mapping (the environment) and command-line overrides.

Owns: the server's own settings (name, default, unit, parsing) and the composition of every room's
settings dataclass (``MailSettings``, uploads ``Limits``, ``ReplicationRoomSettings``,
``ThrottleSettings``: each room declares its variables, defaults and parsing); ``describe()``.
Must not: read ``os.environ`` itself (the caller passes a mapping, tests pass a dict), do I/O,
import anything from edge but ``errors``, ``model``, ``envparse`` and the rooms' settings modules.

A bad value stops start-up with a ConfigError naming the variable; all bad values of one start
are reported together, in one error (ReductStore panics on some and silently falls back on
others; we do neither). Families read by pattern (``RS_TOKEN_<ID>_*``, ``RS_BUCKET_<ID>_*``,
``RS_REPLICATION_<ID>_*``, ``RS_LIFECYCLE_<ID>_*``) are parsed by their rooms from ``env`` at start.
"""

from __future__ import annotations

import enum
import re
import socket
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Mapping

from .errors import ConfigError
from .envparse import (GB, GiB, KB, KiB, MB, MiB, Problems, parse_bool, parse_float,  # noqa: F401 - re-exported
                       parse_int, parse_size)
from .auth.throttle import ThrottleSettings
from .mail.settings import MailSettings
from .replication.settings import ReplicationRoomSettings
from .uploads.settings import Limits as UploadLimits
from .model import (AUTO_QUOTA_SIZE, DEFAULT_MAX_BLOCK_RECORDS, DEFAULT_MAX_BLOCK_SIZE, BucketSettings, EngineLimits,
                    QuotaType)

DEFAULT_DATA_PATH = "./edge-data"  # an ordinary user's local folder; the systemd unit sets /var/lib/edge
SYNC_POLICIES = ("always", "none")
INSTANCE_ROLES = ("STANDALONE", "PRIMARY", "SECONDARY", "REPLICA")
_PERCENT_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*%\s*$")
DEFAULT_FREE_SPACE_RESERVE = "2%"  # of the data file system


@dataclass(frozen=True)
class RateLimit:
    """``amount`` (requests or bytes) per ``period_s`` seconds, per client address."""

    amount: int
    period_s: float


_PERIOD_RE = re.compile(r"^\s*(\d*)\s*(s|sec|second|seconds|m|min|minute|minutes|h|hour|hours|d|day|days)\s*$",
                        re.IGNORECASE)
_PERIOD_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_REQUESTS_RE = re.compile(r"^\s*(\d+)\s*(?:req|reqs|requests?)?\s*$", re.IGNORECASE)


def parse_rate_limit(text: str, name: str, *, bytes_: bool) -> RateLimit | None:
    """ReductStore's syntax: ``<n>[req][/<period>]`` (requests) or ``<bytesize>[/<period>]``;
    the period is ``s``, ``m``, ``h``, ``d`` with an optional count (``/10s``), default one hour.
    Empty (or ``off``) disables the limit."""
    text = text.strip()
    if not text or text.lower() in ("off", "none", "0"):
        return None
    amount_text, _, period_text = text.partition("/")
    period_s = 3600.0
    if period_text.strip():
        m = _PERIOD_RE.match(period_text)
        if not m:
            raise ConfigError(f"{name}: '{period_text}' is not a period (e.g. s, m, h, 10s)")
        period_s = float(int(m.group(1) or "1") * _PERIOD_UNITS[m.group(2)[0].lower()])
        if period_s <= 0:
            raise ConfigError(f"{name}: the period must be longer than zero")
    if bytes_:
        amount = parse_size(amount_text, name)
    else:
        m = _REQUESTS_RE.match(amount_text)
        if not m:
            raise ConfigError(f"{name}: '{amount_text}' is not a request count (e.g. 100req/m)")
        amount = int(m.group(1))
    if amount <= 0:
        raise ConfigError(f"{name}: the limit must be greater than zero")
    return RateLimit(amount, period_s)


def parse_networks(text: str, name: str) -> tuple[str, ...]:
    """Comma-separated addresses or networks (``127.0.0.0/8,::1``), normalised; empty: none."""
    import ipaddress

    out = []
    for item in (part.strip() for part in text.split(",")):
        if not item:
            continue
        try:
            out.append(str(ipaddress.ip_network(item, strict=False)))
        except ValueError:
            raise ConfigError(f"{name}: '{item}' is not an IP address or network") from None
    return tuple(out)


class AuthMode(enum.Enum):
    """How the server authenticates, from the variables (secure by default: never open unasked)."""

    TOKEN = "RS_API_TOKEN"            # a provisioned full-access token with that secret
    INIT = "RS_INIT_API_TOKEN"        # a full-access token created once from that secret
    GENERATED = "generated"           # no choice made: a device-unique token is generated once
    DISABLED = "RS_DISABLE_AUTH"      # RS_DISABLE_AUTH=true: no tokens at all (warned at every start)


def normalise_base_path(text: str) -> str:
    """``api`` -> ``/api/``; ``/`` stays ``/`` (spec §1.1)."""
    parts = [p for p in text.strip().split("/") if p]
    return "/" + "".join(p + "/" for p in parts)


@dataclass(frozen=True)
class Config:
    data_path: Path = Path(DEFAULT_DATA_PATH)
    host: str = "0.0.0.0"
    port: int = 8383                  # 0: an ephemeral port, reported in the log and EDGE_PORT_FILE
    port_file: str = ""               # EDGE_PORT_FILE: the bound port is written here once listening
    api_token: str = ""
    init_api_token: str = ""          # RS_INIT_API_TOKEN (1.21): created once, never provisioned
    disable_auth: bool = False        # RS_DISABLE_AUTH=true: the one explicit way to run without tokens
    api_base_path: str = "/"
    public_url: str = ""
    log_level: str = "INFO"
    cors_allow_origin: tuple[str, ...] = ()
    instance_name: str = "unknown"   # RS_INSTANCE_NAME, else the host name (from_env), else "unknown"
    instance_role: str = "STANDALONE"
    # Durability of acknowledged writes: "always" = fdatasync before every 200 (group commit);
    # "none" = leave it to the kernel (for benchmarks of the rest, never for real data).
    sync_policy: str = "always"
    graceful_timeout_s: float = 5.0
    keep_alive_timeout_s: float = 75.0
    head_timeout_s: float = 30.0
    io_operation_timeout_s: float = 30.0
    max_connections: int = 1024
    max_connections_per_address: int = 64
    # EDGE_LARGE_HEAD_MEMORY: memory shared by incomplete request heads over 64 KiB
    large_head_memory: int = 16 * MiB
    body_grace_s: float = 20.0
    body_min_rate: float = 500.0
    tls_handshake_timeout_s: float = 10.0
    # Peers whose Forwarded / X-Forwarded-For headers are believed (EDGE_TRUSTED_PROXIES).
    trusted_proxies: tuple[str, ...] = ("127.0.0.0/8", "::1/128")
    cert_path: str = ""               # RS_CERT_PATH: TLS certificate chain (PEM); set -> HTTPS
    cert_key_path: str = ""           # RS_CERT_KEY_PATH: its private key (PEM)
    rate_limit_api: RateLimit | None = None       # RS_RATE_LIMIT_API
    rate_limit_ingress: RateLimit | None = None   # RS_RATE_LIMIT_INGRESS
    rate_limit_egress: RateLimit | None = None    # RS_RATE_LIMIT_EGRESS
    # New buckets: FIFO with an automatic quota (a share of the disk, see the README) unless
    # RS_DEFAULTS_BUCKET_* say otherwise.
    default_bucket: BucketSettings = field(
        default_factory=lambda: BucketSettings(QuotaType.FIFO, AUTO_QUOTA_SIZE))
    engine_limits: EngineLimits = field(
        default_factory=lambda: EngineLimits(free_reserve_percent=float(DEFAULT_FREE_SPACE_RESERVE[:-1])))
    # Read batches (spec §9.6), from RS_IO_*.
    batch_max_size: int = 8_000_000
    batch_max_records: int = 85
    batch_max_metadata_size: int = 512_000
    batch_timeout_s: float = 5.0
    batch_records_timeout_s: float = 1.0
    default_query_ttl_s: int = 60
    # Sharing APIs (README "Mediapocket" / "LiquidFiles"): where uploaded attachments live as
    # records, the expiry of a FileLink created without one, and the address that gets download
    # receipts of links whose receipt switch is on but which carry no address of their own.
    attachments_bucket: str = "attachments"
    link_default_days: int = 7
    receipt_to: str = ""
    # $system events (ReductStore 1.20+/1.21; edge.services.system_events).
    system_events_enabled: bool = True                 # RS_SYSTEM_EVENTS_ENABLED
    system_events_quota_size: int = 10 * GB            # RS_SYSTEM_EVENTS_QUOTA_SIZE (FIFO)
    system_events_log_level: str = "WARN"              # RS_SYSTEM_EVENTS_LOG_LEVEL, "OFF" = no log capture
    audit_enabled: bool | None = None                  # RS_AUDIT_ENABLED; None = on exactly when auth is on
    system_events_queue: int = 10_000                  # EDGE_SYSTEM_EVENTS_QUEUE: events waiting, then dropped
    audit_flush_s: float = 5.0                         # EDGE_AUDIT_FLUSH_S: audit aggregation window
    usage_interval_s: float = 60.0                     # EDGE_USAGE_INTERVAL_S: usage statistics period
    # TEST ONLY (EDGE_TEST_SLOW_FSYNC_MS): every fsync/fdatasync sleeps this long first, like a slow
    # card (edge.blocking.slow_down_fsync; tests/server/test_slow_disk.py). Never set it in production.
    test_slow_fsync_ms: float = 0.0
    # One-variable rooms: lifecycles (shortest interval), metrics (access, sampling period), and
    # the payload reader's sendfile path (edge/http/payload.py).
    lifecycle_min_interval_s: float = 600.0            # EDGE_LIFECYCLE_MIN_INTERVAL_S
    metrics_access: str = "token"                      # EDGE_METRICS_ACCESS: "token" or "open"
    metrics_sample_s: float = 5.0                      # EDGE_METRICS_SAMPLE_S (at least 0.2)
    read_sendfile: bool = False                        # EDGE_READ_SENDFILE=1
    # The rooms' settings, each declared (variables, defaults, parsing) by its room.
    mail: MailSettings = field(default_factory=MailSettings)                        # EDGE_SMTP_*, EDGE_SHARE_*
    uploads: UploadLimits = field(default_factory=UploadLimits)                     # EDGE_UPLOAD*
    replication: ReplicationRoomSettings = field(default_factory=lambda: ReplicationRoomSettings())  # RS_REPLICATION_*
    auth_throttle: ThrottleSettings = field(default_factory=ThrottleSettings)       # EDGE_AUTH_*
    # Everything else the process was given, for the rooms that read their own variables
    # (provisioning RS_TOKEN_*/RS_BUCKET_*/RS_REPLICATION_*, EDGE_SMTP_*, ...).
    env: Mapping[str, str] = field(default_factory=dict, repr=False, compare=False)

    @property
    def auth_mode(self) -> AuthMode:
        if self.disable_auth:
            return AuthMode.DISABLED
        if self.api_token:
            return AuthMode.TOKEN
        if self.init_api_token:
            return AuthMode.INIT
        return AuthMode.GENERATED

    @property
    def auth_enabled(self) -> bool:
        return not self.disable_auth

    @property
    def audit_on(self) -> bool:
        """Audit records are written when system events are on and audit is (default: with auth)."""
        if not self.system_events_enabled:
            return False
        return self.auth_enabled if self.audit_enabled is None else self.audit_enabled

    @property
    def tls_enabled(self) -> bool:
        return bool(self.cert_path)

    @property
    def scheme(self) -> str:
        return "https" if self.tls_enabled else "http"

    @property
    def public_base_url(self) -> str:
        """Base of links handed out (``RS_PUBLIC_URL``), always ending in ``/``."""
        if self.public_url:
            return self.public_url if self.public_url.endswith("/") else self.public_url + "/"
        host = "127.0.0.1" if self.host in ("0.0.0.0", "::", "") else self.host
        if ":" in host:
            host = f"[{host}]"
        port = "" if self.port == (443 if self.tls_enabled else 80) else f":{self.port}"
        return f"{self.scheme}://{host}{port}{self.api_base_path}"

    @classmethod
    def from_env(cls, env: Mapping[str, str], **overrides: object) -> "Config":
        """Read ``RS_*`` (and ``EDGE_*``) settings; ``overrides`` (command-line flags) win when not None."""
        get = env.get
        problems = Problems()
        values: dict[str, object] = {"env": dict(env)}
        with problems.each():
            if get("RS_DATA_PATH"):
                values["data_path"] = Path(get("RS_DATA_PATH", ""))
        with problems.each():
            if get("RS_HOST"):
                values["host"] = get("RS_HOST", "").strip()
        with problems.each():
            if get("RS_PORT"):
                port = values["port"] = parse_int(get("RS_PORT", ""), "RS_PORT")
                if not 0 <= port <= 65535:
                    raise ConfigError(f"RS_PORT: {port} is not a TCP port")
        with problems.each():
            if get("EDGE_PORT_FILE", "").strip():
                values["port_file"] = get("EDGE_PORT_FILE", "").strip()
        with problems.each():
            values["api_token"] = get("RS_API_TOKEN", "")
        with problems.each():
            if not values["api_token"] and get("RS_INIT_API_TOKEN", ""):
                values["init_api_token"] = get("RS_INIT_API_TOKEN", "")
        with problems.each():
            if get("RS_DISABLE_AUTH") and parse_bool(get("RS_DISABLE_AUTH", ""), "RS_DISABLE_AUTH"):
                values["disable_auth"] = True
        with problems.each():
            if get("RS_API_BASE_PATH"):
                values["api_base_path"] = normalise_base_path(get("RS_API_BASE_PATH", ""))
        with problems.each():
            if get("RS_PUBLIC_URL"):
                values["public_url"] = get("RS_PUBLIC_URL", "").strip()
        with problems.each():
            if get("RS_LOG_LEVEL"):
                level = get("RS_LOG_LEVEL", "").strip().upper()
                if level not in ("TRACE", "DEBUG", "INFO", "WARN", "WARNING", "ERROR"):
                    raise ConfigError(f"RS_LOG_LEVEL: '{level}' is not one of TRACE, DEBUG, INFO, WARN, ERROR")
                values["log_level"] = level
        with problems.each():
            if get("RS_CORS_ALLOW_ORIGIN"):
                values["cors_allow_origin"] = tuple(
                    o.strip() for o in get("RS_CORS_ALLOW_ORIGIN", "").split(",") if o.strip()
                )
        # As ReductStore 1.21: /info and the $system entry paths name the instance.
        with problems.each():
            values["instance_name"] = get("RS_INSTANCE_NAME", "").strip() or socket.gethostname().strip() or "unknown"
        with problems.each():
            if get("RS_INSTANCE_ROLE", "").strip():
                role = get("RS_INSTANCE_ROLE", "").strip().upper()
                if role not in INSTANCE_ROLES:
                    raise ConfigError(f"RS_INSTANCE_ROLE: '{role}' is not one of {', '.join(INSTANCE_ROLES)}")
                if role != "STANDALONE":
                    # Never weaker than asked: PRIMARY/SECONDARY (shared-storage high availability) and
                    # REPLICA (read-only over another instance's storage) are not built; edge scales by
                    # replicating into a central ReductStore instead.
                    raise ConfigError(f"RS_INSTANCE_ROLE: '{role}' is not supported by edge (only STANDALONE); "
                                      "use a replication to a central server instead")
                values["instance_role"] = role
        with problems.each():
            if get("EDGE_SYNC"):
                policy = get("EDGE_SYNC", "").strip().lower()
                if policy not in SYNC_POLICIES:
                    raise ConfigError(f"EDGE_SYNC: '{policy}' is not one of {', '.join(SYNC_POLICIES)}")
                values["sync_policy"] = policy
        with problems.each():
            for var, key in (("EDGE_GRACEFUL_TIMEOUT", "graceful_timeout_s"),
                             ("EDGE_KEEP_ALIVE_TIMEOUT", "keep_alive_timeout_s"),
                             ("EDGE_HEAD_TIMEOUT", "head_timeout_s"),
                             ("RS_IO_OPERATION_TIMEOUT", "io_operation_timeout_s"),
                             ("RS_IO_BATCH_TIMEOUT", "batch_timeout_s"),
                             ("RS_IO_BATCH_RECORDS_TIMEOUT", "batch_records_timeout_s")):
                if get(var):
                    values[key] = parse_float(get(var, ""), var)
        with problems.each():
            if get("EDGE_MAX_CONNECTIONS"):
                values["max_connections"] = parse_int(get("EDGE_MAX_CONNECTIONS", ""), "EDGE_MAX_CONNECTIONS", 1)
        with problems.each():
            if get("EDGE_MAX_CONNECTIONS_PER_ADDRESS"):
                values["max_connections_per_address"] = parse_int(
                    get("EDGE_MAX_CONNECTIONS_PER_ADDRESS", ""), "EDGE_MAX_CONNECTIONS_PER_ADDRESS", 0)
        with problems.each():
            if get("EDGE_LARGE_HEAD_MEMORY", "").strip():
                values["large_head_memory"] = parse_size(get("EDGE_LARGE_HEAD_MEMORY", ""),
                                                         "EDGE_LARGE_HEAD_MEMORY")
        with problems.each():
            for var, key in (("EDGE_BODY_GRACE", "body_grace_s"), ("EDGE_BODY_MIN_RATE", "body_min_rate"),
                             ("EDGE_TLS_HANDSHAKE_TIMEOUT", "tls_handshake_timeout_s")):
                if get(var):
                    values[key] = parse_float(get(var, ""), var)
        with problems.each():
            if "EDGE_TRUSTED_PROXIES" in env:
                values["trusted_proxies"] = parse_networks(get("EDGE_TRUSTED_PROXIES", ""), "EDGE_TRUSTED_PROXIES")
        with problems.each():
            cert, key = get("RS_CERT_PATH", "").strip(), get("RS_CERT_KEY_PATH", "").strip()
        with problems.each():
            if cert and not key:
                raise ConfigError("RS_CERT_KEY_PATH: must be set together with RS_CERT_PATH")
        with problems.each():
            if key and not cert:
                raise ConfigError("RS_CERT_PATH: must be set together with RS_CERT_KEY_PATH")
        with problems.each():
            values["cert_path"], values["cert_key_path"] = cert, key
        with problems.each():
            for var, key, is_bytes in (("RS_RATE_LIMIT_API", "rate_limit_api", False),
                                       ("RS_RATE_LIMIT_INGRESS", "rate_limit_ingress", True),
                                       ("RS_RATE_LIMIT_EGRESS", "rate_limit_egress", True)):
                if get(var, "").strip():
                    values[key] = parse_rate_limit(get(var, ""), var, bytes_=is_bytes)
        with problems.each():
            for var, key in (("RS_IO_BATCH_MAX_SIZE", "batch_max_size"),
                             ("RS_IO_BATCH_MAX_METADATA_SIZE", "batch_max_metadata_size")):
                if get(var):
                    values[key] = parse_size(get(var, ""), var)
        with problems.each():
            if get("RS_IO_BATCH_MAX_RECORDS"):
                values["batch_max_records"] = parse_int(get("RS_IO_BATCH_MAX_RECORDS", ""), "RS_IO_BATCH_MAX_RECORDS", 1)
        with problems.each():
            if get("EDGE_ATTACHMENTS_BUCKET", "").strip():
                values["attachments_bucket"] = get("EDGE_ATTACHMENTS_BUCKET", "").strip()
        with problems.each():
            if get("EDGE_LINK_DEFAULT_DAYS"):
                values["link_default_days"] = parse_int(get("EDGE_LINK_DEFAULT_DAYS", ""), "EDGE_LINK_DEFAULT_DAYS", 1)
        with problems.each():
            if get("EDGE_RECEIPT_TO", "").strip():
                values["receipt_to"] = get("EDGE_RECEIPT_TO", "").strip()
        with problems.each():
            if get("EDGE_TEST_SLOW_FSYNC_MS", "").strip():
                values["test_slow_fsync_ms"] = parse_float(get("EDGE_TEST_SLOW_FSYNC_MS", ""), "EDGE_TEST_SLOW_FSYNC_MS")
        with problems.each():
            values["default_bucket"] = _bucket_defaults(env)
        with problems.each():
            values.update(_system_events(env))
        with problems.each():
            values["engine_limits"] = _engine_limits(env)
        with problems.each():
            if get("EDGE_LIFECYCLE_MIN_INTERVAL_S", "").strip():
                values["lifecycle_min_interval_s"] = parse_float(get("EDGE_LIFECYCLE_MIN_INTERVAL_S", ""),
                                                                 "EDGE_LIFECYCLE_MIN_INTERVAL_S")
        with problems.each():
            access = (get("EDGE_METRICS_ACCESS") or "token").strip().lower()
            if access not in ("open", "token"):
                raise ConfigError(f"EDGE_METRICS_ACCESS must be 'open' or 'token', got {access!r}")
            values["metrics_access"] = access
        with problems.each():
            if get("EDGE_METRICS_SAMPLE_S", "").strip():
                values["metrics_sample_s"] = max(0.2, parse_float(get("EDGE_METRICS_SAMPLE_S", ""),
                                                                  "EDGE_METRICS_SAMPLE_S"))
        values["read_sendfile"] = get("EDGE_READ_SENDFILE", "") == "1"
        # The rooms' own settings, each one frozen dataclass of its room (variables, defaults, parsing).
        with problems.each():
            values["mail"] = MailSettings.from_env(env)
        with problems.each():
            values["uploads"] = UploadLimits.from_env(env)
        with problems.each():
            values["replication"] = ReplicationRoomSettings.from_env(env)
        with problems.each():
            values["auth_throttle"] = ThrottleSettings.from_env(env)
        problems.raise_all()   # every bad value at once, one line each
        for key, value in overrides.items():
            if value is not None:
                values[key] = Path(value) if key == "data_path" else value  # type: ignore[arg-type]
        return cls(**values)  # type: ignore[arg-type]

    def describe(self) -> list[str]:
        """One line per setting for the start-up log; secrets masked."""
        lines = []
        for f in fields(self):
            if f.name == "env":
                continue
            if f.name == "mail":
                lines += self.mail.describe()   # the password masked
                continue
            value = getattr(self, f.name)
            if f.name in ("api_token", "init_api_token"):
                value = "***" if value else "(empty)"
            lines.append(f"{f.name} = {value}")
        return lines


def _engine_limits(env: Mapping[str, str]) -> EngineLimits:
    """``RS_ENGINE_MAX_STORAGE_SIZE``, ``EDGE_FREE_SPACE_RESERVE``, ``EDGE_INDEX_CACHE_SIZE``,
    ``EDGE_TORN_KEEP_SIZE``."""
    values: dict[str, object] = {}
    if env.get("RS_ENGINE_MAX_STORAGE_SIZE", "").strip():
        values["max_storage_size"] = parse_size(env["RS_ENGINE_MAX_STORAGE_SIZE"], "RS_ENGINE_MAX_STORAGE_SIZE")
    reserve = env.get("EDGE_FREE_SPACE_RESERVE", "").strip() or DEFAULT_FREE_SPACE_RESERVE
    m = _PERCENT_RE.match(reserve)
    if m:
        percent = float(m.group(1))
        if percent >= 100:
            raise ConfigError(f"EDGE_FREE_SPACE_RESERVE: '{reserve}' must be below 100%")
        values["free_reserve_percent"] = percent
    else:
        try:
            values["free_reserve"] = parse_size(reserve, "EDGE_FREE_SPACE_RESERVE")
        except ConfigError:
            raise ConfigError(f"EDGE_FREE_SPACE_RESERVE: '{reserve}' is neither a byte size (e.g. 500MB) "
                              "nor a percentage of the file system (e.g. 2%)") from None
    if env.get("EDGE_INDEX_CACHE_SIZE", "").strip():
        values["index_cache_size"] = parse_size(env["EDGE_INDEX_CACHE_SIZE"], "EDGE_INDEX_CACHE_SIZE")
    if env.get("EDGE_TORN_KEEP_SIZE", "").strip():
        values["torn_keep_size"] = parse_size(env["EDGE_TORN_KEEP_SIZE"], "EDGE_TORN_KEEP_SIZE")
    return EngineLimits(**values)  # type: ignore[arg-type]


def _bucket_defaults(env: Mapping[str, str]) -> BucketSettings:
    """Server-wide defaults for new buckets, ``RS_DEFAULTS_BUCKET_*`` (spec §16.2); without them
    FIFO with the automatic quota (``AUTO_QUOTA_SIZE``: the store sizes it from the disk)."""
    settings = BucketSettings(QuotaType.FIFO, AUTO_QUOTA_SIZE, max_block_size=DEFAULT_MAX_BLOCK_SIZE,
                              max_block_records=DEFAULT_MAX_BLOCK_RECORDS)
    prefix = "RS_DEFAULTS_BUCKET_"
    if env.get(prefix + "QUOTA_TYPE"):
        try:
            settings = settings.merged(quota_type=QuotaType(env[prefix + "QUOTA_TYPE"].strip().upper()))
        except ValueError:
            raise ConfigError(f"{prefix}QUOTA_TYPE: must be NONE, FIFO or HARD") from None
        if settings.quota_type == QuotaType.NONE:
            settings = settings.merged(quota_size=0)
    if env.get(prefix + "QUOTA_SIZE"):
        settings = settings.merged(quota_size=parse_size(env[prefix + "QUOTA_SIZE"], prefix + "QUOTA_SIZE"))
    if env.get(prefix + "MAX_BLOCK_SIZE"):
        settings = settings.merged(max_block_size=parse_size(env[prefix + "MAX_BLOCK_SIZE"], prefix + "MAX_BLOCK_SIZE"))
    if env.get(prefix + "MAX_BLOCK_RECORDS"):
        settings = settings.merged(
            max_block_records=parse_int(env[prefix + "MAX_BLOCK_RECORDS"], prefix + "MAX_BLOCK_RECORDS", 1))
    return settings


SYSTEM_LOG_LEVELS = ("TRACE", "DEBUG", "INFO", "WARN", "WARNING", "ERROR", "OFF")


def _system_events(env: Mapping[str, str]) -> dict[str, object]:
    """``RS_SYSTEM_EVENTS_*``, ``RS_AUDIT_ENABLED`` and edge's own tunables of the ``$system`` writer."""
    out: dict[str, object] = {}
    get = env.get
    if get("RS_SYSTEM_EVENTS_ENABLED", "").strip():
        out["system_events_enabled"] = parse_bool(get("RS_SYSTEM_EVENTS_ENABLED", ""), "RS_SYSTEM_EVENTS_ENABLED")
    if get("RS_SYSTEM_EVENTS_QUOTA_SIZE", "").strip():
        out["system_events_quota_size"] = parse_size(get("RS_SYSTEM_EVENTS_QUOTA_SIZE", ""),
                                                      "RS_SYSTEM_EVENTS_QUOTA_SIZE")
    if get("RS_SYSTEM_EVENTS_LOG_LEVEL", "").strip():
        level = get("RS_SYSTEM_EVENTS_LOG_LEVEL", "").strip().upper()
        if level not in SYSTEM_LOG_LEVELS:
            raise ConfigError(f"RS_SYSTEM_EVENTS_LOG_LEVEL: '{level}' is not one of TRACE, DEBUG, INFO, WARN, ERROR, OFF")
        out["system_events_log_level"] = "WARN" if level == "WARNING" else level
    if get("RS_AUDIT_ENABLED", "").strip():
        out["audit_enabled"] = parse_bool(get("RS_AUDIT_ENABLED", ""), "RS_AUDIT_ENABLED")
    if get("EDGE_SYSTEM_EVENTS_QUEUE", "").strip():
        out["system_events_queue"] = parse_int(get("EDGE_SYSTEM_EVENTS_QUEUE", ""), "EDGE_SYSTEM_EVENTS_QUEUE", 1)
    for var, key, minimum in (("EDGE_AUDIT_FLUSH_S", "audit_flush_s", 0.1),
                              ("EDGE_USAGE_INTERVAL_S", "usage_interval_s", 0.5)):
        if get(var, "").strip():
            value = parse_float(get(var, ""), var)
            if value < minimum:
                raise ConfigError(f"{var}: must be >= {minimum}, got {value}")
            out[key] = value
    return out
