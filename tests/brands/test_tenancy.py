import pytest
from django.db.models import Count

from avatars.models import Persona
from brands.tenancy import TenantScopeError
from content.models import Asset
from generation.models import Direction, GenerationJob

UNSCOPED_READS = {
    "list": lambda qs: list(qs),
    "iterate": lambda qs: next(iter(qs), None),
    "iterator": lambda qs: list(qs.iterator()),
    "count": lambda qs: qs.count(),
    "exists": lambda qs: qs.exists(),
    "get": lambda qs: qs.get(handle="ava"),
    "first": lambda qs: qs.first(),
    "bool": lambda qs: bool(qs),
    "values": lambda qs: list(qs.values("id")),
    "filtered": lambda qs: list(qs.filter(handle="ava")),
    "aggregate": lambda qs: qs.aggregate(n=Count("id")),
    "update": lambda qs: qs.update(name="x"),
    "delete": lambda qs: qs.delete(),
}


@pytest.mark.parametrize("read", UNSCOPED_READS.values(), ids=UNSCOPED_READS.keys())
def test_it_refuses_every_query_without_a_brand_scope(persona, read):
    with pytest.raises(TenantScopeError, match="for_brand"):
        read(Persona.objects.all())


@pytest.mark.parametrize("model", [Persona, GenerationJob, Asset, Direction])
def test_it_guards_every_brand_owned_table(db, model):
    with pytest.raises(TenantScopeError):
        list(model.objects.all())


def test_it_returns_only_the_scoped_brands_rows(persona, other_persona, brand, other_brand):
    assert list(Persona.objects.for_brand(brand)) == [persona]
    assert list(Persona.objects.for_brand(other_brand)) == [other_persona]
    assert not Persona.objects.for_brand(brand).filter(pk=other_persona.pk).exists()


def test_it_keeps_the_scope_through_chained_calls(persona, brand):
    queryset = Persona.objects.for_brand(brand).filter(name="Ava").exclude(handle="x").order_by("-id")
    assert queryset.values_list("handle", flat=True).get() == "ava"


def test_it_scopes_reverse_relations_too(persona, brand):
    with pytest.raises(TenantScopeError):
        list(persona.assets.all())
    assert list(persona.assets.for_brand(brand)) == []


def test_it_opens_unscoped_reads_only_when_asked(persona, other_persona):
    assert Persona.objects.unscoped().count() == 2


def test_it_leaves_foreign_key_access_to_django(persona):
    assert Persona.objects.for_brand(persona.brand).get().model == persona.model
    persona.refresh_from_db()


def test_it_shows_a_brand_the_model_wide_directions_and_its_own_only(generator_model, brand, other_brand):
    def direction(name, owner):
        return Direction.objects.create(
            model=generator_model, brand=owner, name=name, kind="sefa", layer_group="fine",
            vector=b"\0" * 4 * 512, strength_min=-1, strength_max=1,
        )  # fmt: skip

    shared, ours, theirs = direction("shared", None), direction("ours", brand), direction("theirs", other_brand)
    assert set(Direction.objects.for_brand(brand)) == {shared, ours}
    assert set(Direction.objects.for_brand(other_brand)) == {shared, theirs}
    assert list(Direction.objects.model_wide()) == [shared]
    with pytest.raises(TenantScopeError):
        Direction.objects.filter(name="theirs").exists()
    with pytest.raises(TenantScopeError):
        list(generator_model.directions.all())
