"""The catalog as the service sees it: active garments as model-ready tensors, and pages.

Garments are cached per SKU together with the catalog revision they were made from; each
request checks the revision (one cheap query), so an edited garment is picked up at once
and an archived one stops being served at once. The cache keeps the 8-bit pixels the
networks' inputs are computed from (exactly: they come from 8-bit photos), a quarter of
the float32 tensors' bytes, and is bounded by `garment_cache_mib`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import torch
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker

from catalog.images import decode_stored
from catalog.repository import (
    GarmentPage,
    get_active_garment,
    get_active_revision,
    list_active_garments,
)
from tryon.errors import NotReadyError
from tryon.server.caches import BoundedCache

log = logging.getLogger(__name__)

GarmentPreparer = Callable[[list[np.ndarray], list[np.ndarray]], tuple[torch.Tensor, torch.Tensor]]


@dataclass(frozen=True)
class PreparedGarment:
    """A garment at model resolution, from catalog `revision`, held as 8-bit `pixels`
    `(1, 3, h, w)` and `coverage` `(1, 1, h, w)` (0-255); `image` and `mask` give the
    networks' float32 inputs on `device`."""

    sku: str
    revision: int
    pixels: np.ndarray
    coverage: np.ndarray
    device: torch.device

    @classmethod
    def from_tensors(
        cls, sku: str, revision: int, image: torch.Tensor, mask: torch.Tensor
    ) -> PreparedGarment:
        """Keep `image` `(1, 3, h, w)` in [-1, 1] and `mask` `(1, 1, h, w)` in [0, 1], made
        from 8-bit pixels (`TryOnPipeline.prepare_garments`), as those pixels again."""
        pixels = np.rint((image.cpu().numpy() + 1) * 127.5).astype(np.uint8)
        coverage = np.rint(mask.cpu().numpy() * 255.0).astype(np.uint8)
        return cls(sku, revision, pixels, coverage, image.device)

    @property
    def image(self) -> torch.Tensor:
        """`(1, 3, h, w)` float32 in [-1, 1], as `prepare_garments` computes it."""
        values = self.pixels.astype(np.float32) / np.float32(127.5) - 1
        return torch.from_numpy(values).to(self.device)

    @property
    def mask(self) -> torch.Tensor:
        """`(1, 1, h, w)` float32 in [0, 1], as `prepare_garments` computes it."""
        values = self.coverage.astype(np.float32) / np.float32(255.0)
        return torch.from_numpy(values).to(self.device)

    @property
    def nbytes(self) -> int:
        """The bytes this garment holds in the cache."""
        return self.pixels.nbytes + self.coverage.nbytes


class GarmentStore:
    """Reads active garments from the catalog and keeps their prepared tensors.

    Args:
        sessions: the process's session factory on the catalog database.
        cache: prepared garments by SKU.
    Methods block on the database: call them from a worker thread.
    """

    def __init__(
        self, sessions: sessionmaker[Session], cache: BoundedCache[PreparedGarment]
    ) -> None:
        self.sessions = sessions
        self.cache = cache

    def fetch(
        self, skus: list[str], prepare: GarmentPreparer
    ) -> tuple[list[PreparedGarment], float]:
        """The active garments `skus`, in order, and the milliseconds it took.

        Raises GarmentNotFoundError for an unknown or archived SKU and NotReadyError when
        the database cannot be reached.
        """
        start = time.perf_counter()
        with self._session() as session:
            garments = [self._one(session, sku, prepare) for sku in skus]
        return garments, (time.perf_counter() - start) * 1e3

    def page(self, page_size: int, page_token: str | None) -> GarmentPage:
        """One page of active garments (see `catalog.repository.list_active_garments`)."""
        with self._session() as session:
            return list_active_garments(session, page_size=page_size, page_token=page_token)

    def _one(self, session: Session, sku: str, prepare: GarmentPreparer) -> PreparedGarment:
        revision = get_active_revision(session, sku)
        cached = self.cache.get(sku)
        if cached is not None and cached.revision == revision:
            return cached
        assets = get_active_garment(session, sku)
        image, mask = prepare([decode_stored(assets.image)], [decode_stored(assets.mask)])
        garment = PreparedGarment.from_tensors(sku, assets.revision, image, mask)
        self.cache.put(sku, garment)
        return garment

    @contextmanager
    def _session(self) -> Iterator[Session]:
        try:
            with self.sessions() as session, session.begin():
                yield session
        except DBAPIError as error:
            # The driver's message may hold host names; the log has it, the caller not.
            log.warning("catalog database error", extra={"fields": {"error": str(error.orig)}})
            raise NotReadyError(
                "the garment catalog is unavailable at the moment; retry shortly"
            ) from error
