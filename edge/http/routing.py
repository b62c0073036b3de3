"""Route patterns: from a request path to a handler and its path parameters.

Owns: the pattern syntax and matching, including ReductStore's entry-path rules (an entry name
may contain ``/``; a trailing ``/batch``, ``/q`` or ``/rename`` selects a sub-resource only if
something remains before it, spec §1.1).
Must not: know handlers' behaviour, authorise, or touch storage.

Pattern syntax: ``b/{bucket}/{entry+}/batch`` — ``{name}`` is one segment, ``{name+}`` one or
more segments (greedy, but leaving room for the literal tail).

``accepts``: when one URL means two things told apart by the request (``links/<x>`` is a link's
details or a download, by its query), each meaning is its own route with a predicate over the
request and the path parameters. A route whose predicate says no is skipped. So every answer is
made by the handler named in the table, and metrics label it by that name.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Awaitable, Callable

from ..server.types import Request, Response

# ``async def handler(req, ctx, **path_params) -> Response``: the parameters differ per route.
Handler = Callable[..., Awaitable[Response]]


Accepts = Callable[[Request, dict[str, str]], bool]


@dataclass(frozen=True)
class Route:
    method: str
    pattern: str
    handler: Handler
    accepts: Accepts | None = None


def _compile(pattern: str) -> re.Pattern[str]:
    parts = []
    for segment in pattern.split("/"):
        if segment.startswith("{") and segment.endswith("+}"):
            parts.append(f"(?P<{segment[1:-2]}>.+)")
        elif segment.startswith("{") and segment.endswith("}"):
            parts.append(f"(?P<{segment[1:-1]}>[^/]+)")
        else:
            parts.append(re.escape(segment))
    return re.compile("^" + "/".join(parts) + "$")


class Router:
    """Routes are tried in registration order; register specific patterns before general ones."""

    def __init__(self, routes: list[Route]):
        self._routes = [(r.method, _compile(r.pattern), r.handler, r.accepts) for r in routes]

    def match(self, method: str, path: str, request: Request | None = None) -> tuple[Handler | None, dict[str, str], bool]:
        """Return (handler, params, path_known). ``path_known`` without a handler means 405.
        Routes with ``accepts`` are considered only when ``request`` is given and accepted."""
        known = False
        fallback: tuple[Handler, dict[str, str]] | None = None
        for route_method, regex, handler, accepts in self._routes:
            m = regex.match(path)
            if m is None:
                continue
            known = True
            params = m.groupdict()
            if accepts is not None and (request is None or not accepts(request, params)):
                continue
            if route_method == method:
                return handler, params, True
            if method == "HEAD" and route_method == "GET" and fallback is None:
                fallback = (handler, params)
        if fallback is not None:
            return fallback[0], fallback[1], True
        return None, {}, known
