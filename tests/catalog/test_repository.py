"""The repository as the service and the CLI use it, on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
from catalog_pictures import encode, product_photo, tshirt_mask
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from catalog import repository
from catalog.errors import GarmentExistsError, GarmentNotFoundError
from catalog.models import Category, GarmentImage, Status
from catalog.onboarding import make_fields, prepare_images
from catalog.repository import SaveOutcome
from tryon.errors import InvalidInputError


def _images(seed: int = 0):  # noqa: ANN202
    return prepare_images(encode(product_photo(tshirt_mask(shift=seed), seed=seed))).images


FIELDS = make_fields("TEE-1", "Crew tee", "top", "Acme", "navy", "summer,cotton")


def _save(sessions: sessionmaker[Session], fields=FIELDS, images=None, **kw):  # noqa: ANN001, ANN202
    with sessions.begin() as session:
        garment, outcome = repository.save_garment(session, fields, images or _images(), **kw)
        return garment.revision, outcome


def test_saving_the_same_garment_twice_changes_nothing(sessions: sessionmaker[Session]) -> None:
    assert _save(sessions) == (1, SaveOutcome.ADDED)
    assert _save(sessions) == (1, SaveOutcome.UNCHANGED)


def test_revision_grows_when_fields_images_or_status_change(
    sessions: sessionmaker[Session],
) -> None:
    _save(sessions)
    assert _save(sessions, make_fields("TEE-1", "Crew tee v2", "top")) == (2, SaveOutcome.UPDATED)
    assert _save(sessions, make_fields("TEE-1", "Crew tee v2", "top"), _images(seed=3)) == (
        3,
        SaveOutcome.UPDATED,
    )
    with sessions.begin() as session:
        (garment,) = repository.set_status(session, ["TEE-1"], Status.ACTIVE)
        assert garment.revision == 4


def test_service_sees_only_active_garments_with_their_bytes(
    sessions: sessionmaker[Session],
) -> None:
    images = _images()
    _save(sessions, images=images)
    with sessions() as session, pytest.raises(GarmentNotFoundError):
        repository.get_active_garment(session, "TEE-1")  # still a draft
    _save(sessions, images=images, activate=True)
    with sessions() as session:
        assets = repository.get_active_garment(session, "TEE-1")
        assert repository.get_active_revision(session, "TEE-1") == assets.revision == 2
    assert assets.image == images.photo.data and assets.mask == images.mask.data
    assert assets.category is Category.TOP and assets.mask_mime_type == "image/png"


def test_active_garments_page_by_page(sessions: sessionmaker[Session]) -> None:
    images = _images()
    for index in range(7):
        _save(sessions, make_fields(f"SKU-{index}", "Tee", "top"), images, activate=index != 3)
    seen, token = [], None
    with sessions() as session:
        while True:
            page = repository.list_active_garments(session, page_size=2, page_token=token)
            seen += [item.sku for item in page.items]
            token = page.next_page_token
            if token is None:
                break
        with pytest.raises(InvalidInputError, match="page token"):
            repository.list_active_garments(session, page_token="!!not-ours")
    assert seen == ["SKU-0", "SKU-1", "SKU-2", "SKU-4", "SKU-5", "SKU-6"]


def test_add_refuses_a_taken_sku_and_remove_deletes_images(
    sessions: sessionmaker[Session],
) -> None:
    _save(sessions)
    with sessions.begin() as session, pytest.raises(GarmentExistsError, match="catalog update"):
        repository.add_garment(session, FIELDS, _images())
    with sessions.begin() as session:
        assert repository.remove_garments(session, ["TEE-1"]) == 1
    with sessions() as session:
        assert repository.find_garment(session, "TEE-1") is None
        assert session.scalar(select(func.count()).select_from(GarmentImage)) == 0


def test_status_change_of_a_missing_sku_changes_nothing(sessions: sessionmaker[Session]) -> None:
    _save(sessions)
    with pytest.raises(GarmentNotFoundError, match="NOPE"), sessions.begin() as session:
        repository.set_status(session, ["TEE-1", "NOPE"], Status.ARCHIVED)
    with sessions() as session:
        assert repository.get_garment(session, "TEE-1").status is Status.DRAFT
