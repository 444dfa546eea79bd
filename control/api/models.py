"""The model catalog: list and read the families; put, patch and delete one (audited, and live
on every edge with the next policy snapshot)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse

from control.api.access import admin_for
from control.http import ApiError, json_body, not_found, rfc3339
from control.store import catalog as catalogdb
from control.store.state import ControlState
from proxy.core.seedance.catalog import Catalog, CatalogError, ModelFamily, fraction_text


def family_json(family: ModelFamily, stamps: tuple[float, float] | None) -> dict[str, Any]:
    created, updated = stamps or (None, None)
    return {
        "family": family.name,
        **family.spec,
        "retired": family.retired(time.time()),
        "created_at": rfc3339(created),
        "updated_at": rfc3339(updated),
    }


def _catalog_error(exc: CatalogError) -> ApiError:
    return ApiError(400, "InvalidParameter", f"`{exc.param}` {exc.message}")


async def list_models(request: Request) -> JSONResponse:
    """The model catalog: every family, with the pricing settings that apply to all."""
    state: ControlState = request.app.state.control
    await admin_for(request)
    catalog, stamps = state.catalog, await catalogdb.times(state.db)
    return JSONResponse(
        {
            "markup_percent": fraction_text(catalog.markup_percent),
            "credits_per_usd": fraction_text(catalog.credits_per_usd),
            "items": [family_json(f, stamps.get(f.name)) for f in catalog.families.values()],
        }
    )


async def get_model(request: Request) -> JSONResponse:
    """One model family."""
    state: ControlState = request.app.state.control
    await admin_for(request)
    name = request.path_params["family"]
    family = state.catalog.families.get(name)
    if family is None:
        raise not_found("Model family")
    return JSONResponse(family_json(family, (await catalogdb.times(state.db)).get(name)))


async def put_model(request: Request) -> JSONResponse:
    """Create or replace a model family with the whole document."""
    spec = await json_body(request)
    return await _save(request, lambda current: spec, "model.put")


async def patch_model(request: Request) -> JSONResponse:
    """Change some fields of a model family (each given field replaces the stored one)."""
    changes = await json_body(request)

    def merged(current: dict[str, Any] | None) -> dict[str, Any]:
        if current is None:
            raise not_found("Model family")
        return current | changes

    return await _save(request, merged, "model.patch")


async def _save(
    request: Request, make: Callable[[dict[str, Any] | None], dict[str, Any]], action: str
) -> JSONResponse:
    """Check the document `make` builds from the stored one (None: no such family), store it,
    audit it as `action`, publish."""
    state: ControlState = request.app.state.control
    admin = await admin_for(request)
    name = request.path_params["family"]
    async with state.transaction() as tx:
        current = Catalog.from_wire(await catalogdb.wire(tx))
        before = current.families.get(name)
        spec = make(None if before is None else dict(before.spec))
        spec.pop("family", None)  # as `GET` shows it: the name is the path's
        for derived in ("retired", "created_at", "updated_at"):
            spec.pop(derived, None)
        try:
            document = catalogdb.checked(current, name, spec)
        except CatalogError as exc:
            raise _catalog_error(exc) from None
        created = await catalogdb.store(tx, name, document)
        detail = {"created": created, "fields": sorted(document)}
        if before is not None:
            detail["changed"] = sorted(
                key
                for key in set(document) | set(before.spec)
                if document.get(key) != before.spec.get(key)
            )
        await state.audit(tx, admin.token_id, action, name, detail)
    await state.publish()
    family = state.catalog.families[name]
    stamps = (await catalogdb.times(state.db)).get(name)
    return JSONResponse(family_json(family, stamps), status_code=201 if created else 200)


async def delete_model(request: Request) -> JSONResponse:
    """Remove a model family: its models are refused as unknown from then on. Tasks already
    reserved keep the unit price recorded on their reservation."""
    state: ControlState = request.app.state.control
    admin = await admin_for(request)
    name = request.path_params["family"]
    async with state.transaction() as tx:
        if not await catalogdb.remove(tx, name):
            raise not_found("Model family")
        await state.audit(tx, admin.token_id, "model.delete", name)
    await state.publish()
    return JSONResponse({"family": name, "deleted": True})
