import json
import tempfile
import zipfile

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.http import FileResponse, HttpResponse, HttpResponseNotFound
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from avatars.models import LibraryItem
from avatars.selectors import library_items_for_brand, persona_current_versions, personas_for_brand
from brands.models import CREATE_ROLES
from brands.selectors import brand_access_get
from common.forms import service_errors_add
from content.c2pa import PROVENANCE_LABEL, brand_trust_anchor, c2pa_read
from content.formats import FORMATS, disclosure_read
from content.selectors import asset_get, assets_for_brand
from content.services import FILE_KINDS, asset_download_name, asset_file_open

from .forms import FORMAT_LABELS, CampaignForm
from .selectors import (
    campaign_get,
    campaign_item_get,
    campaign_items,
    campaign_progress,
    campaigns_for_brand,
    throughput_basis,
)
from .services import campaign_cancel, campaign_estimate, campaign_item_retry, campaign_submit
from .verification import MAX_TOLERANCE, MEAN_TOLERANCE, asset_verify


@login_required
def campaign_list(request, brand_slug):
    access = brand_access_get(user=request.user, brand_slug=brand_slug)
    campaigns = [
        (campaign, campaign_progress(brand=access.brand, campaign=campaign))
        for campaign in campaigns_for_brand(brand=access.brand)[:50]
    ]
    return render(
        request,
        "campaigns/campaign_list.html",
        {"brand": access.brand, "campaigns": campaigns, "can_create": access.role in CREATE_ROLES},
    )


@login_required
@require_http_methods(["GET", "POST"])
def campaign_create(request, brand_slug):
    """The builder: pick the matrix, see its count and cost, submit."""
    access = brand_access_get(user=request.user, brand_slug=brand_slug, roles=CREATE_ROLES)
    brand = access.brand
    versions = persona_current_versions(brand=brand)
    items = library_items_for_brand(brand=brand)
    form = CampaignForm(
        request.POST or None,
        versions=versions,
        looks=items.filter(kind=LibraryItem.Kind.LOOK),
        poses=items.filter(kind=LibraryItem.Kind.POSE),
    )
    estimate = None
    if request.method == "POST" and form.is_valid():
        matrix = {key: form.cleaned_data[key] for key in ("versions", "looks", "poses", "formats", "variants")}
        try:
            if "estimate" in request.POST:
                estimate = campaign_estimate(actor=request.user, brand=brand, **matrix)
            else:
                campaign = campaign_submit(
                    actor=request.user,
                    brand=brand,
                    name=form.cleaned_data["name"],
                    brief=form.cleaned_data["brief"],
                    idempotency_key=form.cleaned_data["idempotency_key"],
                    **matrix,
                )
                messages.success(request, f"Queued {campaign.name}: {campaign.estimate['images']} images.")
                return redirect("campaign-detail", brand_slug=brand.slug, campaign_id=campaign.pk)
        except ValidationError as exc:
            service_errors_add(form, exc)
    # What the page's script needs for a live count and cost: each persona's model
    # and the throughput workers measured for it.
    throughput = {}
    for version in versions:
        model = version.persona.model
        if model.slug not in throughput:
            measured = throughput_basis(model=model)
            throughput[model.slug] = (
                None
                if measured is None
                else {
                    "images_per_second": measured.images_per_second,
                    "device": measured.device,
                    "batch_size": measured.batch_size,
                    "measured_at": measured.measured_at.strftime("%Y-%m-%d %H:%M"),
                }
            )
    return render(
        request,
        "campaigns/campaign_create.html",
        {
            "brand": brand,
            "form": form,
            "estimate": estimate,
            "version_models": json.dumps({str(v.pk): v.persona.model.slug for v in versions}),
            "throughput": json.dumps(throughput),
        },
    )


@login_required
def campaign_detail(request, brand_slug, campaign_id):
    """The board: every item with its state, thumbnail and identity score. With
    ?fragment=1 (or from htmx), only the part that changes, for the page's polling:
    status 286 once the campaign is finished, which stops htmx polling."""
    access = brand_access_get(user=request.user, brand_slug=brand_slug)
    campaign = campaign_get(brand=access.brand, campaign_id=campaign_id)
    progress = campaign_progress(brand=access.brand, campaign=campaign)
    items = campaign_items(brand=access.brand, campaign=campaign)
    context = {
        "brand": access.brand,
        "campaign": campaign,
        "progress": progress,
        "items": items,
        # Why queued items are not moving, once for the board (the broker is down, ...).
        "waiting": next(
            (item.job.waiting_reason for item in items if item.job.status == "queued" and item.job.dispatch_error), ""
        ),
        "can_create": access.role in CREATE_ROLES,
        "threshold": access.brand.identity_threshold,
    }
    if request.GET.get("fragment") or request.htmx:
        # 286 tells htmx's polling (campaign_detail.html) to stop: nothing changes any more.
        return render(request, "campaigns/_board.html", context, status=286 if progress.finished else 200)
    # Finished images not yet sent to review (approvals' `review` relation, read only).
    context["unsubmitted"] = list(
        assets_for_brand(brand=access.brand, campaign_id=campaign.pk)
        .filter(review__isnull=True)
        .order_by("pk")
        .values_list("pk", flat=True)
    )
    return render(request, "campaigns/campaign_detail.html", context)


