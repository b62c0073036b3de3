"""Attachments of the LiquidFiles FileLink API: the pure and synchronous halves.

Owns: content-type detection from the first bytes (``sniff``) and the staging area of uploads
in pieces (``staging``). An attachment, once complete, is an ordinary record of the attachments
bucket (``services.attachment_uploads`` writes it), so quotas, replication, the console and
queries see it like any other record.
Must not: import trio, edge.http or edge.services. Not to be confused with ReductStore's entry
attachments (``$meta`` entries, ``services/attachments.py``).
"""
