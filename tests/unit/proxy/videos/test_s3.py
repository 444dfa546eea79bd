"""S3AssetStore against a real S3-compatible server: moto's standalone server in a subprocess,
with IAM authentication switched on so every request's SigV4 signature is checked by it.

The signer is also held to AWS's published S3 examples and to botocore's SigV4Auth.
"""

from __future__ import annotations

import asyncio
import hashlib
import random
from collections.abc import Callable, Coroutine, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import botocore.auth as botocore_auth  # moto's dependency, a test extra like moto
import botocore.awsrequest as botocore_awsrequest
import botocore.credentials as botocore_credentials
import httpx
import pytest

from proxy.core.video_assets import AssetError, AssetInfo
from proxy.videos.s3 import (
    EMPTY_SHA256,
    Credentials,
    S3AssetStore,
    S3Error,
    canonical_query,
    sign,
    uri_encode,
)
from proxy.videos.stores import open_store
from tests.s3server import BUCKET, REGION, Moto, free_port, moto_server


def run(body: Callable[[], Coroutine[Any, Any, Any]]) -> Any:
    return asyncio.run(body())


# --- moto server ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def moto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Moto]:
    with moto_server(tmp_path_factory.mktemp("moto")) as server:
        yield server


# --- the signer ----------------------------------------------------------------------------

AWS_CREDS = Credentials("AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", REGION)
AWS_HOST = {"host": "examplebucket.s3.amazonaws.com"}
AWS_DATE = "20130524T000000Z"
AWS_SCOPE = "Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request"


def test_signer_reproduces_aws_published_s3_examples() -> None:
    """AWS S3 API reference, "Signature Calculations for the Authorization Header"."""
    get = sign(
        "GET", "/test.txt", {}, AWS_HOST | {"Range": "bytes=0-9"}, EMPTY_SHA256, AWS_CREDS, AWS_DATE
    )
    assert get["authorization"] == (
        f"AWS4-HMAC-SHA256 {AWS_SCOPE}, SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, "
        "Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"
    )
    listing = sign(
        "GET", "/", {"prefix": "J", "max-keys": "2"}, AWS_HOST, EMPTY_SHA256, AWS_CREDS, AWS_DATE
    )
    assert listing["authorization"].endswith(
        "Signature=34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7"
    )
    lifecycle = sign("GET", "/", {"lifecycle": ""}, AWS_HOST, EMPTY_SHA256, AWS_CREDS, AWS_DATE)
    assert lifecycle["authorization"].endswith(
        "Signature=fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543"
    )
    body = hashlib.sha256(b"Welcome to Amazon S3.").hexdigest()
    extra = {"Date": "Fri, 24 May 2013 00:00:00 GMT", "x-amz-storage-class": "REDUCED_REDUNDANCY"}
    put = sign(
        "PUT", "/" + uri_encode("test$file.text"), {}, AWS_HOST | extra, body, AWS_CREDS, AWS_DATE
    )
    assert put["authorization"].endswith(
        "Signature=98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd"
    )


def test_uri_encoding_follows_sigv4() -> None:
    assert uri_encode("a b/é+(1)~x_y-z.mp4", keep_slash=True) == "a%20b/%C3%A9%2B%281%29~x_y-z.mp4"
    assert uri_encode("a/b") == "a%2Fb"  # in a query value '/' is encoded too
    assert canonical_query({"b": "2 3", "a": "x/y=", "A": ""}) == "A=&a=x%2Fy%3D&b=2%203"


def _botocore_authorization(
    monkeypatch: pytest.MonkeyPatch,
    method: str,
    path: str,
    params: dict[str, str],
    headers: dict[str, str],
    body: bytes,
) -> str:
    monkeypatch.setattr(
        botocore_auth, "get_current_datetime", lambda: datetime(2026, 3, 1, 12, 30, 5)
    )
    request = botocore_awsrequest.AWSRequest(
        method=method, url=f"http://127.0.0.1:9000{path}", params=params, headers=headers, data=body
    )
    creds = botocore_credentials.Credentials("AKIAEDGETEST", "s3cr3t/key+value")
    botocore_auth.SigV4Auth(creds, "s3", "eu-central-1").add_auth(request)
    return request.headers["Authorization"]


