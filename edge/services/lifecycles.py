"""Lifecycles (spec §14): settings, registry, provisioning and one periodic task each.

Owns: ``LifecycleSettings`` parsing with the spec's 422 texts, ``<data>/.edge/lifecycles.json``
(atomic), ``RS_LIFECYCLE_<ID>_*`` provisioning, and the runs: type ``delete`` removes the records
older than ``now - older_than`` of the selected entries (``$meta`` never; ``when`` if given),
``compress`` only counts (records are not recompressed: this store keeps payloads as written).
Modes: ``enabled`` removes, ``dry_run`` counts what it would remove, ``disabled`` does nothing.
A pass runs right after create / enable / update, then every ``interval``; after a restart the
next pass is due ``interval`` after ``last_run`` (a restart loop must not re-run every policy).
Must not: know HTTP; remove without the entry lock, or answer before the removal is durable
(each chunk: entry lock, remove, ``flush``, ``flusher.wait_durable``).

``interval`` must be >= 10m; ``EDGE_LIFECYCLE_MIN_INTERVAL_S`` lowers that bound for tests.
``processing_interval`` is validated and shown but not used to split a run: a run walks
everything older than the cutoff in bounded chunks (``CHUNK`` timestamps per lock hold).
"""

from __future__ import annotations

import json
import logging
import re
import time
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Mapping, TypedDict

import trio

from ..errors import AlreadyExistsError, ConfigError, ConflictError, EdgeError, InvalidInputError, NotFoundError, message_of
from ..formats.metadata import is_meta_entry
from ..query.select import select_entries
from ..query.when import compile_when
from ..query.when.values import parse_duration
from .. import blocking
from .. import durable
from ..store import files

if TYPE_CHECKING:
    from ..config import Config
    from ..durable import Damage
    from ..query.when.condition import Condition
    from ..store import Bucket, Engine, RecordRef
    from .storage import StorageService
    from .system_events import SystemEvents

log = logging.getLogger("edge.lifecycles")

TYPES = ("delete", "compress")
MODES = ("enabled", "disabled", "dry_run")
CHUNK = 10_000
HOUR_US = 3600 * 1_000_000


class LifecycleSettings(TypedDict):
    """A lifecycle's settings in their wire shape (``parse_lifecycle`` checked every field)."""

    type: str
    bucket: str
    entries: list[str]
    older_than: str
    interval: str
    processing_interval: str | None
    when: dict[str, object] | None   # a `when` condition: JSON, checked by compile_when
    mode: str


class LifecycleStats(TypedDict):
    runs: int
    last_matched: int
    last_removed: int
    total_removed: int
    last_error: str | None


def _rfc3339(dt: datetime | None) -> str | None:
    return None if dt is None else dt.isoformat().replace("+00:00", "Z")


def _duration_us(value: object, field_name: str) -> int:
    if not isinstance(value, str):
        raise InvalidInputError(f"Invalid lifecycle {field_name} '{value}': must be a duration string")
    d = parse_duration(value)
    if d is None:
        raise InvalidInputError(f"Invalid lifecycle {field_name} '{value}': invalid duration")
    return d.us


