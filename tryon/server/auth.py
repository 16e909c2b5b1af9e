"""API keys: which storefronts may call the service, how fast, and the file that says so.

A key is `tryon_<id>_<secret>`: 8 hex characters that find its entry, then 43 characters
(256 bits) of randomness. The keys file stores each key's name, id and SHA-256 digest,
never the key: with that much randomness a fast hash is as safe as a slow one, and a call
costs a microsecond to check (compared in constant time). The file is JSON:

    {"version": 1, "keys": [{"name": "shop-a", "id": "1f2e3d4c", "sha256": "...",
      "created": "2026-01-31T12:00:00+00:00", "revoked": null, "rate_per_s": 20.0,
      "burst": 40}]}

`tryon keys add/list/revoke` edit it (atomically, readable by its owner only); mounted
from a Kubernetes Secret it is replaced behind a symlink, which the server notices. The
server's `KeyRing` checks the file's identity every `reload_s` and reloads it when it
changed; a file that cannot be read keeps the last good keys and says why in the log.
Rate limits are token buckets per key and per server process (each replica has its own).
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import json
import logging
import math
import os
import re
import secrets
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from tryon.errors import InvalidInputError
from tryon.server.errors import KeyRevokedError, RateLimitedError, UnauthenticatedError

log = logging.getLogger(__name__)

FILE_VERSION = 1
KEY_PREFIX = "tryon"
_KEY = re.compile(rf"{KEY_PREFIX}_([0-9a-f]{{8}})_([A-Za-z0-9_-]{{43}})")
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
BEARER = "bearer "
HOW_TO_SEND = "send the metadata `authorization: Bearer <key>`"


@dataclass(frozen=True)
class ApiKey:
    """One entry of the keys file: a storefront's key, by its digest.

    Attributes:
        name: who holds it, e.g. the storefront ("shop-a"); unique in the file.
        id: the key's public id, its 8 hex characters after `tryon_`.
        sha256: hex SHA-256 digest of the whole key.
        created: when it was made (ISO 8601, UTC).
        revoked: when it was revoked, or None while it is valid.
        rate_per_s: calls per second it may make on each server process; 0: no limit.
        burst: calls it may make at once above that rate (0: one second's worth).
    """

    name: str
    id: str
    sha256: str
    created: str
    revoked: str | None = None
    rate_per_s: float = 0.0
    burst: int = 0

    @property
    def bucket_size(self) -> float:
        """The most calls that may arrive at once."""
        return float(self.burst) if self.burst > 0 else max(1.0, math.ceil(self.rate_per_s))


def key_digest(key: str) -> str:
    """The hex SHA-256 digest the keys file stores for `key`."""
    return hashlib.sha256(key.encode()).hexdigest()


def read_keys(path: str | Path) -> list[ApiKey]:
    """The entries of the keys file at `path`.

    Raises:
        InvalidInputError: the file is missing, not JSON, or not a keys file; the message
            says what is wrong and how to make one.
    """
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise InvalidInputError(
            f"no API keys file at {path}; make one with `tryon keys add NAME --keys-file {path}`"
        ) from None
    except OSError as error:
        raise InvalidInputError(f"cannot read the API keys file {path}: {error}") from None
    except json.JSONDecodeError as error:
        raise InvalidInputError(f"the API keys file {path} is not JSON: {error}") from None
    if not isinstance(data, dict) or data.get("version") != FILE_VERSION:
        raise InvalidInputError(
            f"{path} is not an API keys file of version {FILE_VERSION} "
            '(`{"version": 1, "keys": [...]}`)'
        )
    entries = data.get("keys")
    if not isinstance(entries, list):
        raise InvalidInputError(f"{path}: `keys` must be a list of key entries")
    known = {field.name for field in dataclasses.fields(ApiKey)}
    keys = []
    for index, entry in enumerate(entries):
        if not isinstance(entry, dict) or not {"name", "id", "sha256", "created"} <= set(entry):
            raise InvalidInputError(
                f"{path}: key entry {index} needs name, id, sha256 and created; it has "
                f"{sorted(entry) if isinstance(entry, dict) else entry!r}"
            )
        unknown = sorted(set(entry) - known)
        if unknown:
            raise InvalidInputError(f"{path}: key entry {index} has unknown fields {unknown}")
        keys.append(ApiKey(**entry))
    for field in ("name", "id"):
        values = [getattr(key, field) for key in keys]
        repeated = sorted({value for value in values if values.count(value) > 1})
        if repeated:
            raise InvalidInputError(f"{path}: key {field}s {repeated} appear more than once")
    return keys


def write_keys(path: str | Path, keys: Sequence[ApiKey]) -> None:
    """Replace the keys file at `path` with `keys`, atomically, readable by its owner only."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(
        {"version": FILE_VERSION, "keys": [dataclasses.asdict(key) for key in keys]}, indent=2
    )
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(handle, "w") as file:
            file.write(text + "\n")
        os.replace(temporary, path)  # mkstemp made it 0600
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def add_key(path: str | Path, name: str, rate_per_s: float = 0.0, burst: int = 0) -> str:
    """Make a new key called `name`, store its digest in the keys file (made if missing)
    and return the key: the only time it exists in full."""
    if not _NAME.fullmatch(name):
        raise InvalidInputError(
            f"key name {name!r} is not usable; use up to 64 letters, digits, '.', '_' or '-'"
        )
    if rate_per_s < 0 or burst < 0:
        raise InvalidInputError("rate and burst must not be negative (0: no limit)")
    keys = read_keys(path) if Path(path).exists() else []
    if any(key.name == name for key in keys):
        raise InvalidInputError(
            f"a key named {name!r} is already in {path}; choose another name (e.g. "
            f"{name}-2), hand it out, then revoke the old one"
        )
    used = {key.id for key in keys}
    key_id = secrets.token_hex(4)
    while key_id in used:
        key_id = secrets.token_hex(4)
    key = f"{KEY_PREFIX}_{key_id}_{secrets.token_urlsafe(32)}"
    created = datetime.now(timezone.utc).isoformat(timespec="seconds")
    entry = ApiKey(name, key_id, key_digest(key), created, None, float(rate_per_s), int(burst))
    write_keys(path, [*keys, entry])
    return key