@pytest.mark.parametrize(
    ("method", "key", "params", "headers", "body"),
    [
        (
            "GET",
            "cgt-1/video.mp4",
            {"list-type": "2", "prefix": "cgt 1/é", "continuation-token": "a+b/c="},
            {"range": "bytes=100-199"},
            b"",
        ),
        (
            "PUT",
            "cgt-1/video.mp4",
            {},
            {"content-type": "video/mp4"},
            b"\x00\x01 not really a video",
        ),
        ("DELETE", "edge videos/ta$k (1)/é+last_frame.png", {}, {}, b""),
    ],
)
def test_signer_matches_botocore(
    monkeypatch: pytest.MonkeyPatch,
    method: str,
    key: str,
    params: dict[str, str],
    headers: dict[str, str],
    body: bytes,
) -> None:
    payload = hashlib.sha256(body).hexdigest()
    headers = {"host": "127.0.0.1:9000", **headers}
    # botocore's generic SigV4Auth encodes the raw path itself: our encoding is checked too.
    expected = _botocore_authorization(
        monkeypatch,
        method,
        f"/bucket/{key}",
        params,
        headers | {"x-amz-content-sha256": payload},
        body,
    )
    creds = Credentials("AKIAEDGETEST", "s3cr3t/key+value", "eu-central-1")
    path = "/bucket/" + uri_encode(key, keep_slash=True)
    ours = sign(method, path, params, headers, payload, creds, "20260301T123005Z")
    assert ours["authorization"] == expected
    assert ours["x-amz-date"] == "20260301T123005Z" and ours["x-amz-content-sha256"] == payload


# --- against moto --------------------------------------------------------------------------


def test_round_trip(moto: Moto, tmp_path: Path) -> None:
    video = tmp_path / "video.mp4"
    data = random.Random(7).randbytes(300_000)
    video.write_bytes(data)
    frame = tmp_path / "frame.png"
    frame.write_bytes(b"\x89PNG not quite")

    async def body() -> None:
        store = moto.store(prefix="/edge/")
        try:
            await store.put_file("cgt-a/video.mp4", video, "video/mp4")
            await store.put_file("cgt-a/last_frame.png", frame, "image/png")
            await store.put_file("cgt-b/video.mp4", video, "video/mp4")
            assert await store.stat("cgt-a/video.mp4") == AssetInfo(300_000, "video/mp4")
            assert await store.stat("cgt-a/last_frame.png") == AssetInfo(
                len(b"\x89PNG not quite"), "image/png"
            )
            assert await store.read("cgt-a/video.mp4", 1000, 1999) == data[1000:2000]
            assert await store.read("cgt-a/video.mp4", 299_999, 299_999) == data[-1:]
            assert sorted(await store._list("edge/")) == [
                "edge/cgt-a/last_frame.png",
                "edge/cgt-a/video.mp4",
                "edge/cgt-b/video.mp4",
            ]
            assert await store.delete_prefix("cgt-a/") == 2
            assert await store.stat("cgt-a/video.mp4") is None
            assert await store.stat("cgt-a/last_frame.png") is None
            assert await store.stat("cgt-b/video.mp4") == AssetInfo(300_000, "video/mp4")
            assert await store.delete_prefix("cgt-a/") == 0
            with pytest.raises(S3Error) as missing:
                await store.read("cgt-a/video.mp4", 0, 9)
            assert (missing.value.status, missing.value.code) == (404, "NoSuchKey")
            assert await store.delete_prefix("cgt-b/") == 1
        finally:
            await store.aclose()

    run(body)


def test_bad_keys_are_refused_before_any_request(moto: Moto, tmp_path: Path) -> None:
    async def body() -> None:
        store = moto.store()
        try:
            with pytest.raises(ValueError):
                await store.stat("../etc/passwd")
            for prefix in ("", "/", "a/b/", "..x/", "cgt-1"):
                with pytest.raises(ValueError, match="bad asset prefix"):
                    await store.delete_prefix(prefix)
        finally:
            await store.aclose()

    run(body)


