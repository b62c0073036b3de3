"""Replication to any ReductStore-API server: settings (pure), the durable transaction log
(synchronous, no trio) and a small Trio HTTP/1.1 client. The sender tasks and the registry live
in ``edge.services.replication``; the routes in ``edge.http.replications``.
"""
