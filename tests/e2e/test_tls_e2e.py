"""Given a certificate, the edge speaks TLS 1.3 and nothing older, and refuses plain HTTP."""

from __future__ import annotations

import datetime
import ipaddress
import ssl
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.e2e.harness import Gateway, Simulator

TASKS = "/api/v3/contents/generations/tasks"


def self_signed(path: Path) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    names = [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=7))
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .sign(key, hashes.SHA256())
    )
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    path.write_bytes(pem + cert.public_bytes(serialization.Encoding.PEM))


def context(cafile: Path, maximum: ssl.TLSVersion) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=str(cafile))
    ctx.maximum_version = maximum
    return ctx


def test_tls_13_only(simulator: Simulator, tmp_path: Path) -> None:
    cert = tmp_path / "edge.pem"
    self_signed(cert)
    gw = Gateway(tmp_path / "gw", simulator.url, simulator.api_key, "--tls-cert", str(cert))
    try:
        org = gw.create_org()
        key = gw.create_key(org["id"])["key"]
        https = gw.edge_url.replace("http://127.0.0.1", "https://localhost")
        headers = {"Authorization": f"Bearer {key}"}
        with httpx.Client(verify=context(cert, ssl.TLSVersion.TLSv1_3), headers=headers) as c:
            response = c.get(f"{https}{TASKS}")
            assert response.status_code == 200, response.text
            assert response.extensions["network_stream"].get_extra_info("ssl_object").version() == (
                "TLSv1.3"
            )
        with (
            httpx.Client(verify=context(cert, ssl.TLSVersion.TLSv1_2), headers=headers) as old,
            pytest.raises(httpx.ConnectError),
        ):
            old.get(f"{https}{TASKS}")
        plain = httpx.get(f"{gw.edge_url}{TASKS}", headers=headers)
        assert plain.status_code == 403
        assert "TLS" in plain.json()["error"]["message"]
    finally:
        gw.stop()