def revoke_key(path: str | Path, name: str) -> ApiKey:
    """Mark the key `name` revoked (its calls then fail PERMISSION_DENIED); return it."""
    keys = read_keys(path)
    for index, key in enumerate(keys):
        if key.name == name:
            if key.revoked is not None:
                raise InvalidInputError(f"the key {name!r} was already revoked at {key.revoked}")
            revoked = dataclasses.replace(
                key, revoked=datetime.now(timezone.utc).isoformat(timespec="seconds")
            )
            write_keys(path, [*keys[:index], revoked, *keys[index + 1 :]])
            return revoked
    names = ", ".join(key.name for key in keys) or "none"
    raise InvalidInputError(f"no key named {name!r} in {path}; its keys: {names}")


class TokenBucket:
    """A rate limit: `rate_per_s` calls a second on average, `size` at once."""

    def __init__(self, rate_per_s: float, size: float, now: float) -> None:
        self.rate_per_s = rate_per_s
        self.size = size
        self.tokens = size
        self.updated = now

    def take(self, now: float) -> float:
        """Spend one token: 0.0 when there was one, else the seconds until there is."""
        self.tokens = min(self.size, self.tokens + (now - self.updated) * self.rate_per_s)
        self.updated = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return 0.0
        return (1.0 - self.tokens) / self.rate_per_s


