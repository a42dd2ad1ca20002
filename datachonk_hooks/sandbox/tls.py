"""https for the simulator: a throw-away certificate authority and the server certificate it
issues, so clients that speak only https (dbt-cloud-cli, dbtc) reach the sandbox unchanged.

`trustme` (the `tls` extra) makes them and is imported only when https is asked for, so the
simulator still runs on the standard library alone. The CA's key stays in memory (the
server's passes through a 0600 temporary file while `ssl` loads it); the CA's certificate is
written into a private folder (0700: no other local user can swap the file a client
trusts), which the sandbox removes when it stops.
"""

from __future__ import annotations

import shutil
import ssl
import tempfile
from dataclasses import dataclass
from pathlib import Path

#: the names the server certificate is valid for, besides a specific --bind address
SERVER_NAMES = ("127.0.0.1", "localhost", "::1")
#: what `bind` may be that is not a name a client connects to
_WILDCARDS = ("", "0.0.0.0", "::")


@dataclass(frozen=True)
class Authority:
    """The CA's certificate (PEM) and a server context holding the certificate it issued."""

    ca_pem: bytes
    context: ssl.SSLContext


def new_authority(bind: str) -> Authority:
    """A fresh CA and a certificate for the loopback names (and `bind`, when it is one
    address). Raises ImportError (name "trustme") without the tls extra."""
    import trustme

    names = list(SERVER_NAMES)
    if bind not in _WILDCARDS and bind not in names:
        names.append(bind)
    authority = trustme.CA(organization_name="datachonk-hooks sandbox")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    authority.issue_cert(*names).configure_cert(context)
    return Authority(authority.cert_pem.bytes(), context)


def write_bundle(ca_pem: bytes, previous: Path | None) -> Path:
    """Write the CA bundle into a new private folder, or, after a restart, into the same
    folder again, so clients told the path once keep trusting the sandbox."""
    if previous is None:
        folder = Path(tempfile.mkdtemp(prefix="datachonk-sandbox-tls-"))  # mode 0700
    else:
        folder = previous.parent
        folder.mkdir(mode=0o700)  # fails if someone took the name meanwhile: never reuse it
    bundle = folder / "ca.pem"
    bundle.write_bytes(ca_pem)
    return bundle


def remove_bundle(bundle: Path) -> None:
    """Remove the CA bundle's folder: the CA dies with the sandbox."""
    shutil.rmtree(bundle.parent, ignore_errors=True)


def trust_lines(bundle: Path, url: str) -> list[str]:
    """What a shell needs to reach the https sandbox: requests-based clients (ours,
    dbt-cloud-cli, dbtc) read REQUESTS_CA_BUNDLE, OpenSSL-based ones SSL_CERT_FILE, and the
    clients that build `https://{DBT_CLOUD_HOST}/api/...` want the host without a scheme
    (ours takes it too: a bare host means https)."""
    return [
        f"CA bundle (removed on stop): {bundle}",
        "To trust it and reach it over https, paste:",
        f"  export REQUESTS_CA_BUNDLE={bundle}",
        f"  export SSL_CERT_FILE={bundle}",
        f"  export DBT_CLOUD_HOST={url.removeprefix('https://')}",
    ]
