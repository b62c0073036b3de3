"""edge: a time-series blob store for edge devices, wire-compatible with the ReductStore HTTP API v1.

Owns: the version string only. Import the rooms directly (edge.store, edge.http, ...).
"""

__version__ = "0.1.0"
# The ReductStore API version we implement (spec §0); sent as x-reduct-api on every response.
API_VERSION = "1.21"
REDUCT_VERSION = "1.21.0"
