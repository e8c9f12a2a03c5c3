#!/usr/bin/env python3
"""scripted_http.py -- a tiny HTTP/1.1 server that replays scripted responses (tests only).

It covers the protocol faults the real protocol servers never produce: throttling
(429/503 with Retry-After), 5xx, truncated bodies, dropped or reset connections, slow
answers (timeouts), and hand-made XML/JSON bodies. Standard library only; binds 127.0.0.1.

Usage:
    scripted_http.py [--port N] [--port-file FILE] [--script FILE.json]
                     [--parent-pid PID] [--max-seconds S]

The port (0 = a free one) is written to --port-file (atomically, once listening) and
printed as "PORT n" on stdout. The server stops by itself after --max-seconds (default
300) or as soon as --parent-pid is gone, so a crashed test never leaves it behind.

A script is a list of rules; each request takes the FIRST rule that matches it and still
has uses left. A rule (all keys optional):
    {"method": "PUT",                  match the method ...
     "path": "^/bucket/data/",         ... and a regular expression on the path+query
     "times": 2,                       uses before the rule is spent (0 = forever; default 1)
     "status": 503, "headers": {"Retry-After": "0"},
     "body": "text" | "body_hex": "00ff" | "body_size": 1000, "body_byte": "x",
     "echo": true,                     answer the request's own body (status default 200)
     "etag_md5": true,                 add ETag: "<hex MD5 of the request body>" (S3-like)
     "action": "respond" | "truncate" | "drop" | "reset" | "delay",
     "truncate_at": 10,                truncate: bytes of the body actually sent (default half)
     "delay": 2.0}                     seconds to wait before answering (any action; max 60)
A request that matches no rule gets 599 with body "no scripted response".

Control endpoints (never scripted):
    PUT/POST /__script   body = JSON list of rules, appended to the script
    POST /__reset        forgets the script and the log
    GET  /__log          JSON list of the requests seen: method, path, headers (names
                         lower-cased), body_len, body_sha256, and the rule index used
Other scripts may import this module and use ScriptedServer directly.
"""

import argparse
import hashlib
import json
import os
import re
import socket
import struct
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

MAX_DELAY = 60.0
MAX_BODY = 512 * 1024 * 1024


class Script:
    """The rules and the request log, shared by the handler threads."""

    def __init__(self):
        self.lock = threading.Lock()
        self.rules = []
        self.log = []

    def add(self, rules):
        if not isinstance(rules, list):
            raise ValueError("a script is a JSON list of rules")
        with self.lock:
            for rule in rules:
                if not isinstance(rule, dict):
                    raise ValueError("a rule is a JSON object")
                rule = dict(rule)
                rule.setdefault("times", 1)
                rule["_used"] = 0
                if "path" in rule:
                    rule["_path_re"] = re.compile(rule["path"])
                self.rules.append(rule)

    def reset(self):
        with self.lock:
            self.rules = []
            self.log = []

    def take(self, method, path, headers, body):
        """Finds the rule for a request, counts its use and logs the request."""
        with self.lock:
            index = -1
            chosen = None
            for i, rule in enumerate(self.rules):
                if rule.get("method") and rule["method"] != method:
                    continue
                if "_path_re" in rule and not rule["_path_re"].search(path):
                    continue
                if rule["times"] and rule["_used"] >= rule["times"]:
                    continue
                rule["_used"] += 1
                index, chosen = i, rule
                break
            self.log.append({
                "method": method,
                "path": path,
                "headers": {k.lower(): v for k, v in headers.items()},
                "body_len": len(body),
                "body_sha256": hashlib.sha256(body).hexdigest(),
                "rule": index,
            })
            return chosen

    def log_json(self):
        with self.lock:
            return json.dumps(self.log).encode()


