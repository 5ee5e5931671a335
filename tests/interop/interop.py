"""Interoperability of the example SaaS API with independent, widely used clients.

- authlib: OAuth 2.0 client credentials with client_secret_basic and client_secret_post;
- PyJWT: verifies the issued RFC 9068 access tokens against the published JWKS;
- http-message-signatures: RFC 9421 hmac-sha256 signing (with nonce and Content-Digest);
- requests: API keys and the timestamped webhook profile;
- PyJWT with pyca/cryptography: DPoP proofs (RFC 9449) and the RFC 7638 thumbprint, made
  here, get a DPoP-bound token and call the API with it.

Usage: python interop.py <credentials.json>. Prints one line per check and a closing
"N passed, M failed" line; exits non-zero on any failure.
"""

import base64
import hashlib
import hmac
import json
import secrets
import sys
import time
import traceback

import jwt
import requests
from authlib.integrations.requests_client import OAuth2Session
from http_message_signatures import HTTPMessageSigner, HTTPSignatureKeyResolver, algorithms

creds = json.load(open(sys.argv[1]))
BASE = creds["base_url"]
CLIENT = creds["oauth_client"]
results = []


def check(name):
    def run(fn):
        try:
            fn()
            results.append((name, None))
            print(f"ok   {name}")
        except Exception as e:  # noqa: BLE001 - every failure is reported, none hides another
            results.append((name, e))
            print(f"FAIL {name}: {e!r}")
            traceback.print_exc()
        return fn
    return run


def expect(resp, status):
    assert resp.status_code == status, f"{resp.request.method} {resp.url}: {resp.status_code} {resp.text[:200]}"
    return resp


def authlib_token(auth_method, scope):
    session = OAuth2Session(
        CLIENT["client_id"], CLIENT["client_secret"], scope=scope, token_endpoint_auth_method=auth_method
    )
    return session.fetch_token(f"{BASE}/oauth/token", grant_type="client_credentials")


@check("authlib client_secret_basic token works as a Bearer token")
def _():
    token = authlib_token("client_secret_basic", "companies:read")
    assert token["token_type"].lower() == "bearer"
    r = requests.get(f"{BASE}/v1/companies/acme.com", headers={"Authorization": f"Bearer {token['access_token']}"})
    expect(r, 200)


@check("authlib client_secret_post token carries the requested scopes")
def _():
    token = authlib_token("client_secret_post", "contacts:read enrich:write")
    headers = {"Authorization": f"Bearer {token['access_token']}"}
    expect(requests.post(f"{BASE}/v1/contacts/search", json={"company_domain": "acme.com"}, headers=headers), 200)
    expect(requests.get(f"{BASE}/v1/companies/acme.com", headers=headers), 403)


@check("PyJWT verifies the access token against the published JWKS (RFC 9068)")
def _():
    token = authlib_token("client_secret_basic", "companies:read")["access_token"]
    meta = expect(requests.get(f"{BASE}/.well-known/oauth-authorization-server"), 200).json()
    header = jwt.get_unverified_header(token)
    assert header["typ"].lower() in ("at+jwt", "application/at+jwt"), header
    key = jwt.PyJWKClient(meta["jwks_uri"]).get_signing_key_from_jwt(token)
    claims = jwt.decode(
        token,
        key.key,
        algorithms=[header["alg"]],
        issuer=meta["issuer"],
        audience=f"{BASE}/v1",
        options={"require": ["exp", "iat", "jti", "sub", "client_id"]},
    )
    assert claims["client_id"] == CLIENT["client_id"], claims
    assert claims["scope"] == "companies:read", claims


@check("a revoked token is refused")
def _():
    token = authlib_token("client_secret_basic", "companies:read")["access_token"]
    expect(requests.post(f"{BASE}/oauth/revoke", data={"token": token},
                         auth=(CLIENT["client_id"], CLIENT["client_secret"])), 200)
    expect(requests.get(f"{BASE}/v1/companies/acme.com", headers={"Authorization": f"Bearer {token}"}), 401)


class Keys(HTTPSignatureKeyResolver):
    def __init__(self, secret):
        self.secret = secret

    def resolve_public_key(self, key_id):
        return self.secret

    def resolve_private_key(self, key_id):
        return self.secret


HMAC_KEY_ID = creds["hmac"]["key_id"]
SIGNER = HTTPMessageSigner(
    signature_algorithm=algorithms.HMAC_SHA256,
    key_resolver=Keys(base64.b64decode(creds["hmac"]["secret_base64"])),
)


def signed(method, path, body=None):
    req = requests.Request(method, f"{BASE}{path}", data=body,
                           headers={"Content-Type": "application/json"} if body else {}).prepare()
    covered = ["@method", "@authority", "@path", "@query"]
    SIGNER.sign(req, key_id=HMAC_KEY_ID, nonce=secrets.token_hex(16), label="sig1",
                covered_component_ids=covered, body=body)
    return req


