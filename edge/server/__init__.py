"""The HTTP/1.1 server, apart from the API: the wire and nothing of what the requests mean.

Owns: the sans-IO parser (``protocol``), the Trio connection loop and listeners (``front``,
``connection``, ``tls``), the limits that keep a hostile network cheap (``admission``, ``fairness``,
``ratelimit``), who the client is (``client_address``), the values a handler sees (``types``),
request bodies decoded (``encoding``) and streamed forms (``multipart``).
Must not: import ``edge.store``, ``edge.auth``, ``edge.services``, ``edge.links`` or ``edge.http``
(tests/unit/test_layers.py checks it). The API (routes, handlers, CORS, auth) is ``edge.http``,
which hands the server one ``handler(Request) -> Response``.
"""
