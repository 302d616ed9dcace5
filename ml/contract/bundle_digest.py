"""The bundle digest: one sha256 that covers every file of a model bundle.

The digest is the sha256 of the bundle's listing, one `<sha256>  <name>` line per file sorted by name
(the `sha256sum` format, so `sha256sum -c SHA256SUMS` checks a bundle by hand). `mlci package` writes
the listing into the bundle as SHA256SUMS and records the digest OUTSIDE the bundle: on the MLflow model
version, in reports/package.json, and in the API image (label + MLCI_BUNDLE_SHA256). A digest found in
the bundle itself protects nothing — whoever edits the bundle edits that too — so the loader only ever
checks against a digest it is given. The bundle's SHA256SUMS is read only once its own hash equals that
digest, to name which file differs.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

from mlci.contract.bundle_schema import BundleError

MANIFEST_FILE = "SHA256SUMS"
DIGEST_PATTERN = re.compile(r"^[0-9a-f]{64}$")
MAX_FILES = 16  # a bundle holds five files (four before distribution.json); anything near this is not a bundle
MAX_MANIFEST_BYTES = 64 * 1024


class DigestError(BundleError):
    """The bundle is not the one whose digest was given (or cannot be listed)."""


def sha256_file(path: Path) -> str:
    """The file's sha256 (hex), read in 1 MiB blocks; also ml/'s data fingerprint, so there is one hasher."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def file_hashes(root: Path) -> dict[str, str]:
    """name -> sha256 of every file of the bundle but SHA256SUMS; a bundle is flat and has no links."""
    entries = sorted(root.iterdir())
    if len(entries) > MAX_FILES:
        raise DigestError(f"model bundle {root} holds {len(entries)} entries; a bundle holds a few files")
    hashes = {}
    for entry in entries:
        if entry.name == MANIFEST_FILE:
            continue
        if entry.is_symlink() or not entry.is_file():
            raise DigestError(f"model bundle {root}: {entry.name} is not a regular file (a bundle holds only files)")
        hashes[entry.name] = sha256_file(entry)
    return hashes


def listing(hashes: dict[str, str]) -> str:
    return "".join(f"{sha}  {name}\n" for name, sha in sorted(hashes.items()))


def digest_of(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def write_manifest(root: Path) -> str:
    """Write SHA256SUMS for the files in root and return the bundle digest."""
    text = listing(file_hashes(root))
    (root / MANIFEST_FILE).write_text(text, encoding="utf-8")
    return digest_of(text)


def bundle_digest(root: Path) -> str:
    """The digest of the files as they are now (SHA256SUMS itself is not part of it)."""
    return digest_of(listing(file_hashes(root)))


def normalise(expected: str, source: str) -> str:
    value = expected.strip().lower()
    if not DIGEST_PATTERN.match(value):
        raise DigestError(
            f"{source} {expected!r} is not a sha256 (64 hex digits)",
            hint="pass the bundle digest mlci package recorded (reports/package.json, tag mlci.bundle.sha256)",
        )
    return value


def _packaged_hashes(root: Path, expected: str) -> dict[str, str] | None:
    """The packaged listing, read from the bundle's SHA256SUMS only if that file is the authentic one."""
    manifest = root / MANIFEST_FILE
    if manifest.is_symlink() or not manifest.is_file() or manifest.stat().st_size > MAX_MANIFEST_BYTES:
        return None
    raw = manifest.read_bytes()
    if hashlib.sha256(raw).hexdigest() != expected:
        return None
    hashes = {}
    for line in raw.decode("utf-8").splitlines():
        sha, _, name = line.partition("  ")
        hashes[name] = sha
    return hashes


def _differences(found: dict[str, str], packaged: dict[str, str]) -> list[str]:
    problems = []
    for name in sorted(set(found) | set(packaged)):
        if name not in found:
            problems.append(f"{name} is missing")
        elif name not in packaged:
            problems.append(f"{name} was added")
        elif found[name] != packaged[name]:
            problems.append(f"{name} differs")
    return problems


def _manifest_matches(root: Path, text: str) -> bool:
    """A bundle without SHA256SUMS is fine (the digest covers the files); one with it must hold the listing."""
    manifest = root / MANIFEST_FILE
    if not manifest.exists():
        return True
    if manifest.is_symlink() or not manifest.is_file() or manifest.stat().st_size > MAX_MANIFEST_BYTES:
        return False
    return manifest.read_bytes() == text.encode("utf-8")


def verify(root: Path, expected: str, source: str = "expected bundle sha256") -> str:
    """Raise DigestError naming what differs unless the bundle's files have the expected digest."""
    expected = normalise(expected, source)
    found = file_hashes(root)
    text = listing(found)
    problems: list[str] = []
    if digest_of(text) != expected:
        packaged = _packaged_hashes(root, expected)
        problems = _differences(found, packaged) if packaged is not None else []
        problems = problems or [f"{MANIFEST_FILE} and the files it lists differ from the packaged bundle"]
    elif not _manifest_matches(root, text):
        problems = [f"{MANIFEST_FILE} differs"]
    if problems:
        raise DigestError(
            f"model bundle {root} is not the packaged bundle {expected[:16]}…: {'; '.join(problems)} "
            "(altered or corrupt); refusing to load it",
            hint="rebuild the image with mlci build, or package the model again with mlci package",
        )
    return expected
