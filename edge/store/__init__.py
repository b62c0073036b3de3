"""The synchronous storage engine; see docs/interfaces.md ("Storage").

Owns: the public names of the store. Must not: import trio, HTTP, services or query.
"""

from edge.store.bucket import Bucket
from edge.store.engine import Engine
from edge.store.entry import Entry, RecordRef, RecordWriter
from edge.store.files import Durability

__all__ = ["Engine", "Bucket", "Entry", "RecordRef", "RecordWriter", "Durability"]
