"""Replication settings (spec §13.2, §16.2): parse, validate, serialise, provision from env.

Owns: ``ReplicationSettings`` (the wire document as a value), ``parse_settings`` (JSON -> value
with the spec's 422 texts), ``to_wire`` (``dst_token`` always null), the conversion of the
legacy (<= 1.20) ``include``/``exclude``/``each_n``/``each_s`` filters into ``when``, and
``parse_env_replications`` (``RS_REPLICATION_<ID>_*``).
Must not: touch the store, the network or trio; check that buckets exist (the service does,
because only it knows the engine). Pure: stdlib + edge.errors + edge.query.when.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, replace
from typing import Mapping
from urllib.parse import urlsplit

from ..envparse import parse_bool, parse_float, parse_int
from ..errors import ConfigError, InvalidInputError, message_of
from ..query.when import compile_when

MODES = ("enabled", "paused", "disabled")
COMPRESSIONS = ("none", "zstd", "gzip")


@dataclass(frozen=True)
class ReplicationSettings:
    src_bucket: str
    dst_bucket: str
    dst_host: str
    dst_token: str | None = None
    entries: tuple[str, ...] = ()
    dst_prefix: str = ""
    when: dict | None = None
    mode: str = "enabled"
    compression: str = "none"

    def with_mode(self, mode: str) -> "ReplicationSettings":
        return replace(self, mode=mode)

    def dst_entry(self, entry: str) -> str:
        """``<prefix without surrounding />/<entry>`` (spec §13.2)."""
        prefix = self.dst_prefix.strip("/")
        return f"{prefix}/{entry}" if prefix else entry


def _describe(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"boolean `{str(value).lower()}`"
    if isinstance(value, (int, float)):
        return f"integer `{value}`" if isinstance(value, int) else f"floating point `{value}`"
    if isinstance(value, str):
        return f"string {json.dumps(value)}"
    return "sequence" if isinstance(value, list) else "map"


def _type_error(value: object, expected: str) -> InvalidInputError:
    return InvalidInputError(f"Invalid JSON: invalid type: {_describe(value)}, expected {expected}")


def _string(doc: Mapping[str, object], key: str, default: str | None = None, *, required: bool = False) -> str | None:
    if key not in doc or doc[key] is None:
        if required:
            raise InvalidInputError(f"Invalid JSON: missing field `{key}`")
        return default
    value = doc[key]
    if not isinstance(value, str):
        raise _type_error(value, "a string")
    return value


def _required_string(doc: Mapping[str, object], key: str) -> str:
    value = _string(doc, key, required=True)
    assert value is not None  # _string raised for a missing required field
    return value


def _variant(doc: Mapping[str, object], key: str, allowed: tuple[str, ...]) -> str:
    value = _string(doc, key, allowed[0])
    if value not in allowed:
        expected = " or ".join(f"`{a}`" for a in allowed)
        raise InvalidInputError(f"Invalid JSON: unknown variant `{value}`, expected {expected}")
    return value


def check_host(url: str) -> None:
    parts = urlsplit(url)
    try:
        port_ok = parts.port is None or parts.port > 0
    except ValueError:
        port_ok = False
    if parts.scheme not in ("http", "https") or not parts.hostname or not port_ok:
        raise InvalidInputError(f"Invalid destination host '{url}'")


def _escape(value: str) -> str:
    return "$" + value if value.startswith("$") else value


def _label_eq(label: str, value: str) -> dict:
    # Both sides as strings: labels "1" and "true" would otherwise compare as Int/Bool.
    return {"$eq": [{"$cast": [f"&{label}", "string"]}, {"$cast": [_escape(value), "string"]}]}


def legacy_to_when(include: Mapping[str, object] | None, exclude: Mapping[str, object] | None,
                   each_n: int | None, each_s: float | None, when: dict | None) -> dict | None:
    """The <= 1.20 filters as one ``when`` object (AND-ed in front of an explicit ``when``).

    include: every label must have the value; exclude: drop a record having *all* the values
    (a record without one of the labels is kept, hence the ``$exists`` guard in the ``$and``).
    each_n keeps the n-th, 2n-th ... record (``$each_n``); legacy kept the 1st, (n+1)th ... - the
    same rate, shifted by one record, which is what matters for thinning a stream.
    """
    parts: list[dict] = []
    for k, v in (include or {}).items():
        parts.append({"$and": [{"$exists": [k]}, _label_eq(k, str(v))]})
    if exclude:
        guard: list[object] = [{"$exists": list(exclude)}]
        guard += [_label_eq(k, str(v)) for k, v in exclude.items()]
        parts.append({"$not": [{"$and": guard}]})
    if each_s is not None:
        if not each_s > 0:
            raise InvalidInputError("Time must be greater than 0 seconds")
        parts.append({"$each_t": each_s})
    if each_n is not None:
        if each_n <= 0:
            raise InvalidInputError("'each_n' must be greater than 0")
        parts.append({"$each_n": each_n})
    if not parts:
        return when
    if when:
        parts.append(when)
    return {"$and": parts} if len(parts) > 1 else parts[0]


def check_when(when: object) -> None:
    if when is None:
        return
    if not isinstance(when, dict):
        raise InvalidInputError("Invalid replication condition: Condition must be a JSON object")
    try:
        compile_when(when)
    except InvalidInputError as exc:
        raise InvalidInputError(f"Invalid replication condition: {exc.message}") from None


def parse_settings(doc: object, *, previous: ReplicationSettings | None = None) -> ReplicationSettings:
    """A ReplicationSettings body -> value; 422 ``Invalid JSON: ...`` / spec texts.

    ``previous`` (PUT): a null ``dst_token`` keeps the stored token (spec §13.2).
    """
    if not isinstance(doc, dict):
        raise _type_error(doc, "struct ReplicationSettings")
    src = _required_string(doc, "src_bucket")
    dst = _required_string(doc, "dst_bucket")
    host = _required_string(doc, "dst_host")
    token = _string(doc, "dst_token")
    if token is None and previous is not None:
        token = previous.dst_token
    entries = doc.get("entries")
    if entries is None:
        entries = []
    if not isinstance(entries, list) or not all(isinstance(e, str) for e in entries):
        raise _type_error(entries, "a sequence of strings")
    when = doc.get("when")
    if when is not None and not isinstance(when, dict):
        raise InvalidInputError("Invalid replication condition: Condition must be a JSON object")
    legacy = {k: doc.get(k) for k in ("include", "exclude", "each_n", "each_s")}
    if any(v is not None for v in legacy.values()):
        for key in ("include", "exclude"):
            if legacy[key] is not None and not isinstance(legacy[key], dict):
                raise _type_error(legacy[key], "a map")
        if legacy["each_n"] is not None and (isinstance(legacy["each_n"], bool) or not isinstance(legacy["each_n"], int)):
            raise _type_error(legacy["each_n"], "u64")
        if legacy["each_s"] is not None and (isinstance(legacy["each_s"], bool)
                                             or not isinstance(legacy["each_s"], (int, float))):
            raise _type_error(legacy["each_s"], "f64")
        when = legacy_to_when(legacy["include"], legacy["exclude"], legacy["each_n"], legacy["each_s"], when)
    settings = ReplicationSettings(
        src_bucket=src, dst_bucket=dst, dst_host=host, dst_token=token, entries=tuple(entries),
        dst_prefix=_string(doc, "dst_prefix", "") or "", when=when,
        mode=_variant(doc, "mode", MODES), compression=_variant(doc, "compression", COMPRESSIONS))
    check_host(settings.dst_host)
    check_when(settings.when)
    return settings


def to_wire(settings: ReplicationSettings) -> dict[str, object]:
    """The settings as GET shows them: the token is never returned."""
    return {"src_bucket": settings.src_bucket, "dst_bucket": settings.dst_bucket, "dst_host": settings.dst_host,
            "dst_token": None, "entries": list(settings.entries), "dst_prefix": settings.dst_prefix,
            "when": settings.when, "mode": settings.mode, "compression": settings.compression}


def to_record(settings: ReplicationSettings) -> dict[str, object]:
    """The settings as the registry file keeps them (with the token)."""
    doc = to_wire(settings)
    doc["dst_token"] = settings.dst_token
    return doc


# --- provisioning --------------------------------------------------------------------------

_NAME_RE = re.compile(r"RS_REPLICATION_(.+)_NAME")
_FIELDS = ("SRC_BUCKET", "DST_BUCKET", "DST_HOST", "DST_TOKEN", "ENTRIES", "WHEN", "MODE", "DST_PREFIX",
           "COMPRESSION", "EACH_N", "EACH_S")


def parse_env_replications(env: Mapping[str, str]) -> dict[str, ReplicationSettings]:
    """``RS_REPLICATION_<ID>_*`` -> {name: settings}; ``ConfigError`` naming the variable."""
    out: dict[str, ReplicationSettings] = {}
    for var in sorted(env):
        m = _NAME_RE.fullmatch(var)
        if not m or not env[var].strip():
            continue
        ident = m.group(1)
        prefix = f"RS_REPLICATION_{ident}_"
        name = env[var].strip()
        values = {f: env[prefix + f].strip() for f in _FIELDS if env.get(prefix + f, "").strip()}
        include = {k[len(prefix + "INCLUDE_"):]: v for k, v in env.items() if k.startswith(prefix + "INCLUDE_")}
        exclude = {k[len(prefix + "EXCLUDE_"):]: v for k, v in env.items() if k.startswith(prefix + "EXCLUDE_")}
        for required in ("SRC_BUCKET", "DST_BUCKET", "DST_HOST"):
            if required not in values:
                raise ConfigError(f"{prefix}{required} is required for replication '{name}'")
        doc: dict[str, object] = {"src_bucket": values["SRC_BUCKET"], "dst_bucket": values["DST_BUCKET"],
                               "dst_host": values["DST_HOST"], "dst_token": values.get("DST_TOKEN"),
                               "dst_prefix": values.get("DST_PREFIX", ""),
                               "entries": [e.strip() for e in values.get("ENTRIES", "").split(",") if e.strip()],
                               "mode": values.get("MODE", "enabled").lower(),
                               "compression": values.get("COMPRESSION", "none").lower(),
                               "include": include or None, "exclude": exclude or None}
        try:
            if "WHEN" in values:
                doc["when"] = json.loads(values["WHEN"])
            if "EACH_N" in values:
                doc["each_n"] = int(values["EACH_N"])
            if "EACH_S" in values:
                doc["each_s"] = float(values["EACH_S"])
            out[name] = parse_settings(doc)
        except (ValueError, InvalidInputError) as exc:
            raise ConfigError(f"{prefix}*: replication '{name}': {message_of(exc)}") from None
    return out


__all__ = ["ReplicationSettings", "parse_settings", "to_wire", "to_record", "parse_env_replications",
           "legacy_to_when", "check_host", "check_when", "MODES", "COMPRESSIONS"]


@dataclass(frozen=True)
class ReplicationRoomSettings:
    """The replication room's server-wide settings (a replication's own are ``ReplicationSettings``)."""

    timeout_s: float = 5.0          # RS_REPLICATION_TIMEOUT: one request to a destination
    log_size: int = 1_000_000       # RS_REPLICATION_LOG_SIZE: events a transaction log keeps
    verify_ssl: bool = True         # RS_REPLICATION_VERIFY_SSL
    ca_path: str | None = None      # RS_REPLICATION_CA_PATH: extra trust anchor (PEM)

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> "ReplicationRoomSettings":
        values: dict[str, object] = {}
        if env.get("RS_REPLICATION_TIMEOUT", "").strip():
            values["timeout_s"] = parse_float(env["RS_REPLICATION_TIMEOUT"], "RS_REPLICATION_TIMEOUT")
        if env.get("RS_REPLICATION_LOG_SIZE", "").strip():
            values["log_size"] = parse_int(env["RS_REPLICATION_LOG_SIZE"], "RS_REPLICATION_LOG_SIZE", 1)
        if env.get("RS_REPLICATION_VERIFY_SSL", "").strip():
            values["verify_ssl"] = parse_bool(env["RS_REPLICATION_VERIFY_SSL"], "RS_REPLICATION_VERIFY_SSL")
        values["ca_path"] = env.get("RS_REPLICATION_CA_PATH") or None
        return cls(**values)  # type: ignore[arg-type]