class KeyRing:
    """The server's view of the keys file: checks a call's key and its rate.

    Args:
        path: the keys file; it must exist and be valid when the ring is made.
        reload_s: how often, at most, the file is checked for a change (0: every call).
        clock: monotonic seconds (tests pass their own).
    """

    def __init__(
        self, path: str | Path, reload_s: float = 2.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.path = Path(path)
        self.reload_s = reload_s
        self.clock = clock
        self.keys: dict[str, ApiKey] = {}
        self.buckets: dict[str, TokenBucket] = {}
        self._signature = self._file_signature()
        self._install(read_keys(self.path))
        self._checked = clock()
        self._refused_signature: tuple[int, ...] | None = None

    def authenticate(self, metadata: Sequence[tuple[str, str | bytes]] | None) -> ApiKey:
        """The valid key a call's metadata carries, after spending one call of its rate.

        Raises UnauthenticatedError (no key, or not a key of this file), KeyRevokedError
        (a revoked key) or RateLimitedError (over its rate; retry after the delay).
        """
        self.reload_if_changed()
        header = next((value for name, value in metadata or () if name == "authorization"), None)
        if not isinstance(header, str) or not header[: len(BEARER)].lower() == BEARER:
            raise UnauthenticatedError(
                f"this service needs an API key: {HOW_TO_SEND} (operators make keys with "
                "`tryon keys add`)"
            )
        found = _KEY.fullmatch(header[len(BEARER) :].strip())
        entry = self.keys.get(found.group(1)) if found else None
        if entry is None or not hmac.compare_digest(key_digest(found.group(0)), entry.sha256):
            raise UnauthenticatedError(
                "the API key is not valid here: check that it was copied whole and is meant "
                f"for this service ({HOW_TO_SEND}); ask the operator for a new one if lost"
            )
        if entry.revoked is not None:
            raise KeyRevokedError(
                f"the API key {entry.name!r} (id {entry.id}) was revoked at {entry.revoked}; "
                "ask the operator for a new key"
            )
        bucket = self.buckets.get(entry.id)
        if bucket is not None:
            wait = bucket.take(self.clock())
            if wait > 0:
                raise RateLimitedError(
                    f"the API key {entry.name!r} is over its rate of {entry.rate_per_s:g} "
                    f"calls/s (burst {bucket.size:g}); retry after the suggested delay",
                    wait,
                )
        return entry

    def reload_if_changed(self) -> None:
        """Read the file again if it changed since it was last read (at most every
        `reload_s`); keep the current keys, and log why, when it cannot be used."""
        now = self.clock()
        if now - self._checked < self.reload_s:
            return
        self._checked = now
        signature = self._file_signature()
        if signature == self._signature or signature == self._refused_signature:
            return
        try:
            keys = read_keys(self.path)
        except InvalidInputError as error:
            self._refused_signature = signature
            log.warning(
                "the API keys file changed but cannot be used; the previous keys stay in force",
                extra={"fields": {"reason": str(error)}},
            )
            return
        self._signature = signature
        self._refused_signature = None
        self._install(keys)
        log.info("API keys reloaded", extra={"fields": {"keys": len(self.keys)}})

    def _install(self, keys: list[ApiKey]) -> None:
        """Use `keys`; a key keeps its bucket (and what it spent) while its limit holds."""
        now = self.clock()
        buckets = {}
        for key in keys:
            if key.rate_per_s <= 0:
                continue
            bucket = self.buckets.get(key.id)
            if bucket is None or (bucket.rate_per_s, bucket.size) != (
                key.rate_per_s,
                key.bucket_size,
            ):
                bucket = TokenBucket(key.rate_per_s, key.bucket_size, now)
            buckets[key.id] = bucket
        self.keys = {key.id: key for key in keys}
        self.buckets = buckets

    def _file_signature(self) -> tuple[int, ...]:
        """What changes when the file is rewritten or a Secret's symlink is swapped."""
        try:
            stat = self.path.stat()
        except OSError:
            return ()
        return (stat.st_ino, stat.st_mtime_ns, stat.st_size)