def parse_lifecycle(doc: object, *, min_interval_s: float = 600.0) -> LifecycleSettings:
    """A LifecycleSettings body -> normalised dict (the wire shape); 422 with the spec's texts."""
    if not isinstance(doc, dict):
        raise InvalidInputError("Invalid JSON: invalid type, expected struct LifecycleSettings")
    for key in ("type", "bucket", "older_than"):
        if doc.get(key) is None:
            raise InvalidInputError(f"Invalid JSON: missing field `{key}`")
    kind, mode = doc["type"], doc.get("mode") or "enabled"
    if kind not in TYPES:
        raise InvalidInputError(f"Invalid JSON: unknown variant `{kind}`, expected `delete` or `compress`")
    if mode not in MODES:
        raise InvalidInputError(f"Invalid JSON: unknown variant `{mode}`, expected `enabled`, `disabled` or `dry_run`")
    if not isinstance(doc["bucket"], str):
        raise InvalidInputError("Invalid JSON: invalid type, expected a string")
    entries = doc.get("entries") or []
    if not isinstance(entries, list) or not all(isinstance(e, str) for e in entries):
        raise InvalidInputError("Invalid JSON: invalid type, expected a sequence of strings")
    older = doc["older_than"]
    if _duration_us(older, "older_than") < HOUR_US:
        raise InvalidInputError(f"Lifecycle older_than '{older}' is shorter than minimum allowed value of 1h")
    interval = doc.get("interval") or "3600s"   # reduct-py sends null for "default"
    if _duration_us(interval, "interval") < min_interval_s * 1_000_000:
        raise InvalidInputError(f"Lifecycle interval '{interval}' is shorter than minimum allowed value of 10m")
    processing = doc.get("processing_interval")
    if processing is not None and _duration_us(processing, "processing_interval") <= 0:
        raise InvalidInputError(f"Invalid lifecycle processing_interval '{processing}': must be greater than 0")
    when = doc.get("when")
    if when is not None:
        if kind == "compress":
            raise InvalidInputError("Lifecycle type 'compress' does not support 'when' condition")
        if not isinstance(when, dict):
            raise InvalidInputError("Invalid lifecycle condition: Condition must be a JSON object")
        if "#ext" in when:
            raise InvalidInputError("Lifecycle 'when' condition does not support '#ext' directive")
        try:
            compile_when(when)
        except InvalidInputError as exc:
            raise InvalidInputError(f"Invalid lifecycle condition: {exc.message}") from None
    return {"type": kind, "bucket": doc["bucket"], "entries": list(entries), "older_than": older,
            "interval": interval, "processing_interval": processing, "when": when, "mode": mode}


_NAME_RE = re.compile(r"RS_LIFECYCLE_(.+)_NAME")


def parse_env_lifecycles(env: Mapping[str, str], min_interval_s: float = 600.0) -> dict[str, LifecycleSettings]:
    out: dict[str, LifecycleSettings] = {}
    for var in sorted(env):
        m = _NAME_RE.fullmatch(var)
        if not m or not env[var].strip():
            continue
        prefix, name = f"RS_LIFECYCLE_{m.group(1)}_", env[var].strip()
        get = lambda k: (env.get(prefix + k) or "").strip() or None  # noqa: E731
        doc: dict[str, object] = {"type": (get("TYPE") or "delete").lower(), "bucket": get("BUCKET"),
                               "older_than": get("OLDER_THAN"), "interval": get("INTERVAL"),
                               "processing_interval": get("PROCESSING_INTERVAL"),
                               "entries": [e.strip() for e in (get("ENTRIES") or "").split(",") if e.strip()],
                               "mode": (get("MODE") or "enabled").lower()}
        try:
            if (when := get("WHEN")) is not None:
                doc["when"] = json.loads(when)
            out[name] = parse_lifecycle(doc, min_interval_s=min_interval_s)
        except (ValueError, InvalidInputError) as exc:
            raise ConfigError(f"{prefix}*: lifecycle '{name}': {message_of(exc)}") from None
    return out


class _View:
    __slots__ = ("ts_us", "labels", "computed")

    def __init__(self, ref: RecordRef):
        self.ts_us, self.labels = ref.ts_us, ref.labels
        self.computed: dict[str, str] = {}


class Lifecycle:
    def __init__(self, name: str, settings: LifecycleSettings, provisioned: bool):
        self.name, self.settings, self.provisioned = name, settings, provisioned
        self.is_running = False
        self.last_run: datetime | None = None
        self.stats: LifecycleStats = {"runs": 0, "last_matched": 0, "last_removed": 0, "total_removed": 0,
                                      "last_error": None}
        self.scope: trio.CancelScope | None = None
        self.wake = trio.Event()
        self.damaged: str | None = None   # read from a damaged file: disabled until set again

    def info(self) -> dict:
        out = {"name": self.name, "is_provisioned": self.provisioned, "is_running": self.is_running,
               "type": self.settings["type"], "mode": self.settings["mode"], "last_run": _rfc3339(self.last_run)}
        if self.damaged is not None:
            out["damaged"] = self.damaged
        return out

    def detail(self) -> dict:
        return {"info": self.info(), "settings": dict(self.settings), "stats": dict(self.stats)}


