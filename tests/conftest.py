"""Fixtures every pytest module shares."""

from __future__ import annotations

import pytest

import rustnce
from rustnce import reference


@pytest.fixture(autouse=True)
def _fresh_sampler_caches():
    """Each test starts and ends with empty sampler caches (rustnce's and the reference's), so
    that module-level sampler calls with equal seeds draw equal ids whatever ran before."""
    rustnce.reset_sampler_cache()
    reference.reset_sampler_cache()
    yield
    rustnce.reset_sampler_cache()
    reference.reset_sampler_cache()


@pytest.fixture(params=["rustnce", "reference"])
def implementation(request):
    """The implementation under test: the extension (``rustnce``) or the NumPy reference
    (``rustnce.reference``), which share one API."""
    return rustnce if request.param == "rustnce" else reference
