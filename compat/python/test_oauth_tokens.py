"""The official Telnyx Python SDK against oauth-server: discovery, the JWK set, the token endpoint
with all three grants (the code from the consent decision, with PKCE), introspection, and a
revoked grant's tokens turning inactive.
"""

import os
import urllib.parse
import uuid

import pytest
import telnyx

from test_oauth_authorization import REDIRECT, consent_token, sdk

# RFC 7636 Appendix B: this verifier hashes to the challenge consent_token() sends.
VERIFIER = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"


def every_grant_client():
    return sdk().oauth_clients.create(
        name=f"py-tokens-{uuid.uuid4().hex[:10]}",
        client_type="confidential",
        allowed_grant_types=["authorization_code", "refresh_token", "client_credentials"],
        allowed_scopes=["admin", "messaging"],
        redirect_uris=[REDIRECT],
    ).data


def test_discovery_and_jwks():
    client = sdk()
    meta = client.well_known.retrieve_authorization_server_metadata()
    base = os.environ["COMPAT_BASE_URL"]
    assert meta.issuer and base.startswith(meta.issuer)
    assert meta.token_endpoint == f"{meta.issuer}/oauth/token"
    assert set(meta.grant_types_supported) == {"authorization_code", "refresh_token", "client_credentials"}
    assert meta.code_challenge_methods_supported == ["S256"]
    assert "admin" in meta.scopes_supported
    resource = client.well_known.retrieve_protected_resource_metadata()
    assert resource.resource == meta.issuer
    assert resource.authorization_servers == [meta.issuer]
    keys = client.oauth.retrieve_jwks().keys
    assert keys and keys[0].kid and keys[0].alg == "ES256" and keys[0].use == "sig"


def test_client_credentials_and_introspection():
    c = every_grant_client()
    client = sdk()
    token = client.oauth.token(grant_type="client_credentials", client_id=c.client_id, client_secret=c.client_secret, scope="messaging")
    assert token.token_type == "Bearer"
    assert isinstance(token.expires_in, int) and token.expires_in > 0
    assert token.scope == "messaging"
    info = client.oauth.introspect(token=token.access_token)
    assert info.active is True
    assert info.client_id == c.client_id
    assert info.scope == "messaging"
    assert isinstance(info.exp, int) and isinstance(info.iat, int)
    assert client.oauth.introspect(token="not-a-token").active is False
    with pytest.raises(telnyx.AuthenticationError):
        client.oauth.token(grant_type="client_credentials", client_id=c.client_id, client_secret="wrong")


def test_code_refresh_and_a_revoked_grant():
    c = every_grant_client()
    client = sdk()
    # The SDK's own authorize call follows the redirects (to the sign-in page: no browser session).
    client.oauth.retrieve_authorize(client_id=c.client_id, redirect_uri=REDIRECT, response_type="code",
                                    code_challenge="E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM", code_challenge_method="S256")

    decision = client.oauth.grants(allowed=True, consent_token=consent_token(c.client_id))
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(decision.redirect_uri).query)
    assert query["state"] == ["py-state"]
    code = query["code"][0]

    tokens = client.oauth.token(grant_type="authorization_code", code=code, code_verifier=VERIFIER, redirect_uri=REDIRECT,
                                client_id=c.client_id, client_secret=c.client_secret)
    assert tokens.refresh_token and tokens.scope == "admin"
    with pytest.raises(telnyx.BadRequestError) as replay:
        client.oauth.token(grant_type="authorization_code", code=code, code_verifier=VERIFIER, redirect_uri=REDIRECT,
                           client_id=c.client_id, client_secret=c.client_secret)
    assert replay.value.body["error"] == "invalid_grant"

    # The replay revoked the grant: start again.
    decision = client.oauth.grants(allowed=True, consent_token=consent_token(c.client_id))
    code = urllib.parse.parse_qs(urllib.parse.urlsplit(decision.redirect_uri).query)["code"][0]
    tokens = client.oauth.token(grant_type="authorization_code", code=code, code_verifier=VERIFIER, redirect_uri=REDIRECT,
                                client_id=c.client_id, client_secret=c.client_secret)
    refreshed = client.oauth.token(grant_type="refresh_token", refresh_token=tokens.refresh_token,
                                   client_id=c.client_id, client_secret=c.client_secret)
    assert refreshed.refresh_token != tokens.refresh_token
    assert client.oauth.introspect(token=refreshed.access_token).active is True

    grant = next(g for g in client.oauth_grants.list() if g.client_id == c.client_id)
    assert client.oauth_grants.delete(grant.id).data.id == grant.id
    assert client.oauth.introspect(token=refreshed.access_token).active is False
    with pytest.raises(telnyx.BadRequestError) as after:
        client.oauth.token(grant_type="refresh_token", refresh_token=refreshed.refresh_token,
                           client_id=c.client_id, client_secret=c.client_secret)
    assert after.value.body["error"] == "invalid_grant"
