"""The registry client's own edges, against real sockets on loopback (no Docker needed): a registry
that is down fails within seconds naming it, a plain-HTTP registry is refused unless configured
insecure, references parse into repository and digest."""

from __future__ import annotations

import http.server
import threading
import time

import pytest

from mlci.core.errors import BadInput, Unreachable
from mlci.ship import image_registry


@pytest.fixture
def plain_http_server():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), http.server.SimpleHTTPRequestHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_a_registry_that_is_down_is_unreachable_within_seconds(free_port):
    address = f"127.0.0.1:{free_port()}"  # reserved, so nothing listens there
    started = time.monotonic()
    with pytest.raises(Unreachable) as caught:
        image_registry.check_reachable(image_registry.Registry(address))
    assert address in caught.value.message
    assert time.monotonic() - started < image_registry.REACH_SECONDS + 3


def test_plain_http_is_refused_unless_configured_insecure(plain_http_server):
    with pytest.raises(BadInput) as caught:
        image_registry.check_reachable(image_registry.Registry(plain_http_server))
    assert "does not speak TLS" in caught.value.message and "images.insecure" in (caught.value.hint or "")
    image_registry.check_reachable(image_registry.Registry(plain_http_server, insecure=True))


def test_references_parse_into_repository_and_digest():
    digest = "sha256:" + "a" * 64
    assert image_registry.parse_digest_ref(f"reg.example:5000/p-api@{digest}") == ("reg.example:5000/p-api", digest)
    assert image_registry.parse_digest_ref("reg.example:5000/p-api:1-abc") is None
    assert image_registry.repository("reg.example:5000/p-api:1-abc") == "reg.example:5000/p-api"
    assert image_registry.repository(f"reg.example:5000/p-api@{digest}") == "reg.example:5000/p-api"
    assert image_registry.repository("reg.example:5000/p-api") == "reg.example:5000/p-api"
    assert image_registry.Registry("reg.example").host_port == ("reg.example", 443)
    assert image_registry.Registry("reg.example", insecure=True).host_port == ("reg.example", 80)


def test_a_deploy_never_pulls_a_tag():
    from mlci.ship.docker import Docker

    with pytest.raises(BadInput, match="never pulls a mutable tag"):
        image_registry.pull(Docker(), image_registry.Registry("reg.example:5000"), "reg.example:5000/p-api:latest")