def rule_body(rule, request_body):
    if rule.get("echo"):
        return request_body
    if "body_hex" in rule:
        return bytes.fromhex(rule["body_hex"])
    if "body_size" in rule:
        fill = rule.get("body_byte", "x").encode()[:1] or b"x"
        return fill * int(rule["body_size"])
    return rule.get("body", "").encode()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "scripted_http/1"

    def log_message(self, fmt, *args):  # quiet: the log endpoint tells what happened
        pass

    def read_body(self):
        length = int(self.headers.get("Content-Length") or 0)
        if length < 0 or length > MAX_BODY:
            raise ValueError("bad Content-Length")
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            return self.read_chunked()
        return self.rfile.read(length) if length else b""

    def read_chunked(self):
        data = bytearray()
        while True:
            size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
            if size == 0:
                while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                    pass
                return bytes(data)
            data += self.rfile.read(size)
            self.rfile.readline()
            if len(data) > MAX_BODY:
                raise ValueError("body too large")

    def send_plain(self, status, body, headers=None, content_type="text/plain"):
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def control(self, body):
        script = self.server.script
        if self.path == "/__script" and self.command in ("PUT", "POST"):
            try:
                script.add(json.loads(body.decode() or "[]"))
            except (ValueError, re.error) as e:
                self.send_plain(400, str(e).encode())
                return
            self.send_plain(200, b"ok")
        elif self.path == "/__reset" and self.command == "POST":
            script.reset()
            self.send_plain(200, b"ok")
        elif self.path == "/__log" and self.command == "GET":
            self.send_plain(200, script.log_json(), content_type="application/json")
        else:
            self.send_plain(404, b"unknown control endpoint")

    def handle_any(self):
        try:
            body = self.read_body()
        except (ValueError, OSError):
            self.close_connection = True
            return
        if self.path.startswith("/__"):
            self.control(body)
            return
        rule = self.server.script.take(self.command, self.path, self.headers, body)
        if rule is None:
            self.send_plain(599, b"no scripted response")
            return
        delay = min(float(rule.get("delay", 0)), MAX_DELAY)
        if delay > 0:
            time.sleep(delay)
        action = rule.get("action", "respond")
        try:
            if action == "drop":
                self.close_connection = True
                self.connection.shutdown(socket.SHUT_RDWR)
            elif action == "reset":
                self.close_connection = True
                self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                           struct.pack("ii", 1, 0))
                self.connection.close()
            else:
                self.respond(rule, body, action == "truncate")
        except OSError:
            self.close_connection = True  # the client went away (a timeout test)

    def respond(self, rule, request_body, truncate):
        body = rule_body(rule, request_body)
        status = int(rule.get("status", 200))
        headers = dict(rule.get("headers", {}))
        if rule.get("etag_md5"):
            headers["ETag"] = '"%s"' % hashlib.md5(request_body).hexdigest()
        self.send_response(status)
        names = {k.lower() for k in headers}
        for name, value in headers.items():
            self.send_header(name, value)
        if "content-length" not in names:
            self.send_header("Content-Length", str(len(body)))
        if truncate:
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command == "HEAD":
            return
        if truncate:
            cut = int(rule.get("truncate_at", len(body) // 2))
            self.wfile.write(body[:max(0, min(cut, len(body) - 1))])
            self.wfile.flush()
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
        else:
            self.wfile.write(body)

    do_GET = do_PUT = do_POST = do_HEAD = do_DELETE = do_PATCH = handle_any


class ScriptedServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, port=0):
        super().__init__(("127.0.0.1", port), Handler)
        self.script = Script()

    @property
    def port(self):
        return self.server_address[1]


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
    parser = argparse.ArgumentParser(description="replays scripted HTTP responses")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--port-file")
    parser.add_argument("--script")
    parser.add_argument("--parent-pid", type=int, default=0)
    parser.add_argument("--max-seconds", type=float, default=300.0)
    args = parser.parse_args()

    server = ScriptedServer(args.port)
    if args.script:
        with open(args.script, encoding="utf-8") as f:
            server.script.add(json.load(f))
    threading.Thread(target=watchdog, daemon=True,
                     args=(server, args.parent_pid,
                           time.monotonic() + max(1.0, args.max_seconds))).start()
    if args.port_file:
        tmp = args.port_file + ".tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            f.write("%d\n" % server.port)
        os.rename(tmp, args.port_file)
    print("PORT %d" % server.port, flush=True)
    try:
        server.serve_forever(poll_interval=0.1)
    except KeyboardInterrupt:
        pass
    server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
