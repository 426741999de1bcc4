"""Fail-closed tenancy for brand-owned tables.

Every brand-owned model (personas, jobs, assets, ...) uses BrandScopedManager
as its default manager. Building a query is free, but evaluating one raises
TenantScopeError unless it was narrowed with `.for_brand(brand)` or opened
explicitly with `.unscoped()`. `.unscoped()` is for the admin and for Celery
tasks that load one row by id; views and selectors always go through a brand.

Django's own internals (foreign-key access, cascades, save/refresh) use the
model's plain `_base_manager` and are unaffected. Reverse relations
(`persona.assets`) inherit the scoping: `persona.assets.for_brand(brand)`.
"""

from django.db import models


class TenantScopeError(Exception):
    """A brand-owned table was queried without a brand scope."""


class BrandScopedQuerySet(models.QuerySet):
    _scope_for_brand = "brand"
    _scope_unscoped = "unscoped"

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._brand_scope = None

    def _clone(self):
        clone = super()._clone()
        clone._brand_scope = self._brand_scope
        return clone

    def for_brand(self, brand):
        self._brand_check(brand)
        return self._scoped(self.filter(brand=brand))

    def _brand_check(self, brand):
        if brand is None or brand.pk is None:
            raise TenantScopeError(f"{self.model.__name__}.for_brand() needs a saved brand, got {brand!r}")

    def _scoped(self, queryset):
        """`queryset`, marked as narrowed to what one brand may see."""
        queryset._brand_scope = self._scope_for_brand
        return queryset

    def unscoped(self):
        queryset = self._chain()
        queryset._brand_scope = self._scope_unscoped
        return queryset

    def _require_scope(self):
        if self._brand_scope is None:
            raise TenantScopeError(
                f"{self.model.__name__} rows belong to brands: query them with "
                f"{self.model.__name__}.objects.for_brand(brand) (admin and tasks by id: .unscoped())"
            )

    # Every way a queryset reaches the database passes through one of these.
    def _fetch_all(self):
        if self._result_cache is None:
            self._require_scope()
        super()._fetch_all()

    def iterator(self, chunk_size=None):
        self._require_scope()
        return super().iterator(chunk_size=chunk_size)

    def count(self):
        self._require_scope()
        return super().count()

    def exists(self):
        self._require_scope()
        return super().exists()

    def aggregate(self, *args, **kwargs):
        self._require_scope()
        return super().aggregate(*args, **kwargs)

    def update(self, **kwargs):
        self._require_scope()
        return super().update(**kwargs)

    def delete(self):
        self._require_scope()
        return super().delete()

    def explain(self, **options):
        self._require_scope()
        return super().explain(**options)


BrandScopedManager = models.Manager.from_queryset(BrandScopedQuerySet)