def test_server_checks_the_signature(moto: Moto, tmp_path: Path) -> None:
    asset = tmp_path / "video.mp4"
    asset.write_bytes(b"x" * 1000)
    wrong = "WrongSecretKeyThatMustNeverLeak0123456789"

    async def body() -> None:
        good, bad = moto.store(), moto.store(secret_key=wrong)
        stranger = S3AssetStore(
            moto.endpoint, BUCKET, region=REGION, access_key="AKIANOSUCHUSER00000", secret_key=wrong
        )
        try:
            for attempt in (
                bad.put_file("cgt-s/video.mp4", asset, "video/mp4"),
                bad.read("cgt-s/video.mp4", 0, 1),
            ):
                with pytest.raises(S3Error) as refused:
                    await attempt
                assert (refused.value.status, refused.value.code) == (403, "SignatureDoesNotMatch")
                assert wrong not in str(refused.value) and wrong not in repr(refused.value)
            with pytest.raises(S3Error) as unknown:
                await stranger.delete_prefix("cgt-s/")
            assert (unknown.value.status, unknown.value.code) == (403, "InvalidAccessKeyId")
            await good.put_file("cgt-s/video.mp4", asset, "video/mp4")
            assert await good.stat("cgt-s/video.mp4") == AssetInfo(1000, "video/mp4")
            with pytest.raises(S3Error) as head:  # HEAD answers carry no error body
                await bad.stat("cgt-s/video.mp4")
            assert head.value.status == 403
            assert await good.delete_prefix("cgt-s/") == 1
        finally:
            for store in (good, bad, stranger):
                await store.aclose()

    run(body)


# --- without a server ----------------------------------------------------------------------


def _faked(store: S3AssetStore, handler: Callable[[httpx.Request], httpx.Response]) -> S3AssetStore:
    store._client = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    return store


def test_listing_follows_continuation_and_range_fallback() -> None:
    seen: list[httpx.Request] = []
    ns = 'xmlns="http://s3.amazonaws.com/doc/2006-03-01/"'

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if request.method == "GET" and request.url.params.get("list-type") == "2":
            if "continuation-token" not in request.url.params:
                page = (
                    f"<ListBucketResult {ns}><IsTruncated>true</IsTruncated>"
                    "<Contents><Key>p/t/a.mp4</Key></Contents>"
                    "<NextContinuationToken>tok+/=</NextContinuationToken></ListBucketResult>"
                )
            else:
                assert request.url.params["continuation-token"] == "tok+/="
                page = (
                    f"<ListBucketResult {ns}><IsTruncated>false</IsTruncated>"
                    "<Contents><Key>p/t/b.png</Key></Contents></ListBucketResult>"
                )
            return httpx.Response(200, content=page.encode())
        if request.method == "GET":  # a server that ignores Range: the whole object, 200
            return httpx.Response(200, content=b"0123456789")
        return httpx.Response(204)

    async def body() -> None:
        store = _faked(
            S3AssetStore(
                "http://s3.test", "bkt", region=REGION, access_key="AK", secret_key="SK", prefix="p"
            ),
            handler,
        )
        assert await store.delete_prefix("t/") == 2
        assert [(r.method, r.url.path) for r in seen[2:]] == [
            ("DELETE", "/bkt/p/t/a.mp4"),
            ("DELETE", "/bkt/p/t/b.png"),
        ]
        assert seen[0].url.params["prefix"] == "p/t/"
        assert await store.read("t/video.mp4", 3, 5) == b"345"
        assert seen[-1].headers["range"] == "bytes=3-5"
        assert seen[-1].headers["host"] == "s3.test"
        await store.aclose()

    run(body)


def test_put_streams_a_signed_body_with_its_length(tmp_path: Path) -> None:
    video = tmp_path / "video.mp4"
    data = random.Random(3).randbytes(2_500_000)  # more than one read chunk
    video.write_bytes(data)
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)  # MockTransport has read the streamed body into request.content
        return httpx.Response(200)

    async def body() -> None:
        store = S3AssetStore(
            "http://s3.test", "bkt", region=REGION, access_key="AK", secret_key="SK"
        )
        await _faked(store, handler).put_file("t/video.mp4", video, "video/mp4")
        await store.aclose()

    run(body)
    (put,) = seen
    assert put.content == data
    assert put.headers["x-amz-content-sha256"] == hashlib.sha256(data).hexdigest()
    # S3 refuses chunked uploads without aws-chunked framing: the length must be declared.
    assert (
        put.headers["content-length"] == str(len(data)) and "transfer-encoding" not in put.headers
    )
    assert put.headers["content-type"] == "video/mp4"


