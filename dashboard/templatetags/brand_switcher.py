"""The header's brand switcher: shown to users who reach more than one brand."""

from django import template

from brands.selectors import brands_for_user

register = template.Library()


@register.inclusion_tag("dashboard/_brand_switcher.html", takes_context=True)
def brand_switcher(context):
    user = context.get("user")
    current = context.get("brand")
    accesses = brands_for_user(user=user) if user is not None and user.is_authenticated else []
    return {
        "accesses": accesses if len(accesses) > 1 else [],
        "current": current if getattr(current, "pk", None) else None,
    }
