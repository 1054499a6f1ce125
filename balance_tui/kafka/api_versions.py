"""Provides what a broker says it can do: one ApiVersions request (v3) on a socket of our own.

librdkafka asks every broker this question but keeps the answer to itself; balance-tui
needs it to tell, before joining, whether the broker speaks KIP-848's consumer group
protocol (API 68, ConsumerGroupHeartbeat) and which features it has finalized (Apache
Kafka's `metadata.version`, `group.version`). Tansu, for one, lists no API 68: a
`group.protocol=consumer` member there would get no assignment and no error, forever.

ApiVersions is the one request a broker answers before authentication, so the probe works
on PLAINTEXT and SASL_PLAINTEXT listeners, and on SSL/SASL_SSL ones through TLS with the
configured CA and client certificate. Any failure is an unknown answer (None), never an
error: the caller then does what it would have done without knowing.
"""

from __future__ import annotations

import socket
import ssl
import struct
from dataclasses import dataclass, field

API_VERSIONS = 18
CONSUMER_GROUP_HEARTBEAT = 68
CONSUMER_GROUP_DESCRIBE = 69
_CLIENT_SOFTWARE = b"balance-tui"


@dataclass(frozen=True)
class BrokerApis:
    """A broker's ApiVersions answer: API key -> (min, max) version, and finalized feature levels."""

    apis: dict[int, tuple[int, int]]
    finalized_features: dict[str, int] = field(default_factory=dict)

    @property
    def consumer_protocol(self) -> bool:
        """True if the broker serves KIP-848's consumer group protocol (ConsumerGroupHeartbeat)."""
        return CONSUMER_GROUP_HEARTBEAT in self.apis

    @property
    def kraft(self) -> bool:
        """Apache Kafka in KRaft mode finalizes `metadata.version`; other brokers finalize nothing."""
        return "metadata.version" in self.finalized_features


def probe(client_config: dict[str, str], timeout: float = 3.0) -> BrokerApis | None:
    """Ask the first bootstrap server; None if it cannot be asked (unreachable, odd security, ...)."""
    first = client_config.get("bootstrap.servers", "").split(",")[0].strip()
    host, _, port = first.rpartition(":")
    if not host or not port.isdigit():
        return None
    host = host.strip("[]")
    protocol = client_config.get("security.protocol", "plaintext").lower()
    try:
        with socket.create_connection((host, int(port)), timeout=timeout) as raw:
            raw.settimeout(timeout)
            if protocol in ("ssl", "sasl_ssl"):
                with _tls_context(client_config).wrap_socket(raw, server_hostname=host) as tls:
                    return _ask(tls)
            return _ask(raw)
    except (OSError, ValueError, struct.error, IndexError, ssl.SSLError):
        return None


def _tls_context(client_config: dict[str, str]) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=client_config.get("ssl.ca.location") or None)
    if client_config.get("ssl.endpoint.identification.algorithm", "https").lower() == "none":
        context.check_hostname = False
    certificate = client_config.get("ssl.certificate.location")
    if certificate:
        context.load_cert_chain(certificate, client_config.get("ssl.key.location") or None,
                                client_config.get("ssl.key.password") or None)
    return context


def _ask(sock: socket.socket) -> BrokerApis:
    # Request header v2 (flexible): api key, version, correlation id, client id, no tagged fields.
    header = struct.pack(">hhih", API_VERSIONS, 3, 1, len(_CLIENT_SOFTWARE)) + _CLIENT_SOFTWARE + b"\x00"
    body = (_compact_string(_CLIENT_SOFTWARE) + _compact_string(b"1") + b"\x00")
    request = header + body
    sock.sendall(struct.pack(">i", len(request)) + request)
    (size,) = struct.unpack(">i", _read(sock, 4))
    if not 0 < size <= 1 << 20:
        raise ValueError("implausible ApiVersions answer size")
    return parse_api_versions_v3(_read(sock, size))


def parse_api_versions_v3(data: bytes) -> BrokerApis:
    """Decode an ApiVersions v3 response (response header v0: correlation id only)."""
    offset = 4  # correlation id
    (error_code,) = struct.unpack_from(">h", data, offset)
    offset += 2
    if error_code != 0:
        raise ValueError(f"ApiVersions error {error_code}")
    count, offset = _uvarint(data, offset)
    apis = {}
    for _ in range(max(count - 1, 0)):
        key, low, high = struct.unpack_from(">hhh", data, offset)
        offset += 6
        offset = _skip_tags(data, offset)
        apis[key] = (low, high)
    offset += 4  # throttle time
    finalized: dict[str, int] = {}
    tags, offset = _uvarint(data, offset)
    for _ in range(tags):
        tag, offset = _uvarint(data, offset)
        size, offset = _uvarint(data, offset)
        if tag == 2:  # FinalizedFeatures: [name, max level, min level]
            finalized = _finalized_features(data[offset:offset + size])
        offset += size
    return BrokerApis(apis, finalized)


def _finalized_features(data: bytes) -> dict[str, int]:
    count, offset = _uvarint(data, 0)
    features = {}
    for _ in range(max(count - 1, 0)):
        length, offset = _uvarint(data, offset)
        name = data[offset:offset + length - 1].decode("utf-8", "replace")
        offset += length - 1
        (max_level, _min_level) = struct.unpack_from(">hh", data, offset)
        offset += 4
        offset = _skip_tags(data, offset)
        features[name] = max_level
    return features


def _compact_string(value: bytes) -> bytes:
    return _uvarint_bytes(len(value) + 1) + value


def _uvarint_bytes(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _uvarint(data: bytes, offset: int) -> tuple[int, int]:
    shift = result = 0
    while True:
        byte = data[offset]
        offset += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, offset
        shift += 7
        if shift > 35:
            raise ValueError("varint too long")


def _skip_tags(data: bytes, offset: int) -> int:
    count, offset = _uvarint(data, offset)
    for _ in range(count):
        _tag, offset = _uvarint(data, offset)
        size, offset = _uvarint(data, offset)
        offset += size
    return offset


def _read(sock: socket.socket, size: int) -> bytes:
    chunks = bytearray()
    while len(chunks) < size:
        chunk = sock.recv(size - len(chunks))
        if not chunk:
            raise ValueError("connection closed mid-answer")
        chunks += chunk
    return bytes(chunks)
