import pytest
from django.core.cache import cache


@pytest.fixture(autouse=True)
def _fresh_rate_limits():
    """allauth rate-limits confirmation emails per address in the cache; tests reuse addresses."""
    cache.clear()
    yield
    cache.clear()
