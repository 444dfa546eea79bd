"""An S3-compatible bucket as the asset store.

A local directory serves one machine; when several edges and the control plane run apart, they
need one store they can all reach, and an S3-style bucket (AWS, MinIO, Ceph, R2) is that store.
Requests use path-style addressing (`{endpoint}/{bucket}/{key}`), which every such server takes,
and are signed here with AWS Signature Version 4 so the gateway carries no boto3/botocore.
Credentials come only from the environment and never reach a log line, an error or a repr.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import re
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import parse_qsl, quote, urlsplit

import httpx

from proxy.core.video_assets import AssetError, AssetInfo, check_key

EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
_CHUNK = 1 << 20
_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
_ENV_PAIRS = (  # ours first; the usual AWS names as a fallback
    ("NEXTAPI_S3_ACCESS_KEY_ID", "NEXTAPI_S3_SECRET_ACCESS_KEY"),
    ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"),
)


class S3Error(AssetError):
    """The server answered with an error: its HTTP status and S3 error code, for callers/tests."""

    def __init__(self, message: str, status: int = 0, code: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.code = code


# --- AWS Signature Version 4 ---------------------------------------------------------------


def uri_encode(text: str, *, keep_slash: bool = False) -> str:
    """SigV4 encoding: every byte but A-Z a-z 0-9 - . _ ~ as %XY (UTF-8); '/' kept in paths."""
    return quote(text, safe="/" if keep_slash else "")


def canonical_query(params: Mapping[str, str]) -> str:
    return "&".join(
        f"{k}={v}" for k, v in sorted((uri_encode(k), uri_encode(v)) for k, v in params.items())
    )


def canonical_request(
    method: str, path: str, params: Mapping[str, str], headers: Mapping[str, str], payload: str
) -> tuple[str, str]:
    """The canonical request and its signed-headers list. `path` is already URI-encoded (it is
    what goes on the wire); header names are lower case."""
    names = sorted(headers)
    lines = "".join(f"{n}:{' '.join(headers[n].split())}\n" for n in names)
    signed = ";".join(names)
    return "\n".join([method, path, canonical_query(params), lines, signed, payload]), signed


def string_to_sign(amz_date: str, scope: str, canonical: str) -> str:
    digest = hashlib.sha256(canonical.encode()).hexdigest()
    return f"AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n{digest}"


def signing_key(secret_key: str, day: str, region: str, service: str = "s3") -> bytes:
    key = f"AWS4{secret_key}".encode()
    for part in (day, region, service, "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return key


@dataclass(frozen=True, slots=True)
class Credentials:
    access_key: str
    secret_key: str = field(repr=False)  # a repr must never show it
    region: str


def sign(
    method: str,
    path: str,
    params: Mapping[str, str],
    headers: Mapping[str, str],
    payload: str,
    creds: Credentials,
    amz_date: str,
) -> dict[str, str]:
    """`headers` (which must include host) plus x-amz-date, x-amz-content-sha256 and the
    Authorization header that signs them all. `payload` is the body's hex SHA-256."""
    out = {k.lower(): v for k, v in headers.items()}
    out |= {"x-amz-date": amz_date, "x-amz-content-sha256": payload}
    canonical, signed = canonical_request(method, path, params, out, payload)
    scope = f"{amz_date[:8]}/{creds.region}/s3/aws4_request"
    key = signing_key(creds.secret_key, amz_date[:8], creds.region)
    to_sign = string_to_sign(amz_date, scope, canonical).encode()
    signature = hmac.new(key, to_sign, hashlib.sha256).hexdigest()
    credential = f"Credential={creds.access_key}/{scope}"  # ", " between parts, as botocore
    out["authorization"] = (
        f"AWS4-HMAC-SHA256 {credential}, SignedHeaders={signed}, Signature={signature}"
    )
    return out


# --- the store -----------------------------------------------------------------------------


