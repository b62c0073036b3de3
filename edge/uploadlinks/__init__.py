"""Upload links ("file requests"): a secret that lets someone without a token drop files into one entry.

Owns: the registry of upload links (``registry.py``). Must not: import trio, edge.http, edge.services
or edge.store; the tus engine enforces nothing here, it calls the service's hook.
"""

from .registry import UploadLink, UploadLinkRegistry, NOT_FOUND_TEXT

__all__ = ["UploadLink", "UploadLinkRegistry", "NOT_FOUND_TEXT"]
