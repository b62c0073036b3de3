"""``$system`` events as values (ReductStore 1.20+, ``/work/shared/spec/system-events.md``).

The pure half of the ``$system`` writer: what an event is and how it becomes a record
(``records``), the audit aggregation (``audit``) and the usage window (``usage``). The Trio half,
which owns the queue, the timers and the writes, is ``edge.services.system_events``.
Must not: import trio, HTTP or the store; do I/O.
"""
