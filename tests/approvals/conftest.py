"""The approval tests' people and assets live in tests/conftest.py (the web and
integration tests use them too); these names are kept for imports from here."""

from tests.conftest import campaign_assets, member_make

__all__ = ["campaign_assets", "member_make"]
