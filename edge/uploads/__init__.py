"""Resumable uploads (tus 1.0): the pure protocol and the synchronous staging area.

Owns: ``protocol`` (headers, Upload-Metadata, the state table; pure) and ``staging`` (the
upload folders under ``<data>/.edge/uploads/``; synchronous file I/O through ``store.files``).
Must not: import trio, ``edge.http`` or ``edge.services``: waiting, expiry on the Trio clock and
the hand-over to the store live in ``edge/services/uploads.py``, HTTP in ``edge/http/uploads.py``.
"""
