"""`/api/<channel>/metadata/<node>`: a channel's metadata (rows 14-15 of reference 9.2)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from buddycloud.domain.model import AccessModel, Role
from buddycloud.http.requests import (
    JSON,
    context,
    json_object,
    negotiate,
    node_id,
    requester,
    signed_in,
    string_field,
)
from buddycloud.http.schemas import metadata_json
from buddycloud.services.config import ConfigUpdate


def config_update(body: Mapping[str, Any], **extra: Any) -> ConfigUpdate:
    """The metadata fields of a JSON body: `title`, `description`, `access_model`,
    `default_affiliation`; other keys are ignored, as the original API did."""
    access_model = string_field(body, "access_model", required=False)
    default_role = string_field(body, "default_affiliation", required=False)
    return ConfigUpdate(
        title=string_field(body, "title", required=False),
        description=string_field(body, "description", required=False),
        access_model=AccessModel.parse(access_model) if access_model is not None else None,
        default_role=Role.parse(default_role) if default_role is not None else None,
        **extra,
    )


async def metadata_get(request: Request) -> Response:
    """`GET /api/<channel>/metadata/<node>`: title, description, access model and more."""
    negotiate(request, (JSON,))
    user = await requester(request)
    node = node_id(request.path_params["channel"], request.path_params["node"])
    view = await context(request).engine.get_node_view(user.jid, node)
    return JSONResponse(metadata_json(view.channel.config))


async def metadata_post(request: Request) -> Response:
    """`POST /api/<channel>/metadata/<node>`: change some of the metadata; 200 with all of
    it as it now is."""
    negotiate(request, (JSON,))
    user = await signed_in(request)
    node = node_id(request.path_params["channel"], request.path_params["node"])
    update = config_update(await json_object(request))
    view = await context(request).engine.configure(user.jid, node, update)
    return JSONResponse(metadata_json(view.channel.config))