@login_required
@require_POST
def campaign_cancel_view(request, brand_slug, campaign_id):
    access = brand_access_get(user=request.user, brand_slug=brand_slug, roles=CREATE_ROLES)
    campaign = campaign_get(brand=access.brand, campaign_id=campaign_id)
    try:
        cancelled = campaign_cancel(actor=request.user, brand=access.brand, campaign=campaign)
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    else:
        messages.success(request, f"Cancelled {cancelled} unfinished image(s); finished ones are kept.")
    return redirect("campaign-detail", brand_slug=access.brand.slug, campaign_id=campaign.pk)


@login_required
@require_POST
def campaign_item_retry_view(request, brand_slug, campaign_id, item_id):
    access = brand_access_get(user=request.user, brand_slug=brand_slug, roles=CREATE_ROLES)
    campaign = campaign_get(brand=access.brand, campaign_id=campaign_id)
    item = campaign_item_get(brand=access.brand, campaign=campaign, item_id=item_id)
    try:
        campaign_item_retry(actor=request.user, brand=access.brand, item=item)
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    else:
        messages.success(request, f"Queued item {item.pk} again.")
    return redirect("campaign-detail", brand_slug=access.brand.slug, campaign_id=campaign.pk)


def asset_page_context(request, *, access, asset):
    """The asset page's picture, files, provenance and disclosure; a POST from a
    creator or owner verifies the asset. approvals.views.asset_detail renders it
    with the asset's review."""
    verification = None
    if request.method == "POST" and access.role in CREATE_ROLES:
        verification = asset_verify(actor=request.user, brand=access.brand, asset=asset)
    # The master as it leaves: the approved file (its own disclosure and manifest) once released.
    master_field = asset.released_image if asset.released else asset.image
    try:
        with master_field.storage.open(master_field.name, "rb") as master:
            master_bytes = master.read()
    except FileNotFoundError:
        disclosure = manifest = None
    else:
        disclosure = disclosure_read(master_bytes)
        manifest = _manifest_summary(master_bytes, brand=access.brand)
    return {
        "brand": access.brand,
        "asset": asset,
        "provenance": sorted(asset.metadata.get("provenance", {}).items()),
        "disclosure": disclosure,
        "manifest": manifest,
        "verification": verification,
        "tolerance": {"mean": MEAN_TOLERANCE, "max": MAX_TOLERANCE},
        "can_verify": access.role in CREATE_ROLES,
        "below_threshold": asset.identity_consistency is not None
        and asset.identity_consistency < access.brand.identity_threshold,
    }


def _manifest_summary(png_bytes, *, brand):
    """What the master's C2PA manifest says, as c2pa validates it against the brand's
    own root certificate: {"state", "problems", "signer", "claims"}, or None."""
    try:
        store = c2pa_read(png_bytes, mime="image/png", trust_anchors=brand_trust_anchor(brand=brand))
    except Exception as exc:  # noqa: BLE001 - a broken manifest is shown, not a 500
        return {"state": "Unreadable", "problems": [str(exc)], "signer": "", "claims": {}}
    if store is None:
        return None
    manifest = store.get("manifests", {}).get(store.get("active_manifest"), {})
    claims = next((a.get("data", {}) for a in manifest.get("assertions", []) if a.get("label") == PROVENANCE_LABEL), {})
    return {
        "state": store.get("validation_state", "unknown"),
        "problems": [status.get("code", "") for status in store.get("validation_status", [])],
        "signer": manifest.get("signature_info", {}).get("issuer", ""),
        "claims": claims,
    }


