"""The official Telnyx Python SDK against oauth-server: the authorization code flow's API
(consent details, the consent decision, /oauth_grants).

The authorize request itself is sent without following redirects (the SDK follows them to the
consent page, which is HTML), to read the consent token the server hands out.
"""

import os
import urllib.parse
import urllib.request
import uuid

import pytest
import telnyx

BASE_URL = os.environ["COMPAT_BASE_URL"]
REDIRECT = "https://app.example.com/callback"
CHALLENGE = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"


def sdk(key=None):
    return telnyx.Telnyx(api_key=key or os.environ["COMPAT_API_KEY"], base_url=BASE_URL, max_retries=0)


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def consent_token(client_id, key=None):
    query = urllib.parse.urlencode({
        "response_type": "code",
        "client_id": client_id,
        "redirect_uri": REDIRECT,
        "scope": "admin",
        "state": "py-state",
        "code_challenge": CHALLENGE,
        "code_challenge_method": "S256",
    })
    req = urllib.request.Request(
        f"{BASE_URL}/oauth/authorize?{query}",
        headers={"Authorization": f"Bearer {key or os.environ['COMPAT_API_KEY']}"},
    )
    opener = urllib.request.build_opener(NoRedirect)
    with pytest.raises(urllib.error.HTTPError) as found:
        opener.open(req)
    assert found.value.code == 302
    location = found.value.headers["Location"]
    return urllib.parse.parse_qs(urllib.parse.urlsplit(location).query)["consent_token"][0]


def new_client():
    return sdk().oauth_clients.create(
        name=f"py-authz-{uuid.uuid4().hex[:10]}",
        client_type="confidential",
        allowed_grant_types=["authorization_code", "refresh_token"],
        allowed_scopes=["admin"],
        redirect_uris=[REDIRECT],
        require_pkce=True,
    ).data


def test_consent_details_decision_and_grants():
    client = sdk()
    created = new_client()
    token = consent_token(created.client_id)

    details = client.oauth.retrieve(token).data
    assert details.client_id == created.client_id
    assert details.name == created.name
    assert details.redirect_uri == REDIRECT
    assert details.verified is False
    assert [s.name for s in details.requested_scopes] == ["admin"]

    decided = client.oauth.grants(allowed=True, consent_token=token)
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(decided.redirect_uri).query)
    assert decided.redirect_uri.startswith(REDIRECT + "?")
    assert query["state"] == ["py-state"] and len(query["code"][0]) == 43

    with pytest.raises(telnyx.UnprocessableEntityError):
        client.oauth.grants(allowed=True, consent_token=token)

    grants = [g for g in client.oauth_grants.list(page_size=1) if g.client_id == created.client_id]
    assert len(grants) == 1
    grant = grants[0]
    assert grant.record_type == "oauth_grant"
    assert grant.scopes == ["admin"]
    assert client.oauth_grants.retrieve(grant.id).data.id == grant.id

    # Another organization's user sees none of it.
    other = sdk(os.environ["COMPAT_OTHER_API_KEY"])
    with pytest.raises(telnyx.NotFoundError):
        other.oauth_grants.retrieve(grant.id)
    with pytest.raises(telnyx.UnprocessableEntityError):
        other.oauth.retrieve(consent_token(created.client_id))

    deleted = client.oauth_grants.delete(grant.id).data
    assert deleted.id == grant.id
    with pytest.raises(telnyx.NotFoundError):
        client.oauth_grants.retrieve(grant.id)


def test_denial_returns_access_denied():
    client = sdk()
    token = consent_token(new_client().client_id)
    decided = client.oauth.grants(allowed=False, consent_token=token)
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(decided.redirect_uri).query)
    assert query["error"] == ["access_denied"]
    assert query["state"] == ["py-state"]
