"""moto's standalone S3 server for the tests, with IAM authentication switched on so that it
checks every request's SigV4 signature (moto is a test dependency; the store never uses boto)."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx

from proxy.videos.s3 import EMPTY_SHA256, Credentials, S3AssetStore, sign

BUCKET = "nextapi-assets"
REGION = "us-east-1"


@dataclass(frozen=True)
class Moto:
    endpoint: str
    access_key: str
    secret_key: str

    def store(self, *, secret_key: str | None = None, prefix: str = "") -> S3AssetStore:
        return S3AssetStore(
            self.endpoint,
            BUCKET,
            region=REGION,
            access_key=self.access_key,
            secret_key=secret_key or self.secret_key,
            prefix=prefix,
        )


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _wait_until_up(proc: subprocess.Popen[bytes], url: str, deadline: float) -> None:
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"moto_server exited with {proc.returncode}")
        try:
            httpx.get(url, timeout=1.0)
            return
        except httpx.TransportError:
            time.sleep(0.05)  # a poll interval under a bounded deadline, not a guess at readiness
    raise RuntimeError("moto_server did not answer within the deadline")


def _iam_user(endpoint: str) -> tuple[str, str]:
    """An IAM user allowed all of S3, made while moto still takes unauthenticated requests."""
    import boto3  # comes with moto; the store itself never uses it

    iam = boto3.client(
        "iam",
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id="bootstrap",
        aws_secret_access_key="bootstrap",
    )
    iam.create_user(UserName="edge")
    policy = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}],
    }
    iam.put_user_policy(UserName="edge", PolicyName="s3", PolicyDocument=json.dumps(policy))
    key = iam.create_access_key(UserName="edge")["AccessKey"]
    return key["AccessKeyId"], key["SecretAccessKey"]


def _create_bucket(endpoint: str, creds: Credentials) -> None:
    """PUT bucket, signed by our own signer."""
    host = httpx.URL(endpoint).netloc.decode()
    amz_date = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    headers = sign("PUT", f"/{BUCKET}", {}, {"host": host}, EMPTY_SHA256, creds, amz_date)
    httpx.put(f"{endpoint}/{BUCKET}", headers=headers).raise_for_status()


@contextlib.contextmanager
def moto_server(log_dir: Path) -> Iterator[Moto]:
    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    log = (log_dir / "moto.log").open("wb")
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
    )
    try:
        _wait_until_up(proc, f"{endpoint}/moto-api/", time.monotonic() + 30)
        access_key, secret_key = _iam_user(endpoint)
        _create_bucket(endpoint, Credentials(access_key, secret_key, REGION))
        # From here on moto checks every request's signature against the IAM user's secret.
        httpx.post(f"{endpoint}/moto-api/reset-auth", content=b"0").raise_for_status()
        yield Moto(endpoint, access_key, secret_key)
    finally:
        proc.kill()
        proc.wait(timeout=10)
        log.close()
