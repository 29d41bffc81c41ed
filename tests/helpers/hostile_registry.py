#!/usr/bin/env python3
"""A registry that misbehaves on purpose, for tests/registry.rs.

Usage: hostile_registry.py LOG ARCH
Listens on 127.0.0.1 and a free port, prints the port on stdout, and logs
"METHOD PATH [Range]" of each request to LOG. The repository's last part
picks the misbehaviour (127.0.0.1:PORT/hostile/<case>:1); every case serves
the same small image (one uncompressed layer of 256 KiB) except where the
case says otherwise. ARCH is the platform (amd64, arm64, ...) of its index.
"""

import hashlib
import io
import json
import os
import sys
import tarfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

LOG, ARCH = sys.argv[1], sys.argv[2]
log_lock = threading.Lock()


def sha(b):
    return "sha256:" + hashlib.sha256(b).hexdigest()


def make_layer(data):
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.GNU_FORMAT) as t:
        info = tarfile.TarInfo("hello")
        info.size = len(data)
        info.mode = 0o644
        info.mtime = 1700000000
        t.addfile(info, io.BytesIO(data))
    return out.getvalue()


def make_config(layer):
    return json.dumps(
        {
            "architecture": ARCH,
            "os": "linux",
            "config": {"Cmd": ["/hello"]},
            "rootfs": {"type": "layers", "diff_ids": [sha(layer)]},
        }
    ).encode()


LAYER_MT = "application/vnd.oci.image.layer.v1.tar"
# (layer, config) of the small image, and of the 12 MiB one `slow` serves.
SMALL = make_layer(bytes((i * 7 + i // 251) % 256 for i in range(256 << 10)))
BIG = make_layer(os.urandom(12 << 20))
IMAGES = {layer: (layer, make_config(layer)) for layer in (SMALL, BIG)}


def image(case):
    return IMAGES[BIG if case == "slow" else SMALL]


def desc(mt, blob, size=None):
    return {"mediaType": mt, "digest": sha(blob), "size": len(blob) if size is None else size}


def manifest(case, config_size=None, layer_size=None, layers=None):
    LAYER, CONFIG = image(case)
    return json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": desc("application/vnd.oci.image.config.v1+json", CONFIG, config_size),
            "layers": layers or [desc(LAYER_MT, LAYER, layer_size)],
        }
    ).encode()


def many_layers(n):
    return [
        {"mediaType": LAYER_MT, "digest": sha(str(i).encode()), "size": 100}
        for i in range(n)
    ]


MANIFEST_MT = "application/vnd.oci.image.manifest.v1+json"
INDEX_MT = "application/vnd.oci.image.index.v1+json"


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.0"

    def log_message(self, *args):
        pass

    def send(self, status, body=b"", ctype="application/json", length=None, headers=()):
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        if length is not False:
            self.send_header("Content-Length", str(len(body) if length is None else length))
        for k, v in headers:
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)
        self.wfile.flush()

    def do_GET(self):
        rng = self.headers.get("Range")
        with log_lock, open(LOG, "a") as f:
            f.write(f"GET {self.path}{' ' + rng if rng else ''}\n")
        parts = self.path.split("/")
        if self.path == "/v2/":
            return self.send(200, b"{}")
        # /v2/hostile/<case>/(manifests|blobs)/<ref>
        if len(parts) != 6 or parts[1] != "v2":
            return self.send(404, b'{"errors":[{"code":"NAME_UNKNOWN"}]}')
        case, kind, ref = parts[3], parts[4], parts[5]
        try:
            if kind == "manifests":
                self.manifest(case, ref)
            else:
                self.blob(case, ref, rng)
        except (BrokenPipeError, ConnectionResetError):
            pass

    def manifest(self, case, ref):
        if case == "silent":
            # Takes the request and answers nothing.
            time.sleep(60)
            return
        if case == "layers":
            return self.send(200, manifest(case, layers=many_layers(10000)), MANIFEST_MT)
        if case == "bigconfig":
            return self.send(200, manifest(case, config_size=200 << 20), MANIFEST_MT)
        if case == "huge":
            return self.send(200, manifest(case, layer_size=10**12), MANIFEST_MT)
        if case == "notjson":
            return self.send(200, b"<html>502 Bad Gateway</html>", MANIFEST_MT)
        if case == "bigmanifest":
            # Declares 200 MiB; sends a little and waits.
            self.send(200, b'{"schemaVersion":2,', MANIFEST_MT, length=200 << 20)
            time.sleep(30)
            return
        if case == "streammanifest":
            # No length: a JSON document that never ends.
            self.send(200, b'{"schemaVersion":2,"x":"', MANIFEST_MT, length=False)
            while True:
                self.wfile.write(b"a" * 65536)
        if case == "bigindex":
            if ref.startswith("sha256:"):
                return self.send(404, b'{"errors":[{"code":"MANIFEST_UNKNOWN"}]}')
            index = {
                "schemaVersion": 2,
                "mediaType": INDEX_MT,
                "manifests": [
                    {
                        "mediaType": MANIFEST_MT,
                        "digest": sha(b"nothing"),
                        "size": 10**9,
                        "platform": {"os": "linux", "architecture": ARCH},
                    }
                ],
            }
            return self.send(200, json.dumps(index).encode(), INDEX_MT)
        return self.send(200, manifest(case), MANIFEST_MT)

    def blob(self, case, digest, rng):
        LAYER, CONFIG = image(case)
        if digest == sha(CONFIG):
            return self.send(200, CONFIG, "application/octet-stream")
        if digest != sha(LAYER):
            return self.send(404, b'{"errors":[{"code":"BLOB_UNKNOWN"}]}')
        octet = "application/octet-stream"
        if case in ("huge", "endless"):
            # Without end, and without a length.
            self.send(200, b"", octet, length=False)
            while True:
                self.wfile.write(b"\0" * 65536)
        if case == "longer":
            return self.send(200, LAYER + b"more", octet)
        if case == "trickle":
            self.send(200, b"", octet, length=len(LAYER))
            for b in LAYER:
                self.wfile.write(bytes([b]))
                self.wfile.flush()
                time.sleep(0.3)
            return
        if case == "stall":
            self.send(200, b"", octet, length=len(LAYER))
            time.sleep(60)
            return
        if case == "digest":
            bad = bytearray(LAYER)
            bad[len(bad) // 2] ^= 0xFF
            return self.send(200, bytes(bad), octet)
        if case == "short":
            return self.send(200, LAYER[: len(LAYER) // 2], octet)
        if case == "truncated":
            # Announces the whole blob, sends half, and hangs up.
            self.send(200, LAYER[: len(LAYER) // 2], octet, length=len(LAYER))
            return
        if case == "redirect":
            return self.send(302, b"", octet, headers=[("Location", self.path)])
        if case == "slow":
            # ~2 MiB/s, Range honoured.
            start = int(rng.split("=")[1].split("-")[0]) if rng else 0
            status = 206 if rng else 200
            self.send(status, b"", octet, length=len(LAYER) - start)
            for i in range(start, len(LAYER), 16384):
                self.wfile.write(LAYER[i : i + 16384])
                time.sleep(0.008)
            return
        if rng:
            start = int(rng.split("=")[1].split("-")[0])
            return self.send(
                206,
                LAYER[start:],
                octet,
                headers=[("Content-Range", f"bytes {start}-{len(LAYER) - 1}/{len(LAYER)}")],
            )
        return self.send(200, LAYER, octet)


server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
server.daemon_threads = True
print(server.server_address[1], flush=True)
server.serve_forever()
