"""mlci.ship.docker_images without an engine: build and push streams cut into lines, a failing step, push digests."""

from __future__ import annotations

import pytest

from mlci.ship import docker_images
from mlci.ship.docker import DockerError


def test_build_output_is_cut_into_lines_whatever_the_chunks():
    chunks = [
        {"stream": "Step 1/3 : FROM base\n"},
        {"stream": " ---> Using cache\n ---> 1a2b"},
        {"stream": "3c\nStep 2/3 : RUN true\n"},
        {"aux": {"ID": "sha256:abc"}},
        {"stream": "Successfully built 1a2b3c\n"},
    ]
    aux: dict = {}
    lines = list(docker_images.lines(chunks, "build", aux))
    assert lines == ["Step 1/3 : FROM base", " ---> Using cache", " ---> 1a2b3c", "Step 2/3 : RUN true",
                     "Successfully built 1a2b3c"]  # fmt: skip
    assert aux == {"ID": "sha256:abc"}


def test_a_failing_step_is_docker_error_with_the_lines_before_it():
    chunks = [
        {"stream": "Step 3/9 : RUN pip install x\n"},
        {"stream": "ERROR: No matching distribution found for x\n"},
        {"error": "The command '/bin/sh -c pip install x' returned a non-zero code: 1", "errorDetail": {"code": 1}},
        {"stream": "never read\n"},
    ]
    seen: list[str] = []
    with pytest.raises(DockerError) as caught:
        seen.extend(docker_images.lines(chunks, "build of p-api:1"))
    assert caught.value.message == (
        "docker build of p-api:1 failed: The command '/bin/sh -c pip install x' returned a non-zero code: 1"
    )
    assert caught.value.details[-1] == "ERROR: No matching distribution found for x"
    assert seen == ["Step 3/9 : RUN pip install x", "ERROR: No matching distribution found for x"]  # as they came


def test_push_progress_ticks_are_skipped_and_the_digest_is_kept():
    digest = "sha256:" + "a" * 64
    chunks = [
        {"status": "The push refers to repository [reg:5000/p-api]"},
        {"status": "Preparing", "progressDetail": {}, "id": "5f70bf18a086"},
        {"status": "Pushing", "progressDetail": {"current": 512, "total": 1024}, "id": "5f70bf18a086"},
        {"status": "Pushed", "progressDetail": {}, "id": "5f70bf18a086"},
        {"status": f"1-abc: digest: {digest} size: 1234"},
        {"progressDetail": {}, "aux": {"Tag": "1-abc", "Digest": digest, "Size": 1234}},
    ]
    aux: dict = {}
    lines = list(docker_images.lines(chunks, "push", aux))
    assert lines == ["The push refers to repository [reg:5000/p-api]", "5f70bf18a086: Preparing",
                     "5f70bf18a086: Pushed", f"1-abc: digest: {digest} size: 1234"]  # fmt: skip
    assert aux["Digest"] == digest
    with pytest.raises(DockerError, match="unauthorized: authentication required"):
        list(docker_images.lines([{"errorDetail": {"message": "unauthorized: authentication required"}}], "push"))
