"""Query plans: legacy URL parameters and the QueryEntry JSON body become one ``QueryPlan``.

Owns: the validation of every query-creation input (spec §9.2, §9.4, §8.5) with the spec's 422
texts, the defaults (ttl 60 s, stop = latest + 1 is decided later by the cursor), and compiling
``when`` once at creation so syntax errors are 422 before an id is handed out.
Must not: touch storage, resolve entry patterns (``select.py``), keep per-entry state (the
compiled condition is stateful; the cursor clones one per entry), import trio or HTTP.

Why one plan for both inputs: after parsing there is a single code path (anchors §7.7), so the
legacy ``GET /q?include-x=1`` and ``POST /q {"include": {"x": "1"}}`` cannot drift apart.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field, replace
from typing import Iterable, Mapping, TypedDict

from edge.errors import InvalidInputError
from edge.query.when import Directives, compile_when, legacy_condition

DEFAULT_TTL_S = 60  # spec §9.5
U64_MAX = 2**64 - 1
QUERY, REMOVE = "QUERY", "REMOVE"
EMPTY_REMOVE = "Define at least one query parameter to delete records"


@dataclass(frozen=True)
class QueryPlan:
    kind: str = QUERY
    entries: tuple[str, ...] | None = None        # io queries only; raw patterns (select.py)
    start_us: int | None = None                   # inclusive
    stop_us: int | None = None                    # exclusive; None = latest + 1 at creation
    ttl_s: int = DEFAULT_TTL_S
    only_metadata: bool = False
    continuous: bool = False
    strict: bool = False
    when: Mapping[str, object] | None = None      # raw JSON; compiled per entry by the cursor
    ext: Mapping[str, object] | None = None       # raw JSON: only its keys are read (extension names)
    include: Mapping[str, str] = field(default_factory=dict)
    exclude: Mapping[str, str] = field(default_factory=dict)
    each_s: float | None = None
    each_n: int | None = None
    limit: int | None = None
    directives: Directives = field(default_factory=Directives)

    @property
    def has_filter(self) -> bool:
        """Whether a remove query says *which* records; an unrestricted one is refused (§8.5)."""
        return any(v is not None for v in (self.start_us, self.stop_us, self.when, self.each_s,
                                            self.each_n, self.limit)) or bool(self.include or self.exclude)

    def conditions(self):
        """Fresh (legacy, when) conditions for one entry: stateful operators count per entry."""
        legacy = legacy_condition(dict(self.include) or None, dict(self.exclude) or None,
                                  self.each_n, self.each_s, self.limit)
        cond, _ = compile_when(dict(self.when) if self.when is not None else None, strict=self.strict)
        return legacy, cond


def _check_range(plan: QueryPlan) -> QueryPlan:
    if (not plan.continuous and plan.start_us is not None and plan.stop_us is not None
            and plan.start_us > plan.stop_us):
        raise InvalidInputError("Start time must be before stop time")
    # Compile now: a bad `when` or legacy value is a 422 at creation, never at the first read.
    _, directives = compile_when(dict(plan.when) if plan.when is not None else None, strict=plan.strict)
    plan.conditions()
    return replace(plan, directives=directives)


# --- legacy URL parameters (§9.4) ------------------------------------------------------------


def _u64(text: str, error: str) -> int:
    text = text.strip()
    if not text or not text.isascii() or not text.isdigit() or int(text) > U64_MAX:
        raise InvalidInputError(error)
    return int(text)


def _bool(text: str, error: str) -> bool:
    value = text.strip().lower()
    if value in ("true", "1"):
        return True
    if value in ("false", "0"):
        return False
    raise InvalidInputError(error)


class _ParamValues(TypedDict, total=False):
    """The plan fields the URL parameters set (the others keep their defaults)."""
    start_us: int
    stop_us: int
    ttl_s: int
    continuous: bool
    each_s: float
    each_n: int
    limit: int


def plan_from_params(items: Iterable[tuple[str, str]], kind: str = QUERY) -> QueryPlan:
    """``GET/DELETE /b/{b}/{e}/q?...``. Unknown parameters are ignored, like upstream."""
    values: _ParamValues = {}
    include: dict[str, str] = {}
    exclude: dict[str, str] = {}
    for name, text in items:
        if name == "start":
            values["start_us"] = _u64(text, "'start' must be an unix timestamp in microseconds")
        elif name == "stop":
            values["stop_us"] = _u64(text, "'stop' must be an unix timestamp in microseconds")
        elif name == "ttl":
            values["ttl_s"] = _u64(text, "'ttl' must be in seconds as an unsigned integer")
        elif name == "continuous":
            values["continuous"] = _bool(text, "'continue' must be a bool value")
        elif name.startswith("include-") and len(name) > len("include-"):
            include[name[len("include-"):]] = text
        elif name.startswith("exclude-") and len(name) > len("exclude-"):
            exclude[name[len("exclude-"):]] = text
        elif name == "each_s":
            try:
                each_s = float(text.strip())
            except ValueError:
                raise InvalidInputError("'each_s' must be a number of seconds") from None
            if not each_s > 0 or math.isinf(each_s):
                raise InvalidInputError("Time must be greater than 0 seconds")
            values["each_s"] = each_s
        elif name == "each_n":
            each_n = _u64(text, "'each_n' must be an unsigned integer")
            if each_n == 0:
                raise InvalidInputError("'each_n' must be greater than 0")
            values["each_n"] = each_n
        elif name == "limit":
            values["limit"] = _u64(text, "'limit' must be an unsigned integer")
    plan = QueryPlan(kind=kind, include=include, exclude=exclude, **values)
    if kind == REMOVE:
        # Remove queries never continue (§9.2); an unrestricted DELETE would wipe the entry.
        plan = replace(plan, continuous=False)
        if not plan.has_filter:
            raise InvalidInputError(EMPTY_REMOVE)
    return _check_range(plan)


# --- QueryEntry JSON (§9.2) ------------------------------------------------------------------


def _describe(value: object) -> str:
    """serde_json's wording for the value it found, which upstream puts in the 422 text."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"boolean `{str(value).lower()}`"
    if isinstance(value, int):
        return f"integer `{value}`"
    if isinstance(value, float):
        return f"floating point `{value}`"
    if isinstance(value, str):
        return f"string {json.dumps(value)}"
    if isinstance(value, list):
        return "sequence"
    return "map"


