"""Image references as a kubelet parses them: which names it refuses, and what it says.

A real kubelet normalises every image (``busybox`` → ``docker.io/library/busybox:latest``)
with the distribution project's reference grammar before pulling; a name that does not parse
leaves the container waiting with reason ``InvalidImageName`` and the message below, and the
pod never starts. The grammar here is that one (docker/distribution ``reference/regexp.go``).
"""

from __future__ import annotations

import re
from functools import lru_cache

_ALNUM = r"[a-z0-9]+"
_SEPARATOR = r"(?:[._]|__|[-]+)"
_PATH_COMPONENT = rf"{_ALNUM}(?:{_SEPARATOR}{_ALNUM})*"
_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN = rf"(?:{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*|\[[a-fA-F0-9:]+\])(?::[0-9]+)?"
_TAG = r"[\w][\w.-]{0,127}"
_DIGEST = r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}"
_NAME = rf"(?:{_DOMAIN}/)?{_PATH_COMPONENT}(?:/{_PATH_COMPONENT})*"
_REFERENCE = re.compile(rf"({_NAME})(?::({_TAG}))?(?:@({_DIGEST}))?")
_HEX64 = re.compile(r"[a-f0-9]{64}")
_NAME_TOTAL_MAX = 255


def _split_docker_domain(name: str) -> tuple[str, str]:
    """(domain, remainder) as ``splitDockerDomain`` has them (Docker Hub when none is named)."""
    first, sep, rest = name.partition("/")
    if not sep or ("." not in first and ":" not in first and first != "localhost"
                   and first.lower() == first):
        domain, remainder = "docker.io", name
    else:
        domain, remainder = first, rest
    if domain == "index.docker.io":
        domain = "docker.io"
    if domain == "docker.io" and "/" not in remainder:
        remainder = "library/" + remainder
    return domain, remainder


def _parse_error(image: str) -> str | None:
    """What ``reference.ParseNormalizedNamed`` answers for ``image``, or None if it parses."""
    if _HEX64.fullmatch(image):
        return (f"invalid repository name ({image}), cannot specify 64-byte hexadecimal "
                "strings")
    domain, remainder = _split_docker_domain(image)
    remote = remainder.split(":", 1)[0]
    if remote.lower() != remote:
        return f"invalid reference format: repository name ({remote}) must be lowercase"
    match = _REFERENCE.fullmatch(f"{domain}/{remainder}")
    if match is None:
        return "invalid reference format"
    if len(match.group(1)) > _NAME_TOTAL_MAX:
        return f"repository name must not be more than {_NAME_TOTAL_MAX} characters"
    return None


@lru_cache(maxsize=1024)
def invalid_image_message(image: str) -> str | None:
    """The kubelet's ``InvalidImageName`` message for an image it refuses, or None.

    ``Failed to apply default image tag "bad image": couldn't parse image name "bad image":
    invalid reference format``, as ``applyDefaultImageTag`` words it.
    """
    error = _parse_error(image)
    if error is None:
        return None
    return (f'Failed to apply default image tag "{image}": couldn\'t parse image name '
            f'"{image}": {error}')