def test_error_code_and_transport_errors_become_asset_errors() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            503, content=b"<Error><Code>SlowDown</Code><Message>later</Message></Error>"
        )

    async def body() -> None:
        store = _faked(
            S3AssetStore("http://s3.test", "bkt", region=REGION, access_key="AK", secret_key="SK"),
            handler,
        )
        with pytest.raises(AssetError, match="HTTP 503 SlowDown") as busy:
            await store.stat("t/video.mp4")
        assert isinstance(busy.value, S3Error) and busy.value.code == "SlowDown"
        await store.aclose()
        closed = S3AssetStore(
            f"http://127.0.0.1:{free_port()}",
            "bkt",
            region=REGION,
            access_key="AK",
            secret_key="SK",
        )
        with pytest.raises(AssetError, match="ConnectError"):
            await closed.stat("t/video.mp4")
        await closed.aclose()

    run(body)


# --- configuration -------------------------------------------------------------------------

SECRET = "topsecret/Value+0123456789abcdefghijklmnop"


def test_from_url() -> None:
    env = {"NEXTAPI_S3_ACCESS_KEY_ID": "AKIAEDGE", "NEXTAPI_S3_SECRET_ACCESS_KEY": SECRET}
    store = S3AssetStore.from_url(
        "s3://videos/edge/eu?endpoint=http://127.0.0.1:9000&region=eu-west-1", env
    )
    assert (store.endpoint, store.bucket, store.region, store.prefix) == (
        "http://127.0.0.1:9000",
        "videos",
        "eu-west-1",
        "edge/eu/",
    )
    aws_env = {"AWS_ACCESS_KEY_ID": "AKIAAWS", "AWS_SECRET_ACCESS_KEY": SECRET}
    aws = S3AssetStore.from_url("s3://videos", aws_env)
    assert (aws.endpoint, aws.region, aws.prefix) == (
        "https://s3.us-east-1.amazonaws.com",
        "us-east-1",
        "",
    )
    through_open_store = open_store("s3://videos?endpoint=http://minio:9000", None, env)
    assert isinstance(through_open_store, S3AssetStore)
    for shown in (repr(store), str(store), repr(aws), repr(store._creds), repr(through_open_store)):
        assert SECRET not in shown
    run(store.aclose)
    run(aws.aclose)
    run(through_open_store.aclose)


@pytest.mark.parametrize(
    ("url", "env", "message"),
    [
        ("s3://videos?endpoint=http://h:9000", {}, "no credentials"),
        ("s3://videos", {"NEXTAPI_S3_ACCESS_KEY_ID": "AK"}, "set both"),
        ("s3://videos", {"AWS_SECRET_ACCESS_KEY": SECRET}, "set both"),
        (
            "http://videos/x",
            {"AWS_ACCESS_KEY_ID": "AK", "AWS_SECRET_ACCESS_KEY": SECRET},
            "expected s3://",
        ),
        (
            "s3:///nobucket",
            {"AWS_ACCESS_KEY_ID": "AK", "AWS_SECRET_ACCESS_KEY": SECRET},
            "expected s3://",
        ),
        (f"s3://AK:{SECRET}@videos", {}, "belong in the environment"),
        (
            "s3://Bad_Bucket",
            {"AWS_ACCESS_KEY_ID": "AK", "AWS_SECRET_ACCESS_KEY": SECRET},
            "bucket name",
        ),
        (
            "s3://videos?endpont=http://h",
            {"AWS_ACCESS_KEY_ID": "AK", "AWS_SECRET_ACCESS_KEY": SECRET},
            "unknown setting",
        ),
        (
            "s3://videos?endpoint=ftp://h",
            {"AWS_ACCESS_KEY_ID": "AK", "AWS_SECRET_ACCESS_KEY": SECRET},
            "endpoint must be",
        ),
        (f"s3://videos?endpoint=http://u:{SECRET}@h", {}, "belong in the environment"),
    ],
)
def test_from_url_refuses(url: str, env: dict[str, str], message: str) -> None:
    with pytest.raises(ValueError, match=message) as refused:
        S3AssetStore.from_url(url, env)
    assert SECRET not in str(refused.value)
