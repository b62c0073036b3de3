"""Share links: the pure and synchronous core (HTTP handlers live in ``edge/http``).

Owns: re-exporting the public API of ``seal`` (token format), ``keys`` (server key file),
``rules`` (pure decisions: state, counting, passwords, Range, file names), ``registry``
(persistent link records) and ``tar`` (streamed ``.tar`` layout).
Must not: import trio, edge.http or edge.services; hold state at import time.
"""

from .keys import ServerKey, load_or_create
from .registry import DownloadResult, LinkRecord, LinkRegistry, Receipt, new_link_id
from .rules import (
    EXPIRED, UNIFORM_NOT_FOUND, PasswordParams, RangePlan, Span, check_password, check_state,
    content_disposition, download_counts, hash_password, is_expired, is_used_up, link_expired,
    link_not_found, plan_range, sanitize_filename, session_live, verify_password,
)
# ``seal``/``unseal`` are not re-exported: a function named ``seal`` would shadow the submodule.
from .seal import SealedLink, decode_b64, encode_b64, hkdf_kdf, scrypt_kdf, token_digest
from .tar import Member, MemberSlice, TarLayout, ext_for, member_name

__all__ = [
    "DownloadResult", "EXPIRED", "LinkRecord", "LinkRegistry", "Member", "MemberSlice", "PasswordParams",
    "RangePlan", "Receipt", "SealedLink", "ServerKey", "Span", "TarLayout", "UNIFORM_NOT_FOUND",
    "check_password", "check_state", "content_disposition", "decode_b64", "download_counts", "encode_b64",
    "ext_for", "hash_password", "hkdf_kdf", "is_expired", "is_used_up", "link_expired", "link_not_found",
    "load_or_create", "member_name", "new_link_id", "plan_range", "sanitize_filename", "scrypt_kdf",
    "session_live", "token_digest", "verify_password",
]