@check("http-message-signatures signs a GET the API accepts (RFC 9421 hmac-sha256)")
def _():
    with requests.Session() as s:
        expect(s.send(signed("GET", "/v1/companies/acme.com")), 200)


@check("http-message-signatures signs a POST with Content-Digest; a replay is refused")
def _():
    req = signed("POST", "/v1/enrichments", b'{"email":"ada@acme.com"}')
    with requests.Session() as s:
        expect(s.send(req), 201)
        expect(s.send(req), 401)


@check("the CRM webhook accepts a signed event with nonce and Content-Digest")
def _():
    with requests.Session() as s:
        expect(s.send(signed("POST", "/v1/webhooks/crm", b'{"type":"contact.updated"}')), 202)


@check("API key via requests; the timestamped billing webhook")
def _():
    expect(requests.get(f"{BASE}/v1/companies/acme.com", headers={"X-API-Key": creds["api_keys"]["pro"]["key"]}), 200)
    body = b'{"type":"invoice.paid"}'
    t = str(int(time.time()))
    v1 = hmac.new(creds["webhook_secret"].encode(), t.encode() + b"." + body, hashlib.sha256).hexdigest()
    expect(requests.post(f"{BASE}/v1/webhooks/billing", data=body, headers={"Webhook-Signature": f"t={t},v1={v1}"}), 202)


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class DpopClient:
    """An RFC 9449 client: a P-256 key from pyca/cryptography, proofs signed by PyJWT."""

    def __init__(self):
        from cryptography.hazmat.primitives.asymmetric import ec

        self.key = ec.generate_private_key(ec.SECP256R1())
        n = self.key.public_key().public_numbers()
        self.jwk = {"kty": "EC", "crv": "P-256",
                    "x": b64url(n.x.to_bytes(32, "big")), "y": b64url(n.y.to_bytes(32, "big"))}
        # RFC 7638 §3: the required members in lexicographic order, no whitespace.
        canonical = json.dumps({k: self.jwk[k] for k in ("crv", "kty", "x", "y")}, separators=(",", ":"))
        self.jkt = b64url(hashlib.sha256(canonical.encode()).digest())

    def proof(self, htm, htu, token=None, nonce=None):
        claims = {"jti": secrets.token_urlsafe(16), "htm": htm, "htu": htu, "iat": int(time.time())}
        if token is not None:
            claims["ath"] = b64url(hashlib.sha256(token.encode()).digest())
        if nonce is not None:
            claims["nonce"] = nonce
        return jwt.encode(claims, self.key, algorithm="ES256", headers={"typ": "dpop+jwt", "jwk": self.jwk})

    def token(self):
        url = f"{BASE}/oauth/token"
        send = lambda proof: requests.post(url, data={"grant_type": "client_credentials", "scope": "companies:read"},
                                           auth=(CLIENT["client_id"], CLIENT["client_secret"]),
                                           headers={"DPoP": proof})
        r = send(self.proof("POST", url))
        if r.status_code == 400 and "DPoP-Nonce" in r.headers:  # RFC 9449 §8
            r = send(self.proof("POST", url, nonce=r.headers["DPoP-Nonce"]))
        return expect(r, 200).json()


@check("a DPoP proof made by PyJWT and pyca/cryptography gets a token bound to its key (RFC 9449 §5)")
def _():
    client = DpopClient()
    answer = client.token()
    assert answer["token_type"] == "DPoP", answer
    claims = jwt.decode(answer["access_token"], options={"verify_signature": False})
    assert claims["cnf"]["jkt"] == client.jkt, (claims, client.jkt)


@check("the DPoP-bound token reads the API with a fresh PyJWT proof; replayed or as Bearer it is refused")
def _():
    client = DpopClient()
    token = client.token()["access_token"]
    url = f"{BASE}/v1/companies/acme.com"
    proof = client.proof("GET", url, token)
    headers = {"Authorization": f"DPoP {token}", "DPoP": proof}
    r = requests.get(url, headers=headers)
    if r.status_code == 401 and "DPoP-Nonce" in r.headers:  # RFC 9449 §9
        proof = client.proof("GET", url, token, nonce=r.headers["DPoP-Nonce"])
        headers["DPoP"] = proof
        r = requests.get(url, headers=headers)
    assert expect(r, 200).json()["domain"] == "acme.com"
    replay = expect(requests.get(url, headers=headers), 401)
    assert replay.json()["error"] == "invalid_dpop_proof", replay.text
    bearer = expect(requests.get(url, headers={"Authorization": f"Bearer {token}"}), 401)
    assert bearer.json()["error"] == "invalid_token", bearer.text


@check("the RFC 9728 metadata lists the DPoP algorithms PyJWT signs with")
def _():
    meta = expect(requests.get(f"{BASE}/.well-known/oauth-protected-resource/v1"), 200).json()
    assert "ES256" in meta["dpop_signing_alg_values_supported"], meta


failed = sum(1 for _, e in results if e is not None)
print(f"{len(results) - failed} passed, {failed} failed")
sys.exit(1 if failed else 0)
