"""The OpenAPI 3.1 description of the REST API, served at `/api/openapi.json`.

Written as data next to the routes: every route of `buddycloud.http.app.ROUTES` has an
operation here with the same path and method (tests/http/test_openapi.py checks both ways),
its parameters, request body, and every status it answers with, errors included.
"""

from __future__ import annotations

from typing import Any

from buddycloud import __version__
from buddycloud.domain.model import MAX_PAGE, AccessModel, ChannelType, Role, SubscriptionState

Json = dict[str, Any]

JSON = "application/json"
ATOM = "application/atom+xml"

ROLES = [role.value for role in Role]
ROLE_NAMES = [*ROLES, "follower", "follower+post", "banned"]
STATES = [state.value for state in SubscriptionState]


def _ref(name: str) -> Json:
    return {"$ref": f"#/components/schemas/{name}"}


def _string(description: str = "", **extra: Any) -> Json:
    schema: Json = {"type": "string", **extra}
    if description:
        schema["description"] = description
    return schema


def _optional(schema: Json) -> Json:
    """`schema`, or null: an optional field sent as null counts as left out."""
    optional = {**schema, "type": ["string", "null"]}
    if "enum" in schema:
        optional["enum"] = [*schema["enum"], None]
    return optional


SCHEMAS: dict[str, Json] = {
    "Error": {
        "type": "object",
        "description": "Every error: a name (docs/errors.md) and what was wrong.",
        "required": ["error", "message"],
        "properties": {"error": _string(), "message": _string()},
    },
    "Media": {
        "type": "object",
        "required": ["id", "channel"],
        "properties": {
            "id": _string("the media server's id", minLength=1, maxLength=256),
            "channel": _string("the channel holding the file", minLength=1, maxLength=256),
        },
    },
    "Entry": {
        "type": "object",
        "description": "A post (reference 9.1, Entry JSON).",
        "required": ["id", "author", "published", "updated", "content", "media"],
        "properties": {
            "id": _string("the item's local id"),
            "author": _string("the author's bare JID"),
            "published": _string(format="date-time"),
            "updated": _string("the last activity: replies bump their parent", format="date-time"),
            "content": {"type": ["string", "null"], "description": "null for other payloads"},
            "media": {"type": ["array", "null"], "items": _ref("Media")},
            "replyTo": _string("the parent's id, for a reply"),
            "payload": _string("the XML of a payload other than Atom (geolocation, keys)"),
        },
    },
    "EntryInput": {
        "type": "object",
        "example": {"content": "O Romeo, Romeo! wherefore art thou Romeo?"},
        "description": (
            "A new post. `id` and `author` are set by the server and ignored; other keys too."
        ),
        "properties": {
            "content": _optional(_string("the text; required unless the entry rates a post")),
            "title": _optional(_string(maxLength=1024)),
            "replyTo": _optional(
                _string("the id of the post replied to (threads are one level deep)")
            ),
            "media": {
                "type": ["array", "null"],
                "items": _ref("Media"),
                "maxItems": 64,
            },
        },
    },
    "Thread": {
        "type": "object",
        "required": ["id", "updated", "items"],
        "properties": {
            "id": _string("the parent post's id"),
            "updated": _string(format="date-time"),
            "items": {"type": "array", "items": _ref("Entry")},
        },
    },
    "Metadata": {
        "type": "object",
        "required": [
            "title",
            "description",
            "access_model",
            "creation_date",
            "channel_type",
            "default_affiliation",
        ],
        "properties": {
            "title": _string(),
            "description": _string(),
            "access_model": _string(enum=[model.value for model in AccessModel]),
            "creation_date": _string(format="date-time"),
            "channel_type": _string(enum=[kind.value for kind in ChannelType]),
            "default_affiliation": _string(enum=ROLES),
        },
    },
    "MetadataInput": {
        "type": "object",
        "description": "The fields to change; others are left as they are, other keys ignored.",
        "properties": {
            "title": _optional(_string(maxLength=128)),
            "description": _optional(_string(maxLength=1024)),
            "access_model": _optional(_string(enum=["open", "authorize", "whitelist", "local"])),
            "default_affiliation": _optional(
                _string(enum=["member", "publisher", "follower", "follower+post"])
            ),
        },
    },
    "Roles": {
        "type": "object",
        "description": "Followers' bare JIDs and their roles.",
        "additionalProperties": _string(enum=ROLES),
    },
    "RoleChanges": {
        "type": "object",
        "description": "Bare JIDs and the roles to give them (`outcast` bans).",
        "minProperties": 1,
        "maxProperties": 100,
        "additionalProperties": _string(enum=ROLE_NAMES),
    },
    "Subscribed": {
        "type": "object",
        "description": (
            "`<channel>/posts` keys of the channels the user follows, has asked to follow or "
            "holds a role in: the role, or `pending` or `invited` while not yet following."
        ),
        "additionalProperties": _string(enum=[*ROLES, "pending", "invited"]),
    },
    "SubscribeRequest": {
        "type": "object",
        "description": (
            'One `"<channel>/<node>"` key: any value follows the channel, `none` unfollows it.'
        ),
        "minProperties": 1,
        "maxProperties": 1,
        "additionalProperties": _string(),
    },
    "SubscribeResult": {
        "type": "object",
        "description": "The key sent, and what the user now is there (`none` after leaving).",
        "additionalProperties": _string(enum=[*ROLES, "pending", "invited"]),
    },
    "Subscription": {
        "type": "object",
        "required": ["jid", "subscription"],
        "properties": {"jid": _string(), "subscription": _string(enum=STATES)},
    },
    "SubscriptionChange": {
        "type": "object",
        "required": ["jid", "subscription"],
        "properties": {
            "jid": _string(),
            "subscription": _string(enum=["subscribed", "none", "invited"]),
        },
    },
    "ContentResult": {
        "type": "object",
        "required": [
            "id",
            "author",
            "content",
            "published",
            "updated",
            "parent_fullid",
            "parent_simpleid",
            "in_reply_to",
        ],
        "properties": {
            "id": _string(),
            "author": _string(),
            "content": {"type": ["string", "null"]},
            "published": _string(format="date-time"),
            "updated": _string(format="date-time"),
            "parent_fullid": _string("the node: /user/<channel>/<node>"),
            "parent_simpleid": _string("the channel's JID"),
            "in_reply_to": {"type": ["string", "null"]},
        },
    },
    "ChannelResult": {
        "type": "object",
        "required": [
            "jid",
            "title",
            "description",
            "creationDate",
            "channelType",
            "defaultAffiliation",
        ],
        "properties": {
            "jid": _string(),
            "title": _string(),
            "description": _string(),
            "creationDate": _string(format="date-time"),
            "channelType": _string(enum=[kind.value for kind in ChannelType]),
            "defaultAffiliation": _string(enum=ROLES),
        },
    },
    "SearchResults": {
        "type": "object",
        "required": ["items", "rsm"],
        "properties": {
            "items": {
                "type": "array",
                "items": {"anyOf": [_ref("ContentResult"), _ref("ChannelResult")]},
            },
            "rsm": {
                "type": "object",
                "required": ["index", "count"],
                "properties": {
                    "index": {"type": "integer", "minimum": 0},
                    "count": {"type": "integer", "minimum": 0},
                },
            },
        },
    },
    "Health": {
        "type": "object",
        "required": ["status", "storage", "xmpp"],
        "properties": {
            "status": _string(enum=["ok", "unavailable"]),
            "storage": _string(enum=["ok", "timeout", "unavailable"]),
            "xmpp": _string(
                "the component's stream; it does not decide the status",
                enum=["off", "connected", "disconnected"],
            ),
        },
    },
    "SyncSummary": {
        "type": "object",
        "required": ["mentionsCount", "totalCount"],
        "properties": {
            "mentionsCount": {"type": "integer", "minimum": 0},
            "totalCount": {"type": "integer", "minimum": 0},
            "lastPost": _string(format="date-time"),
            "lastMention": _string(format="date-time"),
        },
    },
    "Notifications": {
        "type": "object",
        "required": ["last", "items"],
        "properties": {
            "last": {"type": "number", "description": "milliseconds since 1970; poll from it"},
            "items": {
                "type": "array",
                "items": {
                    "allOf": [
                        _ref("Entry"),
                        {
                            "type": "object",
                            "required": ["source"],
                            "properties": {"source": _string("<channel>/<node>")},
                        },
                    ]
                },
            },
        },
    },
    "AccountInput": {
        "type": "object",
        "required": ["username", "password", "email"],
        "properties": {
            "username": _string("`user` or `user@<domain>`", minLength=1, maxLength=1024),
            "password": _string(minLength=8, maxLength=1024),
            "email": _string(maxLength=254, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$"),
        },
    },
    "Account": {
        "type": "object",
        "required": ["username"],
        "properties": {"username": _string("the account's bare JID")},
    },
    "PasswordChange": {
        "type": "object",
        "required": ["password"],
        "properties": {
            "password": _string(minLength=8, maxLength=1024),
            "username": _string("if given, the signed-in user"),
        },
    },
    "ResetRequest": {
        "type": "object",
        "required": ["username"],
        "properties": {"username": _string("user@domain, or user of this server's domain")},
    },
    "ResetConfirm": {
        "type": "object",
        "required": ["token", "password"],
        "properties": {
            "token": _string("the token the reset mail held"),
            "password": _string(minLength=8, maxLength=1024),
        },
    },
    "Credentials": {
        "type": "object",
        "required": ["username", "password"],
        "properties": {
            "username": _string("user@domain, or user of this server's domain"),
            "password": _string(),
        },
    },
    "Token": {
        "type": "object",
        "required": ["token", "token_type", "expires_in", "jid"],
        "properties": {
            "token": _string("a JWT: send it as `Authorization: Bearer <token>`"),
            "token_type": _string(enum=["Bearer"]),
            "expires_in": {
                "type": "integer",
                "minimum": 1,
                "description": "seconds the token is good for",
            },
            "jid": _string("the signed-in user's bare JID"),
        },
    },
}

# --- parameters -------------------------------------------------------------------------------


def _path(name: str, description: str, example: str, **schema: Any) -> Json:
    return {
        "name": name,
        "in": "path",
        "required": True,
        "description": description,
        "schema": {"type": "string", **schema},
        "example": example,
    }


def _query(name: str, description: str, schema: Json, *, required: bool = False) -> Json:
    return {
        "name": name,
        "in": "query",
        "required": required,
        "description": description,
        "schema": schema,
    }


CHANNEL = _path("channel", "the channel's bare JID, user@domain", "juliet@capulet.lit")
# Where the path has nothing after the channel, only a JID (with its `@`) is a channel.
CHANNEL_ONLY = _path(
    "channel",
    "the channel's bare JID, user@domain",
    "balcony@topics.capulet.lit",
    pattern="^[^/@]+@[^/]+$",
)
NODE = _path("node", "the node's name: posts, status, geoloc, or an application node", "posts")
ITEM = _path(
    "item",
    "the item's id (local, or the global tag: form); `threads` names no item",
    "6e1f2c0a9b8d4e7f8a1b2c3d4e5f6a7b",
)
PAGING = [
    _query(
        "max",
        f"at most this many results (a page holds at most {MAX_PAGE})",
        {"type": "string", "pattern": "^[0-9]{1,6}$"},
    ),
    _query("after", "the page after this cursor (`X-Last` of a page)", _string(maxLength=1024)),
    _query(
        "before",
        "the page before this cursor (`X-First` of a page); empty for the last page",
        _string(maxLength=1024),
    ),
]

# --- responses ----------------------------------------------------------------------------------

PAGE_HEADERS = {
    "X-Count": {
        "description": "how many results the whole set holds (XEP-0059 count)",
        "schema": _string(pattern="^[0-9]+$"),
    },
    "X-First": {"description": "the cursor of the page's first result", "schema": _string()},
    "X-Last": {"description": "the cursor of the page's last result", "schema": _string()},
}

ERRORS = {
    400: "bad input, named in the message: a malformed body, name, id or paging value",
    401: (
        "not signed in where that is needed or might help (`WWW-Authenticate: Basic`), or "
        "wrong credentials"
    ),
    403: "signed in, but not allowed (the role or access model refuses it)",
    404: "no such channel, node, item or endpoint",
    406: "the Accept header takes none of the media types served here",
    409: "a conflict: the channel or node exists, or the change needs an owner or a follow",
    413: "the body or the post is too large",
    415: "the body is neither JSON nor Atom XML",
    429: "too many failed sign-ins lately for this account or address (`Retry-After`)",
    503: (
        "the credentials could not be checked now (the app or the XMPP server is down), or "
        "the XMPP server could not make, change or delete the account's XMPP twin "
        "(`xmpp-server-unavailable`: nothing was changed)"
    ),
}


def _error(status: int) -> Json:
    response: Json = {
        "description": ERRORS[status],
        "content": {JSON: {"schema": _ref("Error")}},
    }
    if status == 401:
        response["headers"] = {
            "WWW-Authenticate": {"description": "how to sign in", "schema": _string()}
        }
    if status == 429:
        response["headers"] = {
            "Retry-After": {
                "description": "seconds to wait before signing in again",
                "schema": _string(pattern="^[0-9]+$"),
            }
        }
    return response


def _json(description: str, schema: Json, *, paged: bool = False) -> Json:
    response: Json = {"description": description, "content": {JSON: {"schema": schema}}}
    if paged:
        response["headers"] = PAGE_HEADERS
    return response


def _entries(description: str, schema: Json, *, paged: bool = False, atom: bool = True) -> Json:
    response = _json(description, schema, paged=paged)
    if atom:
        response["content"][ATOM] = {"schema": _string("an Atom document")}
    return response


def _empty(description: str) -> Json:
    return {"description": description}


SIGN_IN_ERRORS = (401, 429, 503)
READ_ERRORS = (400, 401, 403, 404, 406)
WRITE_ERRORS = (400, 401, 403, 404, 406, 409, 413, 415)


def _operation(
    summary: str,
    responses: dict[int, Json],
    errors: tuple[int, ...],
    *,
    parameters: list[Json] | None = None,
    body: Json | None = None,
    auth: str = "optional",
    tag: str = "channels",
) -> Json:
    operation: Json = {
        "summary": summary,
        "tags": [tag],
        "parameters": parameters or [],
        "responses": {
            **{str(status): response for status, response in responses.items()},
            **{str(status): _error(status) for status in errors},
        },
    }
    if body is not None:
        operation["requestBody"] = body
    if auth in ("optional", "required"):
        # Whoever sends credentials may meet the sign-in limits, or a method that is down.
        for status in SIGN_IN_ERRORS:
            operation["responses"].setdefault(str(status), _error(status))
    if auth == "optional":
        operation["security"] = [{}, {"basic": []}, {"bearer": []}]
    elif auth == "required":
        operation["security"] = [{"basic": []}, {"bearer": []}]
    else:
        operation["security"] = [{}]
    return operation


def _json_body(schema: Json, *, required: bool = True) -> Json:
    return {"required": required, "content": {JSON: {"schema": schema}}}


ENTRY_BODY = {
    "required": True,
    "content": {
        JSON: {"schema": _ref("EntryInput")},
        ATOM: {"schema": _string("an Atom <entry>, or the node's own XML payload")},
    },
}
POSTED = {
    "description": "the post as stored, in the type asked for by Accept, else as sent",
    "headers": {"Location": {"description": "where the post is read", "schema": _string()}},
    "content": {JSON: {"schema": _ref("Entry")}, ATOM: {"schema": _string("an Atom <entry>")}},
}

NO_STORE = {
    "Cache-Control": {"description": "no-store: tokens are never cached", "schema": _string()}
}

CHECK = _operation(
    "Check credentials", {204: _empty("the credentials, if any, are good")}, (401,), tag="accounts"
)

PATHS: dict[str, Json] = {
    "/api": {"get": CHECK},
    "/api/": {"get": {**CHECK, "summary": "Check credentials (as GET /api)"}},
    "/api/account": {
        "post": _operation(
            "Register an account (and its personal channel)",
            {200: _json("the new account", _ref("Account"))},
            (400, 409, 413, 415, 503),
            body=_json_body(_ref("AccountInput")),
            auth="none",
            tag="accounts",
        ),
        "delete": _operation(
            "Delete the signed-in user's account, channels, posts and follows",
            {200: _empty("deleted")},
            (401, 403, 404, 503),
            auth="required",
            tag="accounts",
        ),
    },
    "/api/account/pw/change": {
        "post": _operation(
            "Change the signed-in user's password",
            {200: _empty("changed; the old password no longer works")},
            (400, 401, 403, 404, 413, 415, 503),
            body=_json_body(_ref("PasswordChange")),
            auth="required",
            tag="accounts",
        )
    },
    "/api/account/pw/reset": {
        "post": _operation(
            "Mail a one-time password reset token (the same answer for any name)",
            {202: _json("accepted", {"type": "object"})},
            (400, 413, 415),
            body=_json_body(_ref("ResetRequest")),
            auth="none",
            tag="accounts",
        )
    },
    "/api/account/pw/reset/confirm": {
        "post": _operation(
            "Set a new password with a reset token; every sign-in of the account ends",
            {200: _json("the account whose password changed", _ref("Account"))},
            (400, 413, 415, 503),
            body=_json_body(_ref("ResetConfirm")),
            auth="none",
            tag="accounts",
        )
    },
    "/api/auth/token": {
        "post": _operation(
            "Sign in for a bearer token, or refresh one (docs/http.md, Signing in)",
            {200: {**_json("a token for the user", _ref("Token")), "headers": NO_STORE}},
            (400, 413, 415),
            body=_json_body(_ref("Credentials"), required=False),
            auth="optional",
            tag="accounts",
        ),
        "delete": _operation(
            "Sign out: every token of the signed-in user stops working",
            {204: _empty("signed out")},
            (),
            auth="required",
            tag="accounts",
        ),
    },
    "/api/openapi.json": {
        "get": _operation(
            "This description", {200: _json("OpenAPI 3.1", {"type": "object"})}, (), tag="docs"
        )
    },
    "/api/docs": {
        "get": _operation(
            "This description as a web page",
            {200: {"description": "HTML", "content": {"text/html": {"schema": _string()}}}},
            (),
            tag="docs",
        )
    },
    "/api/search": {
        "get": _operation(
            "Search posts (type=content) or channels (type=metadata)",
            {200: _json("results and their position", _ref("SearchResults"))},
            (400, 401, 406),
            parameters=[
                _query(
                    "type", "what to search", _string(enum=["content", "metadata"]), required=True
                ),
                _query(
                    "q", "the words, all of which must match", _string(minLength=1), required=True
                ),
                PAGING[0],
                _query(
                    "index",
                    "how many results to skip",
                    {"type": "string", "pattern": "^[0-9]{1,7}$"},
                ),
            ],
        )
    },
    "/api/sync": {
        "get": _operation(
            "What is new in every channel the user follows (docs/http.md, Live updates)",
            {
                200: _json(
                    "node id -> its new entries, newest first; with summary=true, counters",
                    {
                        "type": "object",
                        "additionalProperties": {
                            "anyOf": [
                                {"type": "array", "items": _ref("Entry")},
                                _ref("SyncSummary"),
                            ]
                        },
                    },
                )
            },
            (400, 401),
            parameters=[
                {
                    **_query(
                        "since",
                        "ISO-8601: entries updated after this",
                        _string(format="date-time"),
                        required=True,
                    ),
                    "example": "2026-01-01T00:00:00Z",
                },
                {
                    **_query(
                        "max",
                        "entries per node, a positive integer (above 1,000 counts as 1,000)",
                        _string(pattern="^[0-9]{1,6}$"),
                        required=True,
                    ),
                    "example": "10",
                },
                _query(
                    "summary", "true: counters instead of entries", _string(enum=["true", "false"])
                ),
            ],
            auth="required",
            tag="live",
        )
    },
    "/api/notifications/posts": {
        "get": _operation(
            "New posts of followed channels, long-polled (docs/http.md, Live updates)",
            {
                200: _entries(
                    "the posts newer than since, oldest first (JSON), or an Atom feed of "
                    "them whose `next` link carries `last`",
                    _ref("Notifications"),
                )
            },
            (400, 401, 406),
            parameters=[
                _query(
                    "since",
                    "milliseconds since 1970, as `last` gave it; without it the answer is at "
                    "once, with no items",
                    _string(pattern="^[0-9]{1,15}(\\.[0-9]{1,3})?$"),
                )
            ],
            auth="required",
            tag="live",
        )
    },
    "/api/subscribed": {
        "get": _operation(
            "What the signed-in user follows",
            {200: _json("channels and roles", _ref("Subscribed"), paged=True)},
            (400, 401, 406),
            parameters=[*PAGING],
            auth="required",
            tag="following",
        ),
        "post": _operation(
            "Follow or unfollow a channel",
            {200: _json("what the user now is there", _ref("SubscribeResult"))},
            (400, 401, 403, 404, 406, 409, 413, 415),
            body=_json_body(_ref("SubscribeRequest")),
            auth="required",
            tag="following",
        ),
    },
    "/api/{channel}/content/{node}": {
        "get": _operation(
            "A page of a node's posts, newest activity first",
            {
                200: _entries(
                    "the posts (JSON) or an Atom feed",
                    {"type": "array", "items": _ref("Entry")},
                    paged=True,
                )
            },
            READ_ERRORS,
            parameters=[CHANNEL, NODE, *PAGING],
        ),
        "post": _operation(
            "Post",
            {201: POSTED},
            WRITE_ERRORS,
            parameters=[CHANNEL, NODE],
            body=ENTRY_BODY,
            auth="required",
        ),
        "put": _operation(
            "Replace the node's newest post (status, geolocation)",
            {201: POSTED},
            WRITE_ERRORS,
            parameters=[CHANNEL, NODE],
            body=ENTRY_BODY,
            auth="required",
        ),
    },
    "/api/{channel}/content/{node}/threads": {
        "get": _operation(
            "Threads: posts with their replies, most recently active first",
            {200: _json("the threads", {"type": "array", "items": _ref("Thread")}, paged=True)},
            READ_ERRORS,
            parameters=[CHANNEL, NODE, *PAGING],
        )
    },
    "/api/{channel}/content/{node}/{item}": {
        "get": _operation(
            "One post",
            {200: _entries("the post (JSON) or an Atom entry", _ref("Entry"))},
            READ_ERRORS,
            parameters=[CHANNEL, NODE, ITEM],
        ),
        "delete": _operation(
            "Delete a post (own posts; any post for the owner and moderators)",
            {204: _empty("deleted")},
            (400, 401, 403, 404),
            parameters=[CHANNEL, NODE, ITEM],
            auth="required",
        ),
    },
    "/api/{channel}/content/{node}/{item}/replyto": {
        "get": _operation(
            "Replies to a post, newest first (`replyTo` in any case)",
            {200: _json("the replies", {"type": "array", "items": _ref("Entry")}, paged=True)},
            READ_ERRORS,
            parameters=[CHANNEL, NODE, ITEM, *PAGING],
        )
    },
    "/api/{channel}/metadata/{node}": {
        "get": _operation(
            "A channel's metadata",
            {200: _json("the metadata", _ref("Metadata"))},
            READ_ERRORS,
            parameters=[CHANNEL, NODE],
        ),
        "post": _operation(
            "Change a channel's metadata",
            {200: _json("the metadata as it now is", _ref("Metadata"))},
            WRITE_ERRORS,
            parameters=[CHANNEL, NODE],
            body=_json_body(_ref("MetadataInput")),
            auth="required",
        ),
    },
    "/api/{channel}/subscribers/{node}": {
        "get": _operation(
            "Followers and their roles (banned users for the owner and moderators only)",
            {200: _json("followers and roles", _ref("Roles"), paged=True)},
            READ_ERRORS,
            parameters=[CHANNEL, NODE, *PAGING],
            tag="following",
        ),
        "post": _operation(
            "Change followers' roles; `outcast` bans",
            {200: _json("the new roles", _ref("Roles"))},
            WRITE_ERRORS,
            parameters=[CHANNEL, NODE],
            body=_json_body(_ref("RoleChanges")),
            auth="required",
            tag="following",
        ),
    },
    "/api/{channel}/subscribers/{node}/approve": {
        "get": _operation(
            "Follows with their state (pending and invited for the owner and moderators)",
            {
                200: _json(
                    "the follows", {"type": "array", "items": _ref("Subscription")}, paged=True
                )
            },
            READ_ERRORS,
            parameters=[CHANNEL, NODE, *PAGING],
            auth="required",
            tag="following",
        ),
        "post": _operation(
            "Approve (subscribed) or refuse (none) follow requests",
            {
                200: _json(
                    "the follows as they now are", {"type": "array", "items": _ref("Subscription")}
                )
            },
            WRITE_ERRORS,
            parameters=[CHANNEL, NODE],
            body=_json_body(
                {
                    "type": "array",
                    "items": _ref("SubscriptionChange"),
                    "minItems": 1,
                    "maxItems": 100,
                }
            ),
            auth="required",
            tag="following",
        ),
    },
    "/api/{channel}": {
        "post": _operation(
            "Create a topic channel",
            {200: _json("the new channel's metadata", _ref("Metadata"))},
            WRITE_ERRORS,
            parameters=[CHANNEL_ONLY],
            body=_json_body(_ref("MetadataInput"), required=False),
            auth="required",
        ),
        "delete": _operation(
            "Delete a channel with all its nodes and posts",
            {200: _empty("deleted")},
            (400, 401, 403, 404),
            parameters=[CHANNEL_ONLY],
            auth="required",
        ),
    },
    "/metrics": {
        "get": {
            **_operation(
                "Every metric in the Prometheus text format (docs/http.md, Operations)",
                {
                    200: {
                        "description": "the metrics",
                        "headers": {"Cache-Control": {"schema": _string()}},
                        "content": {"text/plain": {"schema": _string()}},
                    }
                },
                (401, 403),
                tag="operations",
            ),
            "security": [{}, {"metrics_token": []}],
            "description": (
                "With `[http] metrics_token` set, send it as a bearer token (401 without); "
                "without one, only loopback callers are answered (403 for others)."
            ),
        }
    },
    "/health": {
        "get": _operation(
            "Whether this server can serve: 200, or 503 when the storage does not answer",
            {
                200: _json("serving", _ref("Health")),
                503: _json("the storage does not answer in time", _ref("Health")),
            },
            (),
            auth="none",
            tag="operations",
        )
    },
    "/api/{channel}/{node}": {
        "post": _operation(
            "Create a node of a channel (an application node)",
            {200: _json("the channel's metadata", _ref("Metadata"))},
            (400, 401, 403, 404, 406, 409),
            parameters=[CHANNEL_ONLY, NODE],
            auth="required",
        ),
        "delete": _operation(
            "Delete a node (`posts` deletes the channel)",
            {200: _empty("deleted")},
            (400, 401, 403, 404),
            parameters=[CHANNEL_ONLY, NODE],
            auth="required",
        ),
    },
}


# Each operation's id: the function serving it (tests/http/test_openapi.py checks them).
OPERATION_IDS: dict[tuple[str, str], str] = {
    ("/api", "get"): "root_get",
    ("/api/", "get"): "root_slash_get",
    ("/api/account", "post"): "account_post",
    ("/api/account", "delete"): "account_delete",
    ("/api/account/pw/change", "post"): "password_change_post",
    ("/api/account/pw/reset", "post"): "password_reset_post",
    ("/api/account/pw/reset/confirm", "post"): "password_reset_confirm_post",
    ("/api/auth/token", "post"): "token_post",
    ("/api/auth/token", "delete"): "token_delete",
    ("/api/openapi.json", "get"): "openapi_get",
    ("/api/docs", "get"): "docs_get",
    ("/api/search", "get"): "search_get",
    ("/api/sync", "get"): "sync_get",
    ("/api/notifications/posts", "get"): "notifications_posts_get",
    ("/api/subscribed", "get"): "subscribed_get",
    ("/api/subscribed", "post"): "subscribed_post",
    ("/api/{channel}/content/{node}", "get"): "content_get",
    ("/api/{channel}/content/{node}", "post"): "content_post",
    ("/api/{channel}/content/{node}", "put"): "content_put",
    ("/api/{channel}/content/{node}/threads", "get"): "threads_get",
    ("/api/{channel}/content/{node}/{item}", "get"): "item_get",
    ("/api/{channel}/content/{node}/{item}", "delete"): "item_delete",
    ("/api/{channel}/content/{node}/{item}/replyto", "get"): "replyto_get",
    ("/api/{channel}/metadata/{node}", "get"): "metadata_get",
    ("/api/{channel}/metadata/{node}", "post"): "metadata_post",
    ("/api/{channel}/subscribers/{node}", "get"): "subscribers_get",
    ("/api/{channel}/subscribers/{node}", "post"): "subscribers_post",
    ("/api/{channel}/subscribers/{node}/approve", "get"): "approve_get",
    ("/api/{channel}/subscribers/{node}/approve", "post"): "approve_post",
    ("/api/{channel}", "post"): "channel_post",
    ("/api/{channel}", "delete"): "channel_delete",
    ("/api/{channel}/{node}", "post"): "node_post",
    ("/api/{channel}/{node}", "delete"): "node_delete",
    ("/metrics", "get"): "metrics_get",
    ("/health", "get"): "health_get",
}


def query_parameters() -> dict[str, frozenset[str]]:
    """Operation id -> the query parameters it takes; the edge refuses any other."""
    return {
        OPERATION_IDS[(path, method)]: frozenset(
            parameter["name"] for parameter in operation["parameters"] if parameter["in"] == "query"
        )
        for path, item in PATHS.items()
        for method, operation in item.items()
    }


def description() -> Json:
    """The whole OpenAPI document."""
    paths = {
        path: {
            method: {"operationId": OPERATION_IDS[(path, method)], **operation}
            for method, operation in item.items()
        }
        for path, item in PATHS.items()
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "buddycloud REST API",
            "version": __version__,
            "description": (
                "Channels over HTTP, with the paths, methods and JSON of the original "
                "Buddycloud HTTP API. Errors are JSON `{error, message}`; a refusal is 401 "
                "when not signed in and 403 when signed in. Lists are paged with `max`, "
                "`after` and `before`, and say where the page is in `X-First`, `X-Last` "
                "and `X-Count`. A query parameter an endpoint does not take is refused (400). "
                "Pages and single posts are JSON or Atom, as `Accept` asks "
                "(JSON for `*/*` or no `Accept`); the rest is JSON. An `Accept` that takes "
                "none of a resource's types is answered 406. Sign in with HTTP Basic on "
                "every request, or exchange the credentials once for a short-lived bearer "
                "token at `POST /api/auth/token` (docs/http.md, Signing in). The live "
                "websocket at `/api/ws` is described in docs/websocket.md."
            ),
        },
        "servers": [{"url": "/"}],
        "components": {
            "schemas": SCHEMAS,
            "securitySchemes": {
                "basic": {"type": "http", "scheme": "basic"},
                "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"},
                "metrics_token": {"type": "http", "scheme": "bearer"},
            },
        },
        "paths": paths,
    }
