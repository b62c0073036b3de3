"""The JSON shapes of the API, one module per resource: model values <-> wire dictionaries.

- ``buckets.py``: bucket settings (also ``GET /info``'s defaults), bucket info, ``GET /b/{bucket}``
  and ``GET /list``
- ``entries.py``: an entry's info (the items of a bucket's ``entries``)
- ``links.py``: share links: the create and PATCH bodies, a link, the create answer, the list
- tokens: ``edge/auth/tokens.py`` (``parse_create_body``, ``token_to_wire``, ``secret_to_wire``),
  because the token repository (edge/auth) parses create bodies and auth must not import HTTP

Must not: do I/O or authorise. Handlers never build these dictionaries by hand. The vendor
sharing APIs (liquidfiles/, mediapocket.py) keep their own shapes beside their handlers.
"""
