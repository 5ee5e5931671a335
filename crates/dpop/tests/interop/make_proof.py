"""Makes RFC 9449 DPoP proofs with pyca/cryptography only, independently of apiauth-dpop.

Usage: make_proof.py HTM HTU ACCESS_TOKEN IAT
Prints one JSON object: {"proof": ..., "jkt": ..., "ath": ...}. The thumbprint is RFC 7638
computed here (canonical JSON of crv, kty, x, y; SHA-256; base64url), the signature is ES256
(DER from cryptography turned into R || S, RFC 7518 §3.4).
"""

import base64
import hashlib
import json
import os
import sys

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def main() -> None:
    htm, htu, token, iat = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    key = ec.generate_private_key(ec.SECP256R1())
    numbers = key.public_key().public_numbers()
    jwk = {
        "kty": "EC",
        "crv": "P-256",
        "x": b64(numbers.x.to_bytes(32, "big")),
        "y": b64(numbers.y.to_bytes(32, "big")),
    }
    canonical = json.dumps(
        {k: jwk[k] for k in ("crv", "kty", "x", "y")}, separators=(",", ":")
    )
    jkt = b64(hashlib.sha256(canonical.encode()).digest())
    ath = b64(hashlib.sha256(token.encode()).digest())
    header = {"typ": "dpop+jwt", "alg": "ES256", "jwk": jwk}
    claims = {"jti": b64(os.urandom(12)), "htm": htm, "htu": htu, "iat": iat, "ath": ath}
    signing_input = (
        b64(json.dumps(header).encode()) + "." + b64(json.dumps(claims).encode())
    )
    der = key.sign(signing_input.encode(), ec.ECDSA(hashes.SHA256()))
    r, s = decode_dss_signature(der)
    sig = r.to_bytes(32, "big") + s.to_bytes(32, "big")
    print(json.dumps({"proof": signing_input + "." + b64(sig), "jkt": jkt, "ath": ath}))


if __name__ == "__main__":
    main()
