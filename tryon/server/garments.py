"""The catalog as the service sees it: active garments as model-ready tensors, and pages.

Garments are cached per SKU together with the catalog revision they were made from; each
request checks the revision (one cheap query), so an edited garment is picked up at once
and an archived one stops being served at once. The cache keeps the 8-bit pixels the
networks' inputs are computed from (exactly: they come from 8-bit photos), a quarter of
the float32 tensors' bytes, and is bounded by `garment_cache_mib`. A garment of a category
the serving weights cannot dress is refused (`UnsupportedCategoryError`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import torch
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker

from catalog.images import decode_stored
from catalog.models import Status
from catalog.repository import (
    GarmentPage,
    GarmentSummary,
    find_garment,
    get_active_garment,
    get_active_revision,
    list_active_garments,
)
from tryon.errors import GarmentNotFoundError, NotReadyError
from tryon.server.caches import BoundedCache
from tryon.server.errors import UnsupportedCategoryError

log = logging.getLogger(__name__)

# Why a garment of a partial fetch could not be served, in its place.
GarmentRefusal = GarmentNotFoundError | UnsupportedCategoryError
GarmentPreparer = Callable[[list[np.ndarray], list[np.ndarray]], tuple[torch.Tensor, torch.Tensor]]


@dataclass(frozen=True)
class PreparedGarment:
    """A garment of `category` at model resolution, from catalog `revision`, held as 8-bit
    `pixels` `(1, 3, h, w)` and `coverage` `(1, 1, h, w)` (0-255); `image` and `mask` give
    the networks' float32 inputs on `device`."""

    sku: str
    revision: int
    category: str
    pixels: np.ndarray
    coverage: np.ndarray
    device: torch.device

    @classmethod
    def from_tensors(
        cls, sku: str, revision: int, category: str, image: torch.Tensor, mask: torch.Tensor
    ) -> PreparedGarment:
        """Keep `image` `(1, 3, h, w)` in [-1, 1] and `mask` `(1, 1, h, w)` in [0, 1], made
        from 8-bit pixels (`TryOnPipeline.prepare_garments`), as those pixels again."""
        pixels = np.rint((image.cpu().numpy() + 1) * 127.5).astype(np.uint8)
        coverage = np.rint(mask.cpu().numpy() * 255.0).astype(np.uint8)
        return cls(sku, revision, category, pixels, coverage, image.device)

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
        self,
        skus: list[str],
        prepare: GarmentPreparer,
        supported: tuple[str, ...] | None = None,
        *,
        partial: bool = False,
    ) -> tuple[list[PreparedGarment | GarmentRefusal], float]:
        """The active garments `skus`, in order, and the milliseconds it took.

        `supported` names the categories the weights can dress (None: all). Raises
        GarmentNotFoundError for an unknown or archived SKU, UnsupportedCategoryError for
        another category, or with `partial` puts that error in the garment's place; and
        NotReadyError when the database cannot be reached, unless every garment asked for
        is cached: those are served as last prepared until the database is back.
        """
        start = time.perf_counter()
        try:
            with self._session() as session:
                garments = _gathered(
                    (lambda sku=sku: self._one(session, sku, prepare, supported) for sku in skus),
                    partial,
                )
        except NotReadyError:
            cached = [self.cache.get(sku) for sku in skus]
            if any(garment is None for garment in cached):
                raise
            garments = _gathered(
                (lambda garment=garment: _supported(garment, supported) for garment in cached),
                partial,
            )
        return garments, (time.perf_counter() - start) * 1e3

    def page(
        self,
        page_size: int,
        page_token: str | None,
        supported: tuple[str, ...] | None = None,
    ) -> GarmentPage:
        """One page of active garments (see `catalog.repository.list_active_garments`);
        with `supported`, only those garments of the page whose category is one of them
        (so a page may come back short, even empty, with a next page token)."""
        with self._session() as session:
            page = list_active_garments(session, page_size=page_size, page_token=page_token)
        if supported is None:
            return page
        kept = [item for item in page.items if item.category.value in supported]
        return GarmentPage(kept, page.next_page_token)

    def get(self, sku: str) -> GarmentSummary:
        """The active garment `sku`; GarmentNotFoundError if there is none."""
        with self._session() as session:
            garment = find_garment(session, sku)
            if garment is None or garment.status != Status.ACTIVE:
                raise GarmentNotFoundError(f"no active garment has SKU `{sku}`")
            return GarmentSummary(
                garment.sku,
                garment.name,
                garment.category,
                garment.brand,
                garment.colour,
                garment.revision,
            )

    def _one(
        self,
        session: Session,
        sku: str,
        prepare: GarmentPreparer,
        supported: tuple[str, ...] | None,
    ) -> PreparedGarment:
        revision = get_active_revision(session, sku)
        cached = self.cache.get(sku)
        if cached is not None and cached.revision == revision:
            _check_category(cached.sku, cached.category, supported)
            return cached
        assets = get_active_garment(session, sku)
        _check_category(sku, assets.category.value, supported)  # before the costly part
        image, mask = prepare([decode_stored(assets.image)], [decode_stored(assets.mask)])
        garment = PreparedGarment.from_tensors(
            sku, assets.revision, assets.category.value, image, mask
        )
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


def _gathered(
    lookups: Iterable[Callable[[], PreparedGarment]], partial: bool
) -> list[PreparedGarment | GarmentRefusal]:
    """Each lookup's garment, in order; a garment refused (unknown SKU, unsupported
    category) raises, or with `partial` stands in its place."""
    garments: list[PreparedGarment | GarmentRefusal] = []
    for lookup in lookups:
        try:
            garments.append(lookup())
        except (GarmentNotFoundError, UnsupportedCategoryError) as error:
            if not partial:
                raise
            garments.append(error)
    return garments


def _supported(garment: PreparedGarment, supported: tuple[str, ...] | None) -> PreparedGarment:
    """`garment`, if the weights can dress its category (`_check_category`)."""
    _check_category(garment.sku, garment.category, supported)
    return garment


def _check_category(sku: str, category: str, supported: tuple[str, ...] | None) -> None:
    """Refuse a garment whose category the weights cannot dress (`supported` None: all)."""
    if supported is not None and category not in supported:
        raise UnsupportedCategoryError(sku, category, supported)