class LifecycleService:
    def __init__(self, engine: Engine, storage: StorageService, config: Config, events: "SystemEvents | None" = None):
        self.engine, self.storage, self.config = engine, storage, config
        self.events = events    # a lifecycle_run event per pass into $system/lifecycle/<instance>/<name>
        env = dict(config.env)
        self.env = env
        self.min_interval_s = config.lifecycle_min_interval_s
        self.path = config.data_path / ".edge" / "lifecycles.json"
        self.lifecycles: dict[str, Lifecycle] = {}
        # From a damaged lifecycles.json, unreadable: name -> (reason, the old item or None).
        self.unreadable: dict[str, tuple[str, dict | None]] = {}
        self.damage: durable.Damage | None = None
        self.nursery: trio.Nursery | None = None
        self._writer = blocking.StateWriter(self._snapshot, self._write_file)

    @property
    def _nursery(self) -> trio.Nursery:
        """The service's nursery (set by its run); what is started here lives until shutdown."""
        if self.nursery is None:
            raise RuntimeError("the %s service is not running" % type(self).__name__)
        return self.nursery

    # --- registry ---------------------------------------------------------------------------

    def load(self) -> list[str]:
        """Registry + provisioning. A damaged ``lifecycles.json`` never stops start-up: it is
        set aside; lifecycles still readable in it are kept *disabled and damaged* (they remove
        nothing), unreadable ones are listed only, until someone sets them again (PUT, PATCH
        mode) or removes them."""
        lines = []
        reg = durable.load_list_registry(self.path, "lifecycles")
        self.damage = reg.damage
        if reg.damage is not None:
            lines.append(f"{reg.damage.describe()}: its lifecycles are paused")
        for doc in reg.docs:
            try:
                lc = Lifecycle(doc["name"], parse_lifecycle(doc["settings"], min_interval_s=0.0),
                               bool(doc.get("provisioned")))
                if doc.get("last_run"):
                    lc.last_run = datetime.fromisoformat(doc["last_run"].replace("Z", "+00:00"))
            except (EdgeError, KeyError, TypeError, ValueError, AttributeError) as exc:
                reg.suspect.append((doc["name"], f"unreadable settings: {message_of(exc)}", doc))
                continue
            self.lifecycles[lc.name] = lc
        for name, reason, old in reg.suspect:
            try:
                settings = parse_lifecycle(old["settings"], min_interval_s=0.0)  # type: ignore[index]
            except (EdgeError, KeyError, TypeError, AttributeError):
                self.unreadable[name] = (reason, old)
                lines.append(f"lifecycle '{name}' is damaged ({reason}); listed, not run")
                continue
            lc = Lifecycle(name, {**settings, "mode": "disabled"}, False)
            lc.damaged = reason
            self.lifecycles[name] = lc
            lines.append(f"lifecycle '{name}' is damaged ({reason}); disabled until set again")
        wanted = parse_env_lifecycles(self.env, self.min_interval_s)
        for name, settings in wanted.items():
            self.unreadable.pop(name, None)
            existing = self.lifecycles.get(name)
            if existing is None:
                self.lifecycles[name] = Lifecycle(name, settings, True)
            else:
                existing.settings, existing.provisioned, existing.damaged = settings, True, None
            lines.append(f"Provisioned lifecycle '{name}'")
        for name, lc in self.lifecycles.items():
            if lc.provisioned and name not in wanted:
                lc.provisioned = False
        self._save_now()
        return lines

    async def _save(self) -> None:
        """Write the registry in a worker thread (edge.blocking), newest state last."""
        await self._writer.save()

    def _save_now(self) -> None:   # start-up, before anything is served
        self._write_file(self._snapshot())

    def _write_file(self, data: bytes) -> None:
        with files.translate_errors():
            durable.write_state(self.path, data, mode=0o644)

    def _snapshot(self) -> bytes:
        docs = []
        for lc in self.lifecycles.values():
            doc = {"name": lc.name, "provisioned": lc.provisioned, "settings": lc.settings,
                   "last_run": _rfc3339(lc.last_run)}
            docs.append(doc if lc.damaged is None else durable.suspect_record(lc.name, lc.damaged, doc))
        docs += [durable.suspect_record(n, reason, doc) for n, (reason, doc) in self.unreadable.items()]
        return json.dumps({"lifecycles": docs}, indent=1).encode()

    def get(self, name: str) -> Lifecycle:
        lc = self.lifecycles.get(name)
        if lc is None:
            if name in self.unreadable:
                raise ConflictError(f"Lifecycle '{name}' was read from a damaged lifecycles.json "
                                    f"({self.unreadable[name][0]}): its settings are lost; set them again "
                                    "(PUT) or remove it")
            raise NotFoundError(f"Lifecycle '{name}' does not exist")
        return lc

    def check_exists(self, name: str) -> None:
        """404 unless ``name`` is a lifecycle, healthy or damaged (PUT and DELETE mend those)."""
        if name not in self.lifecycles and name not in self.unreadable:
            raise NotFoundError(f"Lifecycle '{name}' does not exist")

    def _parse(self, name: str, doc: object) -> LifecycleSettings:
        settings = parse_lifecycle(doc, min_interval_s=self.min_interval_s)
        try:
            self.engine.get_bucket(settings["bucket"])
        except NotFoundError:
            raise NotFoundError(f"Bucket '{settings['bucket']}' for lifecycle '{name}' does not exist") from None
        return settings

    async def create(self, name: str, doc: object) -> None:
        if name in self.lifecycles:
            raise AlreadyExistsError(f"Lifecycle '{name}' already exists")
        lc = Lifecycle(name, self._parse(name, doc), False)
        self.lifecycles[name] = lc
        await self._save()
        await self._nursery.start(self.run_lifecycle, lc)

    async def update(self, name: str, doc: object) -> None:
        if name in self.unreadable:   # lost settings, set again
            lc = Lifecycle(name, self._parse(name, doc), False)
            self.lifecycles[name] = lc
            del self.unreadable[name]
            await self._save()
            await self._nursery.start(self.run_lifecycle, lc)
            return
        lc = self.get(name)
        if lc.provisioned:
            raise ConflictError(f"Can't update provisioned lifecycle '{name}'")
        lc.settings = self._parse(name, doc)
        lc.damaged = None
        await self._save()
        if lc.scope is not None:
            lc.scope.cancel()
        await self._nursery.start(self.run_lifecycle, lc)

    async def set_mode(self, name: str, mode: str) -> None:
        lc = self.get(name)
        changed = lc.settings["mode"] != mode
        lc.settings = {**lc.settings, "mode": mode}
        lc.damaged = None   # a human looked at it and chose
        await self._save()
        if changed:
            lc.wake.set()   # enabling (or dry_run) runs a pass at once

    async def remove(self, name: str) -> None:
        if name in self.unreadable:
            del self.unreadable[name]
            await self._save()
            return
        lc = self.get(name)
        if lc.provisioned:
            raise ConflictError(f"Can't remove provisioned lifecycle '{name}'")
        if lc.scope is not None:
            lc.scope.cancel()
        del self.lifecycles[name]
        await self._save()

    def list_info(self) -> list[dict]:
        lost = [{"name": n, "is_provisioned": False, "is_running": False, "type": (doc or {}).get("settings", {}).get("type"),
                 "mode": "disabled", "last_run": None, "damaged": reason}
                for n, (reason, doc) in self.unreadable.items()]
        return [lc.info() for lc in self.lifecycles.values()] + lost

    # --- runs -------------------------------------------------------------------------------

    def _due_in_s(self, lc: Lifecycle) -> float:
        """Seconds until the next pass after a restart: a restart does not re-run a pass early."""
        if lc.last_run is None:
            return 0.0
        interval_s = _duration_us(lc.settings["interval"], "interval") / 1_000_000
        return max(0.0, interval_s - (datetime.now(timezone.utc) - lc.last_run).total_seconds())

    async def run_lifecycle(self, lc: Lifecycle, at_start: bool = False, *,
                            task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        with trio.CancelScope() as scope:
            lc.scope = scope
            task_status.started()
            if at_start and lc.settings["mode"] != "disabled":
                with trio.move_on_after(self._due_in_s(lc)):
                    await lc.wake.wait()
            while True:
                lc.wake = trio.Event()
                if lc.settings["mode"] != "disabled":
                    await self.run_once(lc)
                    interval_s = _duration_us(lc.settings["interval"], "interval") / 1_000_000
                else:
                    interval_s = float("inf")
                with trio.move_on_after(interval_s):
                    await lc.wake.wait()

    async def run_once(self, lc: Lifecycle) -> int:
        """One pass; returns the number of records removed (or that would be, in dry_run)."""
        s = lc.settings
        lc.is_running = True
        matched = removed = 0
        blocks: set[tuple[str, int]] = set()
        last_ts: int | None = None
        error: str | None = None
        started = time.monotonic()
        try:
            bucket = self.engine.get_bucket(s["bucket"])
            cutoff = int(datetime.now(timezone.utc).timestamp() * 1_000_000) - _duration_us(s["older_than"], "older_than")
            template = compile_when(s["when"])[0] if s.get("when") else None
            names = [n for n in select_entries(s["entries"] or None, bucket.entry_names(include_meta=True))
                     if not is_meta_entry(n)]
            really = s["type"] == "delete" and s["mode"] == "enabled"
            for name in names:
                cond = template.clone_fresh() if template is not None else None
                m, r, entry_blocks, entry_last = await self._process_entry(bucket, s["bucket"], name, cutoff,
                                                                           cond, really)
                matched += m
                removed += r
                blocks.update((name, b) for b in entry_blocks)
                if entry_last is not None:
                    last_ts = entry_last if last_ts is None else max(last_ts, entry_last)
            lc.stats["last_error"] = None
        except EdgeError as exc:
            error = exc.message
            lc.stats["last_error"] = exc.message
            log.warning("lifecycle '%s': %s", lc.name, exc.message)
        finally:
            lc.is_running = False
            lc.last_run = datetime.now(timezone.utc)
            lc.stats["runs"] += 1
            lc.stats["last_matched"] = matched
            lc.stats["last_removed"] = removed
            lc.stats["total_removed"] += removed
            with trio.CancelScope(shield=True):   # a pass that ran is recorded, even at shutdown
                await self._save()
            if self.events is not None:
                self.events.lifecycle_run(lc.name, s["type"], s["bucket"], time.monotonic() - started,
                                          removed if s["mode"] == "enabled" else matched, len(blocks), last_ts,
                                          error is None, error)
        return removed if s["mode"] == "enabled" else matched

    async def _process_entry(self, bucket: Bucket, bucket_name: str, name: str, cutoff: int, cond: Condition | None,
                             really: bool) -> tuple[int, int, set[int], int | None]:
        """(matched, removed, ids of the blocks they were in, the last timestamp processed)."""
        matched = removed = 0
        blocks: set[int] = set()
        processed: int | None = None
        start: int | None = None
        while True:
            durability = None
            async with self.storage.entry_lock(bucket_name, name):
                try:
                    entry = bucket.get_entry(name)
                except NotFoundError:
                    return matched, removed, blocks, processed
                stamps, last = [], None
                for ref in entry.iter_refs(start, cutoff):
                    last = ref.ts_us
                    if cond is None or cond.evaluate(_View(ref)):
                        stamps.append(ref.ts_us)
                        blocks.add(ref.block_id)
                    if len(stamps) >= CHUNK:
                        break
                matched += len(stamps)
                if really:
                    for ts in stamps:
                        try:
                            entry.remove_record(ts)
                            removed += 1
                        except NotFoundError:
                            pass
                    if stamps:
                        durability = entry.flush()
            if durability is not None:
                await self.storage.flusher.wait_durable(durability)
            if last is not None:
                processed = last
            if last is None or len(stamps) < CHUNK:
                return matched, removed, blocks, processed
            start = last + 1
            await trio.sleep(0)

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        async with trio.open_nursery() as nursery:
            self.nursery = nursery
            for lc in list(self.lifecycles.values()):
                await nursery.start(self.run_lifecycle, lc, True)
            task_status.started()
            await trio.sleep_forever()


async def start(nursery: trio.Nursery, engine: Engine, storage: StorageService, config: Config,
                events: SystemEvents | None, damaged: list[Damage]) -> LifecycleService:
    """Room starter: registry + provisioning, then the periodic tasks."""
    service = LifecycleService(engine, storage, config, events=events)
    for line in service.load():
        log.info("lifecycles: %s", line)
    if service.damage is not None:
        damaged.append(service.damage)
        log.error("lifecycles: %s", service.damage.describe())
    await nursery.start(service.run)
    return service
