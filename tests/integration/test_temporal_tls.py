"""leadflow reaches a Temporal that requires mutual TLS (a self-hosted cluster with mTLS).

The dev server has no TLS, so a TLS-terminating proxy that asks for a client certificate
signed by the test's own CA stands in front of the session's Temporal; the certificates
are made with the openssl command line, as an operator would."""

from __future__ import annotations

import shutil
import ssl
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from tcp_proxy import TcpProxy
from temporalio.api.workflowservice.v1 import ListNamespacesRequest

from leadflow.bootstrap import connect_temporal, temporal_tls
from leadflow.settings import Settings

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl CLI")


@dataclass(frozen=True)
class Certificates:
    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path


def openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def issue(folder: Path, name: str, subject: str, extensions: str) -> None:
    """A key and a certificate for `name`, signed by the CA in `folder`."""
    (folder / f"{name}.ext").write_text(extensions)
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{name}.key", "-out",
            f"{name}.csr", "-subj", subject, cwd=folder)  # fmt: skip
    openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
            "-CAcreateserial", "-days", "1", "-out", f"{name}.pem", "-extfile", f"{name}.ext",
            cwd=folder)  # fmt: skip


@pytest.fixture(scope="module")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> Certificates:
    folder = tmp_path_factory.mktemp("pki")
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out",
            "ca.pem", "-days", "1", "-subj", "/CN=leadflow test CA", "-addext",
            "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign",
            cwd=folder)  # fmt: skip
    issue(
        folder,
        "server",
        "/CN=temporal.test",
        "subjectAltName=DNS:temporal.test\nextendedKeyUsage=serverAuth\n",
    )
    issue(folder, "client", "/CN=leadflow-worker", "extendedKeyUsage=clientAuth\n")
    return Certificates(
        folder / "ca.pem",
        folder / "server.pem",
        folder / "server.key",
        folder / "client.pem",
        folder / "client.key",
    )


@pytest.fixture
def mtls_temporal(temporal_address: str, certificates: Certificates) -> Iterator[str]:
    """The session's Temporal behind a proxy that requires a client certificate."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=str(certificates.ca))
    context.verify_mode = ssl.CERT_REQUIRED
    context.load_cert_chain(certificates.server_cert, certificates.server_key)
    context.set_alpn_protocols(["h2"])
    host, port = temporal_address.rsplit(":", 1)
    proxy = TcpProxy(host, int(port), tls=context)
    proxy.start()
    try:
        yield f"127.0.0.1:{proxy.port}"
    finally:
        proxy.stop()


def secured(address: str, certificates: Certificates, **more: object) -> Settings:
    return Settings(
        temporal_address=address,
        temporal_tls_ca_file=certificates.ca,
        temporal_tls_server_name="temporal.test",
        **more,  # type: ignore[arg-type]
    )


async def test_a_client_certificate_reaches_a_cluster_that_requires_mtls(
    mtls_temporal: str, certificates: Certificates
) -> None:
    settings = secured(
        mtls_temporal,
        certificates,
        temporal_tls_cert_file=certificates.client_cert,
        temporal_tls_key_file=certificates.client_key,
    )
    client = await connect_temporal(settings)
    assert await client.service_client.check_health()
    described = await client.workflow_service.list_namespaces(ListNamespacesRequest())
    assert "default" in {n.namespace_info.name for n in described.namespaces}


async def test_without_a_client_certificate_the_cluster_refuses(
    mtls_temporal: str, certificates: Certificates
) -> None:
    with pytest.raises(RuntimeError):
        await connect_temporal(secured(mtls_temporal, certificates))


def test_tls_settings() -> None:
    """Off by default; an API key (Temporal Cloud) or any TLS file turns TLS on; a client
    certificate needs its key."""
    assert temporal_tls(Settings()) is False
    assert temporal_tls(Settings(temporal_tls=True)) is not False
    cloud = Settings(temporal_api_key="cloud-key")  # type: ignore[arg-type]
    assert temporal_tls(cloud) is not False
    assert "cloud-key" not in repr(cloud)
    with pytest.raises(ValueError, match="go together"):
        Settings(temporal_tls_cert_file=Path("client.pem"))
