"""Install the pinned uv into the repository's private tools directory (``.tools/bin/uv``).

Every make target and the CDK app start here, so a fresh machine needs only a Python 3 and
nothing from pip: Debian's and Ubuntu's python3 refuse ``pip install`` outside a venv
(PEP 668), and may lack ``venv``/``ensurepip`` altogether. The uv binary comes from its
wheel on the package index (the one pip would fetch), whose SHA-256 is pinned below, so a
mirror or a tampered download cannot swap it. Standard library only, valid on Python 3.8+
(macOS and Amazon Linux ship 3.9).

    python3 scripts/get_uv.py            # quiet when the pinned uv is there already
"""

from __future__ import annotations

import hashlib
import html.parser
import io
import os
import platform
import stat
import subprocess
import sys
import tempfile
import urllib.parse
import urllib.request
import zipfile
from pathlib import Path

UV_VERSION = "0.13.9"
# The uv wheels of UV_VERSION by (system, machine, libc): file name and SHA-256 as published.
WHEELS = {
    ("Linux", "x86_64", "glibc"): (
        "uv-0.13.9-py3-none-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
        "d7f459fe4fd247d830351c75686d3996ace3c6f3f728eb0e85a30b7ada0cef19",
    ),
    ("Linux", "x86_64", "musl"): (
        "uv-0.13.9-py3-none-musllinux_1_1_x86_64.whl",
        "2c45530751517d6c3bbc69a19473f6effe47cce047bede01ffd8af7ea7b36b25",
    ),
    # One aarch64 wheel serves glibc and musl (Graviton, CloudShell on arm64, Raspberry Pi).
    ("Linux", "aarch64", "glibc"): (
        "uv-0.13.9-py3-none-manylinux_2_17_aarch64.manylinux2014_aarch64.musllinux_1_1_aarch64.whl",
        "5435c5ce14a56431208ca0996416d310f1598e8c2c8ba707688985a16bb82dbe",
    ),
    ("Linux", "aarch64", "musl"): (
        "uv-0.13.9-py3-none-manylinux_2_17_aarch64.manylinux2014_aarch64.musllinux_1_1_aarch64.whl",
        "5435c5ce14a56431208ca0996416d310f1598e8c2c8ba707688985a16bb82dbe",
    ),
    ("Darwin", "x86_64", ""): (
        "uv-0.13.9-py3-none-macosx_10_12_x86_64.whl",
        "c16ed11e013557536b3e60065f1b912f6407bd6518e041b961e23ef9e6b4fbf5",
    ),
    ("Darwin", "arm64", ""): (
        "uv-0.13.9-py3-none-macosx_11_0_arm64.whl",
        "66c512266d633bef48384a1f53003f41f2a8e7b36fe6e7fbfd3e0fd52d96fa63",
    ),
}
MACHINE_ALIASES = {"amd64": "x86_64", "arm64": "arm64", "aarch64": "aarch64"}
DEFAULT_INDEX = "https://pypi.org/simple/"
REPO_ROOT = Path(__file__).resolve().parents[1]
TOOLS_BIN = REPO_ROOT / ".tools" / "bin"


class SetupError(RuntimeError):
    """uv could not be installed; the message says why and what to do."""


def platform_key() -> tuple[str, str, str]:
    system = platform.system()
    machine = platform.machine().lower()
    machine = MACHINE_ALIASES.get(machine, machine)
    if system == "Darwin":
        return system, "arm64" if machine in ("arm64", "aarch64") else machine, ""
    if system == "Linux" and machine == "arm64":
        machine = "aarch64"
    libc = "glibc" if platform.libc_ver()[0] == "glibc" else "musl"
    return system, machine, libc


def index_url() -> str:
    """The package index uv and pip would use (a company mirror works: the hash is pinned)."""
    for name in ("UV_DEFAULT_INDEX", "UV_INDEX_URL", "PIP_INDEX_URL"):
        value = os.environ.get(name, "").strip()
        if value:
            return value.rstrip("/") + "/"
    return DEFAULT_INDEX


class _Links(html.parser.HTMLParser):
    """The file links of a PEP 503 simple index page."""

    def __init__(self) -> None:
        super().__init__()
        self.links: dict[str, str] = {}
        self._href: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "a":
            self._href = dict(attrs).get("href")

    def handle_data(self, data: str) -> None:
        if self._href is not None and data.strip():
            self.links[data.strip()] = self._href
            self._href = None


def _fetch(url: str) -> bytes:
    if url.startswith("file:") and url.endswith("/"):
        # A mirror on disk (file:// index URL) keeps each project's page as index.html.
        url += "index.html"
    try:
        with urllib.request.urlopen(url, timeout=120) as response:  # noqa: S310 - an https index URL.
            return bytes(response.read())
    except OSError as exc:
        raise SetupError(
            f"cannot download {url}: {exc}. Check the network (or a proxy in https_proxy), "
            "or install uv yourself and put it at .tools/bin/uv."
        ) from exc


def wheel_url(filename: str) -> str:
    base = index_url()
    page_url = urllib.parse.urljoin(base, "uv/")
    parser = _Links()
    parser.feed(_fetch(page_url).decode("utf-8", "replace"))
    href = parser.links.get(filename)
    if href is None:
        raise SetupError(f"the package index {base} does not list {filename}")
    return urllib.parse.urljoin(page_url, href.split("#", 1)[0])


# `uv --version` prints "uv 0.x.y (...)": the version is the second word.
VERSION_WORD = 1


def installed_version(uv: Path) -> str | None:
    if not uv.is_file():
        return None
    try:
        completed = subprocess.run(  # noqa: S603 - our own binary, fixed arguments.
            [str(uv), "--version"], capture_output=True, text=True, check=False, timeout=60
        )
    except OSError:
        return None
    words = completed.stdout.split()
    return words[VERSION_WORD] if completed.returncode == 0 and len(words) > VERSION_WORD else None


def install(bin_dir: Path = TOOLS_BIN) -> Path:
    """The path of the pinned uv in ``bin_dir``, downloading and checking it when needed."""
    uv = bin_dir / "uv"
    if installed_version(uv) == UV_VERSION:
        return uv
    key = platform_key()
    if key not in WHEELS:
        raise SetupError(
            f"no pinned uv for {key[0]} on {key[1]}; install uv {UV_VERSION} yourself "
            "(https://docs.astral.sh/uv/) and put it at .tools/bin/uv"
        )
    filename, sha256 = WHEELS[key]
    data = _fetch(wheel_url(filename))
    digest = hashlib.sha256(data).hexdigest()
    if digest != sha256:
        raise SetupError(f"{filename} has SHA-256 {digest}, expected {sha256}: refusing to install it")
    member = f"uv-{UV_VERSION}.data/scripts/uv"
    with zipfile.ZipFile(io.BytesIO(data)) as wheel:
        binary = wheel.read(member)
    bin_dir.mkdir(parents=True, exist_ok=True)
    # Written beside the target and renamed, so an interrupted run never leaves half a binary.
    with tempfile.NamedTemporaryFile(dir=bin_dir, prefix=".uv-", delete=False) as partial:
        partial.write(binary)
    # Only the owner runs it (the checkout is theirs).
    Path(partial.name).chmod(stat.S_IRWXU)
    Path(partial.name).replace(uv)
    if installed_version(uv) != UV_VERSION:
        raise SetupError(f"the downloaded uv at {uv} does not run on this machine")
    print(f"Installed uv {UV_VERSION} at {uv}", file=sys.stderr)
    return uv


def main() -> int:
    try:
        install()
    except SetupError as exc:
        print(f"get_uv: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
