"""The LiquidFiles FileLink API (``<base>link``), one module per resource.

``attachments`` (uploads, whole or in pieces), ``links`` (create, list, delete, the three
``update_*`` settings) and ``download`` (the link URL: a page for browsers, the file for scripts).
``common`` holds what they share: API-key authentication, the error body, the link's JSON.
"""
