#!/usr/bin/env python3
"""token_server.py -- a tiny OAuth2 token endpoint for Nova's GCS tests (loopback only).

It does what Google's token endpoint does for a service account's JWT grant (RFC 7523),
and nothing more:
    POST /token   grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer&assertion=JWT
                  The JWT must be RS256 with a valid signature by the test key, iss = the
                  key's client_email, aud = this endpoint's URL, a non-empty scope, iat not
                  in the future (60 s of slack) and exp - iat <= 3600 s, exp in the future.
                  Answers 200 {"access_token": "...", "expires_in": N, "token_type": "Bearer"}
                  or 400 {"error": "invalid_grant" | "invalid_request", ...}.
    GET /count    {"exchanges": attempts, "issued": tokens issued, "refused": refusals}
    GET /check    200 when the request's "Authorization: Bearer TOKEN" is a token this
                  server issued and it has not expired, 401 otherwise.
The signature is verified against the PUBLIC half of the key (modulus and exponent read
from the key file's private_key, or from --public-key), with plain integer arithmetic
(RSASSA-PKCS1-v1_5, SHA-256), so only the standard library is needed.

Usage:
    token_server.py --key-file SERVICE_ACCOUNT.json [--public-key PUB.pem]
                    [--port N] [--port-file FILE] [--expires-in SECONDS]
                    [--parent-pid PID] [--max-seconds S]
The port (0 = a free one) is written to --port-file once listening and printed as
"PORT n". The server exits after --max-seconds (default 3600) or once --parent-pid is gone.
"""

import argparse
import base64
import hashlib
import hmac
import itertools
import json
import os
import secrets
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

GRANT_TYPE = "urn:ietf:params:oauth:grant-type:jwt-bearer"
SHA256_DIGEST_INFO = bytes.fromhex("3031300d060960864801650304020105000420")
MAX_LIFETIME = 3600
CLOCK_SLACK = 60


# ---- keys: a minimal DER reader, enough for RSA keys in PEM --------------------------------

def der_item(data, pos):
    """Returns (tag, content, next position) of the DER item at pos."""
    tag = data[pos]
    length = data[pos + 1]
    pos += 2
    if length & 0x80:
        count = length & 0x7F
        length = int.from_bytes(data[pos:pos + count], "big")
        pos += count
    if pos + length > len(data):
        raise ValueError("truncated DER")
    return tag, data[pos:pos + length], pos + length


def der_sequence(content):
    items, pos = [], 0
    while pos < len(content):
        tag, value, pos = der_item(content, pos)
        items.append((tag, value))
    return items


def pem_blocks(text):
    """Yields (label, DER bytes) of each PEM block."""
    label, lines = None, []
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("-----BEGIN "):
            label, lines = line[11:].rstrip("-"), []
        elif line.startswith("-----END ") and label:
            yield label, base64.b64decode("".join(lines))
            label = None
        elif label:
            lines.append(line)


def rsa_numbers_from_pem(text):
    """(n, e) of the first RSA key (private PKCS#8/PKCS#1 or public SPKI/PKCS#1) in text."""
    for label, der in pem_blocks(text):
        _, top, _ = der_item(der, 0)
        items = der_sequence(top)
        if label == "PRIVATE KEY":        # PKCS#8: version, algorithm, OCTET STRING{RSAPrivateKey}
            _, inner, _ = der_item(items[2][1], 0)
            fields = der_sequence(inner)
            return int.from_bytes(fields[1][1], "big"), int.from_bytes(fields[2][1], "big")
        if label == "RSA PRIVATE KEY":    # PKCS#1: version, n, e, ...
            return int.from_bytes(items[1][1], "big"), int.from_bytes(items[2][1], "big")
        if label == "PUBLIC KEY":         # SPKI: algorithm, BIT STRING{RSAPublicKey}
            _, inner, _ = der_item(items[1][1][1:], 0)
            fields = der_sequence(inner)
            return int.from_bytes(fields[0][1], "big"), int.from_bytes(fields[1][1], "big")
        if label == "RSA PUBLIC KEY":
            return int.from_bytes(items[0][1], "big"), int.from_bytes(items[1][1], "big")
    raise ValueError("no RSA key found")


def rs256_valid(n, e, message, signature):
    k = (n.bit_length() + 7) // 8
    if len(signature) != k:
        return False
    s = int.from_bytes(signature, "big")
    if s >= n:
        return False
    encoded = pow(s, e, n).to_bytes(k, "big")
    t = SHA256_DIGEST_INFO + hashlib.sha256(message).digest()
    expected = b"\x00\x01" + b"\xff" * (k - len(t) - 3) + b"\x00" + t
    return hmac.compare_digest(encoded, expected)


def b64url_decode(text):
    if any(c not in "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
           for c in text):
        raise ValueError("not base64url")
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


# ---- the server -----------------------------------------------------------------------------

class TokenServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, port, n, e, email, expires_in):
        super().__init__(("127.0.0.1", port), Handler)
        self.n, self.e, self.email, self.expires_in = n, e, email, expires_in
        self.lock = threading.Lock()
        self.exchanges = self.issued = self.refused = 0
        self.tokens = {}  # token -> expiry (time.time())
        self.counter = itertools.count(1)

    def audience_ok(self, aud):
        return aud in ("http://127.0.0.1:%d/token" % self.server_address[1],
                       "http://localhost:%d/token" % self.server_address[1])

    def check_assertion(self, assertion):
        """Returns None when the assertion is acceptable, else the reason."""
        parts = assertion.split(".")
        if len(parts) != 3:
            return "the assertion is not a JWT"
        try:
            header = json.loads(b64url_decode(parts[0]))
            claims = json.loads(b64url_decode(parts[1]))
            signature = b64url_decode(parts[2])
        except (ValueError, UnicodeDecodeError):
            return "the assertion is not valid base64url JSON"
        if not isinstance(header, dict) or header.get("alg") != "RS256":
            return "alg must be RS256"
        if not rs256_valid(self.n, self.e, (parts[0] + "." + parts[1]).encode(), signature):
            return "invalid signature"
        if not isinstance(claims, dict):
            return "claims are not an object"
        now = time.time()
        iat, exp = claims.get("iat"), claims.get("exp")
        if claims.get("iss") != self.email:
            return "unknown issuer"
        if not self.audience_ok(claims.get("aud")):
            return "wrong audience"
        if not isinstance(claims.get("scope"), str) or not claims["scope"]:
            return "no scope"
        if not isinstance(iat, int) or not isinstance(exp, int):
            return "iat and exp must be integers"
        if iat > now + CLOCK_SLACK or exp <= now or exp - iat > MAX_LIFETIME:
            return "the assertion is expired or not yet valid"
        return None

    def issue(self):
        token = "nova-test-token-%d-%s" % (next(self.counter), secrets.token_hex(16))
        with self.lock:
            self.issued += 1
            self.tokens[token] = time.time() + self.expires_in
        return token


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "nova_token_server/1"

    def log_message(self, fmt, *args):
        pass

    def reply(self, status, document):
        body = json.dumps(document).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self):
        server = self.server
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if 0 < length < 1 << 20 else b""
        if urllib.parse.urlsplit(self.path).path != "/token":
            self.reply(404, {"error": "not_found"})
            return
        with server.lock:
            server.exchanges += 1
        form = urllib.parse.parse_qs(body.decode("ascii", "replace"))
        grant = form.get("grant_type", [""])[0]
        assertion = form.get("assertion", [""])[0]
        if grant != GRANT_TYPE or not assertion:
            reason, error = "grant_type must be jwt-bearer with an assertion", "invalid_request"
        else:
            reason, error = server.check_assertion(assertion), "invalid_grant"
        if reason:
            with server.lock:
                server.refused += 1
            self.reply(400, {"error": error, "error_description": reason})
            return
        self.reply(200, {"access_token": server.issue(), "expires_in": server.expires_in,
                         "token_type": "Bearer"})

    def do_GET(self):
        server = self.server
        path = urllib.parse.urlsplit(self.path).path
        if path == "/count":
            with server.lock:
                counts = {"exchanges": server.exchanges, "issued": server.issued,
                          "refused": server.refused}
            self.reply(200, counts)
        elif path == "/check":
            token = self.headers.get("Authorization", "")[len("Bearer "):]
            with server.lock:
                expiry = server.tokens.get(token)
            if expiry and expiry > time.time():
                self.reply(200, {"valid": True})
            else:
                self.reply(401, {"error": "invalid_token"})
        else:
            self.reply(404, {"error": "not_found"})


def watchdog(server, parent_pid, deadline):
    while time.monotonic() < deadline:
        if parent_pid:
            try:
                os.kill(parent_pid, 0)
            except ProcessLookupError:
                break
        time.sleep(0.25)
    server.shutdown()


def main():
    parser = argparse.ArgumentParser(description="OAuth2 JWT-bearer token endpoint for tests")
    parser.add_argument("--key-file", required=True, help="service-account JSON key")
    parser.add_argument("--public-key", help="PEM public key (default: from the key file)")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--port-file")
    parser.add_argument("--expires-in", type=int, default=3600)
    parser.add_argument("--parent-pid", type=int, default=0)
    parser.add_argument("--max-seconds", type=float, default=3600.0)
    args = parser.parse_args()

    with open(args.key_file, encoding="utf-8") as f:
        account = json.load(f)
    if args.public_key:
        with open(args.public_key, encoding="utf-8") as f:
            n, e = rsa_numbers_from_pem(f.read())
    else:
        n, e = rsa_numbers_from_pem(account["private_key"])
    server = TokenServer(args.port, n, e, account["client_email"], max(1, args.expires_in))
    threading.Thread(target=watchdog, daemon=True,
                     args=(server, args.parent_pid,
                           time.monotonic() + max(1.0, args.max_seconds))).start()
    if args.port_file:
        tmp = args.port_file + ".tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            f.write("%d\n" % server.server_address[1])
        os.rename(tmp, args.port_file)
    print("PORT %d" % server.server_address[1], flush=True)
    try:
        server.serve_forever(poll_interval=0.1)
    except KeyboardInterrupt:
        pass
    server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