def _hash_file(path: Path) -> tuple[str, int]:
    """SHA-256 and size, read in chunks so a large video never sits whole in memory."""
    digest, size = hashlib.sha256(), 0
    with path.open("rb") as src:
        while chunk := src.read(_CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


async def _file_chunks(path: Path) -> AsyncIterator[bytes]:
    with path.open("rb") as src:  # reads go to a thread: the event loop serves traffic
        while chunk := await asyncio.to_thread(src.read, _CHUNK):
            yield chunk


def _error_code(body: bytes) -> str:
    """The `<Code>` of an S3 error body ("" for none: HEAD answers carry no body)."""
    try:  # the server is ours to configure; expat refuses external entities anyway
        return (ET.fromstring(body).findtext("Code") or "") if body else ""
    except ET.ParseError:
        return ""


def _env_credentials(environ: Mapping[str, str]) -> dict[str, str]:
    for id_name, secret_name in _ENV_PAIRS:
        key_id, secret = environ.get(id_name, ""), environ.get(secret_name, "")
        if key_id and secret:
            return {"access_key": key_id, "secret_key": secret}
        if key_id or secret:  # half a pair is a mistake worth naming, not a reason to fall back
            raise ValueError(f"S3 store: set both {id_name} and {secret_name}")
    names = " and ".join(_ENV_PAIRS[0])
    raise ValueError(f"S3 store: no credentials: set {names} (or the AWS_ pair)")


class S3AssetStore:
    def __init__(
        self,
        endpoint: str,
        bucket: str,
        *,
        region: str,
        access_key: str,
        secret_key: str,
        prefix: str = "",
        timeout: float = 30.0,
    ) -> None:
        try:  # the messages never echo the endpoint: a careless one could hold a password
            url = httpx.URL(endpoint)
        except httpx.InvalidURL:
            raise ValueError("S3 endpoint is not a valid URL") from None
        if url.scheme not in ("http", "https") or not url.host or url.userinfo or url.query:
            raise ValueError("S3 endpoint must be http(s)://host[:port][/path], no credentials")
        if not _BUCKET.fullmatch(bucket):
            raise ValueError(f"bad S3 bucket name: {bucket!r}")
        self._host = url.netloc.decode("ascii")  # host[:port]; httpx drops a default port too
        self._origin, self._base_path = f"{url.scheme}://{self._host}", url.path.rstrip("/")
        self.endpoint = self._origin + self._base_path
        self.bucket, self.region = bucket, region
        self.prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""
        self._creds = Credentials(access_key, secret_key, region)
        self._client = httpx.AsyncClient(timeout=timeout)

    def __repr__(self) -> str:  # the credentials stay out on purpose
        return f"S3AssetStore({self.endpoint!r}, {self.bucket!r}, prefix={self.prefix!r})"

    @classmethod
    def from_url(cls, url: str, environ: Mapping[str, str]) -> S3AssetStore:
        """`s3://bucket[/prefix]?endpoint=http://host:9000&region=us-east-1`; credentials from
        NEXTAPI_S3_ACCESS_KEY_ID/…SECRET_ACCESS_KEY, else AWS_ACCESS_KEY_ID/…SECRET_ACCESS_KEY."""
        if "@" in url:  # checked first, and the URL never echoed: it may hold a secret
            raise ValueError("S3 store: credentials belong in the environment, not the URL")
        parts = urlsplit(url.strip())
        if parts.scheme != "s3" or not parts.hostname:
            raise ValueError("S3 store: expected s3://bucket[/prefix]?endpoint=…&region=…")
        query = dict(parse_qsl(parts.query, keep_blank_values=True))
        unknown = set(query) - {"endpoint", "region"}
        if unknown:
            raise ValueError(f"S3 store: unknown setting(s): {', '.join(sorted(unknown))}")
        region = query.get("region") or "us-east-1"
        endpoint = query.get("endpoint") or f"https://s3.{region}.amazonaws.com"
        creds = _env_credentials(environ)
        return cls(endpoint, parts.netloc, region=region, prefix=parts.path, **creds)

    async def _send(
        self,
        method: str,
        name: str,
        *,
        params: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        payload: str = EMPTY_SHA256,
        content: AsyncIterator[bytes] | None = None,
        ok: tuple[int, ...] = (200,),
    ) -> httpx.Response:
        """One signed request for object `name` (full, prefix included; "" for the bucket)."""
        params = params or {}
        path = f"{self._base_path}/{self.bucket}"
        path += f"/{uri_encode(name, keep_slash=True)}" if name else ""
        amz_date = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        headers = {"host": self._host, **(headers or {})}
        signed = sign(method, path, params, headers, payload, self._creds, amz_date)
        query = canonical_query(params)
        url = f"{self._origin}{path}{'?' + query if query else ''}"
        what = f"S3 {method} {self.bucket}/{name}"
        try:
            response = await self._client.request(method, url, headers=signed, content=content)
        except httpx.HTTPError as exc:  # messages name the URL at most, never a credential
            raise S3Error(f"{what}: {type(exc).__name__}: {exc}") from None
        if response.status_code not in ok:
            code = _error_code(response.content)
            raise S3Error(
                f"{what}: HTTP {response.status_code} {code}".rstrip(), response.status_code, code
            )
        return response

    async def put_file(self, key: str, path: Path, content_type: str) -> None:
        # Hash first (SigV4 signs the body), then stream: an S3 PUT is atomic for readers.
        name = self.prefix + check_key(key)
        digest, size = await asyncio.to_thread(_hash_file, path)
        headers = {"content-type": content_type, "content-length": str(size)}
        await self._send("PUT", name, headers=headers, payload=digest, content=_file_chunks(path))

    async def stat(self, key: str) -> AssetInfo | None:
        name = self.prefix + check_key(key)
        response = await self._send("HEAD", name, ok=(200, 404))
        if response.status_code == 404:
            return None
        size = int(response.headers.get("content-length", "0"))
        return AssetInfo(size, response.headers.get("content-type", "application/octet-stream"))

    async def read(self, key: str, start: int, end: int) -> bytes:
        name = self.prefix + check_key(key)
        headers = {"range": f"bytes={start}-{end}"}
        response = await self._send("GET", name, headers=headers, ok=(200, 206))
        # A server that ignores Range sends the whole object (200): cut the part out ourselves.
        data = response.content
        return data if response.status_code == 206 else data[start : end + 1]

    async def delete_prefix(self, prefix: str) -> int:
        try:  # `<task_id>/` is a key minus its file name: reuse check_key's rule, not a copy
            check_key(f"{prefix}probe.bin")
        except ValueError:
            raise ValueError(f"bad asset prefix: {prefix!r}") from None
        names = await self._list(self.prefix + prefix)
        for name in names:  # one DELETE each: a task has a handful of objects
            await self._send("DELETE", name, ok=(200, 204))
        return len(names)

    async def _list(self, prefix: str) -> list[str]:
        """Every object name under `prefix` (ListObjectsV2, following continuation tokens)."""
        names: list[str] = []
        params = {"list-type": "2", "prefix": prefix}
        while True:
            body = (await self._send("GET", "", params=params)).content
            try:
                root = ET.fromstring(body)
            except ET.ParseError:
                raise S3Error(f"S3 list {self.bucket}/{prefix}: unreadable answer") from None
            names += [k.text or "" for k in root.iterfind("{*}Contents/{*}Key")]
            token = root.findtext("{*}NextContinuationToken")
            if root.findtext("{*}IsTruncated") != "true" or not token:
                return names
            params = {**params, "continuation-token": token}

    async def aclose(self) -> None:
        await self._client.aclose()