def _type_error(value: object, expected: str) -> InvalidInputError:
    return InvalidInputError(f"Invalid JSON: invalid type: {_describe(value)}, expected {expected}")


def _opt_u64(doc: Mapping[str, object], key: str) -> int | None:
    value = doc.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise _type_error(value, "u64")
    if not 0 <= value <= U64_MAX:
        raise InvalidInputError(f"Invalid JSON: invalid value: integer `{value}`, expected u64")
    return value


def _opt_bool(doc: Mapping[str, object], key: str) -> bool | None:
    value = doc.get(key)
    if value is None or isinstance(value, bool):
        return value
    raise _type_error(value, "a boolean")


def _opt_labels(doc: Mapping[str, object], key: str) -> dict[str, str]:
    value = doc.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise _type_error(value, "a map")
    for v in value.values():
        if not isinstance(v, str):
            raise _type_error(v, "a string")
    return dict(value)


def plan_from_json(doc: object) -> QueryPlan:
    """A parsed QueryEntry body. Unknown fields are ignored; ``null`` means "not given"."""
    if not isinstance(doc, dict):
        raise _type_error(doc, "struct QueryEntry")
    if "query_type" not in doc:
        raise InvalidInputError("Invalid JSON: missing field `query_type`")
    kind = doc["query_type"]
    if kind not in (QUERY, REMOVE):
        if isinstance(kind, str):
            raise InvalidInputError(f"Invalid JSON: unknown variant `{kind}`, expected `QUERY` or `REMOVE`")
        raise _type_error(kind, "variant identifier")

    entries = doc.get("entries")
    if entries is not None:
        if not isinstance(entries, list):
            raise _type_error(entries, "a sequence")
        for name in entries:
            if not isinstance(name, str):
                raise _type_error(name, "a string")
        entries = tuple(entries)

    when = doc.get("when")
    if when is not None and not isinstance(when, dict):
        raise _type_error(when, "a map")
    ext = doc.get("ext")
    if ext is not None and not isinstance(ext, dict):
        raise _type_error(ext, "a map")

    each_s = doc.get("each_s")
    if each_s is not None:
        if isinstance(each_s, bool) or not isinstance(each_s, (int, float)):
            raise _type_error(each_s, "f64")
        each_s = float(each_s)
    each_n = _opt_u64(doc, "each_n")
    ttl = _opt_u64(doc, "ttl")

    plan = QueryPlan(
        kind=kind,
        entries=entries,
        start_us=_opt_u64(doc, "start"),
        stop_us=_opt_u64(doc, "stop"),
        ttl_s=DEFAULT_TTL_S if ttl is None else ttl,
        only_metadata=bool(_opt_bool(doc, "only_metadata")),
        continuous=bool(_opt_bool(doc, "continuous")) and kind == QUERY,
        strict=bool(_opt_bool(doc, "strict")),
        when=when,
        ext=ext or None,
        include=_opt_labels(doc, "include"),
        exclude=_opt_labels(doc, "exclude"),
        each_s=each_s,
        each_n=each_n,
        limit=_opt_u64(doc, "limit"),
    )
    if kind == REMOVE and not plan.has_filter:
        raise InvalidInputError(EMPTY_REMOVE)
    return _check_range(plan)


def extension_names(plan: QueryPlan) -> list[str]:
    """Extensions a query asks for (``ext`` keys and ``#ext`` steps); we have none (§8.5)."""
    names: list[str] = list(plan.ext or {})
    ext = plan.directives.ext
    for step in ([ext] if isinstance(ext, dict) else ext or []):
        names.extend(step)
    return names
