"""The official Telnyx Python SDK against oauth-server: the client registry and registration.

Environment (set by compat/run): COMPAT_BASE_URL, COMPAT_API_KEY (organization A),
COMPAT_OTHER_API_KEY (organization B), COMPAT_LIMITED_BASE_URL and COMPAT_LIMITED_API_KEY (a second
instance with a management-API limit of 2 requests at once, then 2 per second, per key). TELNYX_CLIENT_ID / TELNYX_CLIENT_SECRET must stay unset:
with them the SDK would call the real Telnyx host for a token.
"""

import os
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
import telnyx

BASE_URL = os.environ["COMPAT_BASE_URL"]
assert "TELNYX_CLIENT_ID" not in os.environ and "TELNYX_CLIENT_SECRET" not in os.environ


def sdk(key=None):
    return telnyx.Telnyx(api_key=key or os.environ["COMPAT_API_KEY"], base_url=BASE_URL, max_retries=0)


def unique(prefix):
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def test_create_retrieve_update_delete():
    client = sdk()
    name = unique("py-crud")
    created = client.oauth_clients.create(
        name=name,
        client_type="confidential",
        allowed_grant_types=["client_credentials", "authorization_code", "refresh_token"],
        allowed_scopes=["admin"],
        redirect_uris=["https://app.example.com/callback"],
        logo_uri="https://app.example.com/logo.png",
    ).data
    assert created.record_type == "oauth_client"
    assert created.name == name
    assert created.client_type == "confidential"
    assert created.client_secret and len(created.client_secret) == 43
    assert created.redirect_uris == ["https://app.example.com/callback"]

    got = client.oauth_clients.retrieve(created.client_id).data
    assert got.client_id == created.client_id
    assert got.client_secret is None
    assert got.org_id == created.org_id

    updated = client.oauth_clients.update(created.client_id, name=name + "-renamed", require_pkce=True).data
    assert updated.name == name + "-renamed"
    assert updated.require_pkce is True
    assert updated.logo_uri == "https://app.example.com/logo.png"

    assert client.oauth_clients.delete(created.client_id) is None
    with pytest.raises(telnyx.NotFoundError):
        client.oauth_clients.retrieve(created.client_id)


def test_auto_paging_with_every_filter():
    client = sdk()
    prefix = unique("py-page")
    ids = []
    for i in range(7):
        kind = "public" if i % 3 == 0 else "confidential"
        grants = ["authorization_code"] if kind == "public" else ["client_credentials"]
        c = client.oauth_clients.create(
            name=f"{prefix}-{i}",
            client_type=kind,
            allowed_grant_types=grants,
            allowed_scopes=["messaging"],
            redirect_uris=["http://127.0.0.1/callback"],
        ).data
        ids.append(c.client_id)

    # Iterating the page fetches page after page, keeping the filter.
    seen = [c.client_id for c in client.oauth_clients.list(filter_name_contains=prefix, page_size=2)]
    assert seen == ids, "every client once, in creation order, across four pages"

    first = client.oauth_clients.list(filter_name_contains=prefix, page_size=3)
    assert first.meta.total_pages == 3 and first.meta.total_results == 7
    assert first.has_next_page()
    second = first.get_next_page()
    assert [c.client_id for c in second.data] == ids[3:6]

    public = [c.client_id for c in client.oauth_clients.list(filter_name_contains=prefix, filter_client_type="public", page_size=1)]
    assert public == [ids[0], ids[3], ids[6]]
    cc = [c.client_id for c in client.oauth_clients.list(filter_name_contains=prefix, filter_allowed_grant_types_contains="client_credentials")]
    assert cc == [ids[1], ids[2], ids[4], ids[5]]
    unverified = [c.client_id for c in client.oauth_clients.list(filter_name_contains=prefix, filter_verified=False)]
    assert unverified == ids
    assert list(client.oauth_clients.list(filter_name_contains=prefix, filter_verified=True)) == []
    exact = [c.client_id for c in client.oauth_clients.list(filter_name=f"{prefix}-4")]
    assert exact == [ids[4]]
    by_id = [c.name for c in client.oauth_clients.list(filter_client_id=ids[5])]
    assert by_id == [f"{prefix}-5"]


def test_register():
    client = sdk()
    r = client.oauth.register(
        client_name=unique("py-mcp"),
        redirect_uris=["http://127.0.0.1:33418/callback"],
        token_endpoint_auth_method="none",
        grant_types=["authorization_code", "refresh_token"],
        scope="messaging",
    )
    assert r.client_id and isinstance(r.client_id_issued_at, int)
    assert r.token_endpoint_auth_method == "none"
    assert r.client_secret is None
    confidential = client.oauth.register(redirect_uris=["https://app.example.com/cb"])
    assert confidential.client_secret
    assert confidential.grant_types == ["authorization_code"]


def test_errors_by_status():
    with pytest.raises(telnyx.AuthenticationError):
        sdk("KEYnot-a-real-key").oauth_clients.list()
    client = sdk()
    with pytest.raises(telnyx.NotFoundError) as e:
        client.oauth_clients.retrieve("00000000-0000-0000-0000-000000000000")
    assert e.value.status_code == 404
    with pytest.raises(telnyx.UnprocessableEntityError) as e:
        client.oauth_clients.create(name="x", client_type="confidential", allowed_grant_types=["authorization_code"], allowed_scopes=["admin"])
    assert e.value.body["errors"][0]["source"]["pointer"] == "/redirect_uris"
    with pytest.raises(telnyx.BadRequestError):
        client.oauth_clients.list(page_size=101)
    with pytest.raises(telnyx.BadRequestError):
        client.oauth.register(redirect_uris=["http://evil.example/cb"])


def test_another_organization_sees_nothing():
    mine = sdk().oauth_clients.create(
        name=unique("py-tenant"), client_type="confidential", allowed_grant_types=["client_credentials"], allowed_scopes=["admin"]
    ).data
    other = sdk(os.environ["COMPAT_OTHER_API_KEY"])
    with pytest.raises(telnyx.NotFoundError):
        other.oauth_clients.retrieve(mine.client_id)
    with pytest.raises(telnyx.NotFoundError):
        other.oauth_clients.update(mine.client_id, name="stolen")
    with pytest.raises(telnyx.NotFoundError):
        other.oauth_clients.delete(mine.client_id)
    assert list(other.oauth_clients.list(filter_client_id=mine.client_id)) == []
    assert sdk().oauth_clients.retrieve(mine.client_id).data.name == mine.name


def test_a_burst_ends_in_the_rate_limit_error():
    # Twenty concurrent calls against 2 at once and 2 per second: even after the SDK's one retry
    # (which waits for the server's Retry-After of 1 s) most of them are refused.
    client = telnyx.Telnyx(
        api_key=os.environ["COMPAT_LIMITED_API_KEY"],
        base_url=os.environ["COMPAT_LIMITED_BASE_URL"],
        max_retries=1,
    )

    def call(_):
        try:
            client.oauth_clients.list()
            return None
        except telnyx.RateLimitError as e:
            return e

    with ThreadPoolExecutor(max_workers=20) as pool:
        results = list(pool.map(call, range(20)))
    refused = [e for e in results if e is not None]
    assert 1 <= len(results) - len(refused) <= 10
    assert refused
    e = refused[0]
    assert e.status_code == 429
    assert e.response.headers["retry-after"] == "1"
    assert e.body["error"] == "rate_limited"