@login_required
def asset_download(request, brand_slug, asset_id, kind):
    """An asset's file as a download: the approved file once released, else the
    draft (the master with the DRAFT mark drawn on; the stored derivatives have it)."""
    access = brand_access_get(user=request.user, brand_slug=brand_slug)
    asset = asset_get(brand=access.brand, asset_id=asset_id)
    if kind not in FILE_KINDS:
        return HttpResponseNotFound("This asset has no such file.", content_type="text/plain; charset=utf-8")
    try:
        opened, _released = asset_file_open(asset=asset, kind=kind)
    except FileNotFoundError:
        return HttpResponseNotFound("The file is missing from storage.", content_type="text/plain; charset=utf-8")
    content_type = FILE_KINDS[kind][2]
    filename = asset_download_name(brand=access.brand, asset=asset, kind=kind)
    if isinstance(opened, bytes):
        response = HttpResponse(opened, content_type=content_type)
        response["Content-Disposition"] = f'attachment; filename="{filename}"'
        return response
    return FileResponse(opened, content_type=content_type, as_attachment=True, filename=filename)


ASSETS_PER_PAGE = 48
ZIP_MAX_ASSETS = 200


def asset_zip_name(*, brand, asset):
    """An asset's web JPEG's name in a bulk download: brand, persona, id and format
    ("4:5" written "4x5"), and "-draft" unless it is approved."""
    fmt = (asset.output_format or "square").replace(":", "x")
    return f"{brand.slug}-{asset.persona.handle}-{asset.pk}-{fmt}{'' if asset.released else '-draft'}.jpg"


@login_required
@require_http_methods(["GET", "POST"])
def asset_list(request, brand_slug):
    """The brand's asset library: every asset, newest first, filtered by persona,
    campaign and format (GET), 48 a page; POST downloads the checked assets' web
    JPEGs (draft-marked, with their disclosure and C2PA) as one zip."""
    access = brand_access_get(user=request.user, brand_slug=brand_slug)
    brand = access.brand
    filters = {key: request.GET.get(key, "") for key in ("persona", "campaign", "format")}
    assets = assets_for_brand(
        brand=brand,
        persona_id=filters["persona"] or None,
        campaign_id=filters["campaign"] or None,
        output_format=filters["format"] or None,
    )
    error = ""
    selected = set()
    if request.method == "POST":
        selected = {
            int(value)
            for value in request.POST.getlist("assets")
            if value.isascii() and value.isdigit() and len(value) < 19
        }
        if not selected:
            error = "Select at least one asset to download."
        elif len(selected) > ZIP_MAX_ASSETS:
            error = f"Select at most {ZIP_MAX_ASSETS} assets for one zip ({len(selected)} were selected)."
        else:
            # Only this brand's assets with a web file; other brands' ids are dropped.
            chosen = list(assets_for_brand(brand=brand).filter(pk__in=selected).exclude(web=""))
            if not chosen:
                error = "None of the selected assets has a web image to download."
            else:
                response = _assets_zip(brand=brand, assets=chosen)
                if isinstance(response, str):
                    error = response
                else:
                    return response
    query = request.GET.copy()
    query.pop("page", None)
    page = Paginator(assets, ASSETS_PER_PAGE).get_page(request.GET.get("page"))
    return render(
        request,
        "campaigns/asset_list.html",
        {
            "brand": brand,
            "page": page,
            "filters": filters,
            "personas": personas_for_brand(brand=brand).order_by("name"),
            "campaigns": campaigns_for_brand(brand=brand),
            "formats": [(fmt, FORMAT_LABELS.get(fmt, fmt)) for fmt in FORMATS],
            "query": query.urlencode(),
            "error": error,
            "selected": selected,
            "zip_max": ZIP_MAX_ASSETS,
            "threshold": brand.identity_threshold,
        },
    )


def _assets_zip(*, brand, assets):
    """A zip of the assets' web JPEGs as a download, or the reason it cannot be made.
    Built in a spooled temporary file: in memory up to 16 MB, on disk past it."""
    spool = tempfile.SpooledTemporaryFile(max_size=16 * 1024 * 1024)  # noqa: SIM115 - FileResponse closes it
    missing = []
    # JPEGs do not compress further: stored, not deflated.
    with zipfile.ZipFile(spool, "w", compression=zipfile.ZIP_STORED) as archive:
        for asset in assets:
            try:
                opened, _released = asset_file_open(asset=asset, kind="web")
                with opened:
                    archive.writestr(asset_zip_name(brand=brand, asset=asset), opened.read())
            except FileNotFoundError:
                missing.append(str(asset.pk))
    if missing:
        spool.close()
        return f"The web image of asset(s) {', '.join(missing)} is missing from storage; nothing was downloaded."
    spool.seek(0)
    drafts = "" if all(asset.released for asset in assets) else "-draft"
    filename = f"{brand.slug}-assets-{len(assets)}{drafts}.zip"
    return FileResponse(spool, content_type="application/zip", as_attachment=True, filename=filename)
