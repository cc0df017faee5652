"""The Django site the Django tests share (Django is configured once per process)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from ..support.django_site import DjangoSite, site


@pytest.fixture(scope="session")
def _django_site_once(tmp_path_factory: pytest.TempPathFactory) -> DjangoSite:
    pytest.importorskip("django")
    return site(tmp_path_factory.mktemp("django_site"))


@pytest.fixture
def django_site(_django_site_once: DjangoSite) -> Iterator[DjangoSite]:
    """The process's Django site as first imported, with an empty table; put back after
    the test (files, running modules, rows), whatever the test left."""
    from django.db import connection

    def clean() -> None:
        _django_site_once.reset()
        _django_site_once.module("models").Item.objects.all().delete()

    clean()
    yield _django_site_once
    clean()
    connection.close()  # a no-op for the in-memory database, which must outlive the test
