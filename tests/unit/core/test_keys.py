"""Unit tests for writebehind.core.keys: id encoding, partitioning and Redis key names."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections import Counter
from typing import Any

import pytest
from bson import ObjectId

from tests.support.paths import REPO_ROOT
from writebehind.core.errors import (
    ConfigurationError,
    InvalidCollectionName,
    InvalidInput,
    UnsupportedIdType,
    WriteBehindError,
)
from writebehind.core.keys import MAX_PARTITIONS, KeySpace, encode_id, validate_collection_name

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
OID = ObjectId("0123456789abcdef01234567")
UID = uuid.UUID("12345678-1234-5678-1234-567812345678")


def hash_tag(key: str) -> str:
    """The part of ``key`` Redis Cluster hashes: the text between the first ``{`` and the
    next ``}`` when it is non-empty, otherwise the whole key."""
    start = key.find("{")
    if start == -1:
        return key
    end = key.find("}", start + 1)
    if end == -1 or end == start + 1:
        return key
    return key[start + 1 : end]


def test_hash_tag_helper_follows_the_cluster_rule() -> None:
    assert hash_tag("{user1000}.following") == "user1000"
    assert hash_tag("foo{}{bar}") == "foo{}{bar}"
    assert hash_tag("foo{{bar}}zap") == "{bar"
    assert hash_tag("foo{bar}{zap}") == "bar"
    assert hash_tag("nobraces") == "nobraces"
    assert hash_tag("open{only") == "open{only"


# -- encode_id -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("doc_id", "expected"),
    [
        (42, "i42"),
        ("42", "s42"),
        (-7, "i-7"),
        (0, "i0"),
        ("", "s"),
        ("i42", "si42"),
        ("héllo wörld", "shéllo wörld"),
        (INT64_MAX, f"i{INT64_MAX}"),
        (INT64_MIN, f"i{INT64_MIN}"),
        (OID, "o0123456789abcdef01234567"),
        (UID, "u12345678123456781234567812345678"),
    ],
)
def test_encode_id(doc_id: Any, expected: str) -> None:
    assert encode_id(doc_id) == expected


def test_encode_id_distinguishes_types() -> None:
    assert encode_id(42) != encode_id("42")
    assert encode_id("i42") != encode_id(42)
    assert encode_id(str(OID)) != encode_id(OID)
    assert encode_id(UID.hex) != encode_id(UID)
    assert encode_id(str(UID)) != encode_id(UID)
    encoded = {encode_id(x) for x in (42, "42", "i42", OID, str(OID), UID, UID.hex)}
    assert len(encoded) == 7


@pytest.mark.parametrize(
    "doc_id",
    [
        True,
        False,
        1.0,
        42.5,
        float("nan"),
        None,
        b"42",
        bytearray(b"x"),
        2**63,
        INT64_MIN - 1,
        ["a"],
        ("a",),
        {"a": 1},
        object(),
    ],
)
def test_encode_id_rejects_unsupported(doc_id: Any) -> None:
    with pytest.raises(UnsupportedIdType) as info:
        encode_id(doc_id)
    assert isinstance(info.value, InvalidInput)
    assert isinstance(info.value, TypeError)
    assert isinstance(info.value, ValueError)
    assert isinstance(info.value, WriteBehindError)


def test_unsupported_id_type_hierarchy() -> None:
    assert issubclass(UnsupportedIdType, InvalidInput)
    assert issubclass(UnsupportedIdType, TypeError)
    assert issubclass(UnsupportedIdType, ValueError)


# -- validate_collection_name -------------------------------------------------------------


@pytest.mark.parametrize(
    "name", ["users", "a", "a.b", "my_coll-1", "with space", "ünïcode", "x" * 200, "é" * 100]
)
def test_check_collection_name_accepts(name: str) -> None:
    assert validate_collection_name(name) == name


@pytest.mark.parametrize(
    "name",
    [
        "",
        "a$b",
        "$cmd",
        "a\x00b",
        "system.x",
        "system.users",
        "x" * 300,
        "x" * 201,
        "é" * 101,
        None,
        5,
        b"users",
        ["users"],
    ],
)
def test_check_collection_name_rejects(name: Any) -> None:
    with pytest.raises(InvalidCollectionName) as info:
        validate_collection_name(name)
    assert isinstance(info.value, InvalidInput)
    assert isinstance(info.value, ValueError)


# -- KeySpace validation ---------------------------------------------------------------


@pytest.mark.parametrize("prefix", ["wb", "a", "my-app.v1_2", "A" * 64, "0"])
def test_keyspace_accepts_prefix(prefix: str) -> None:
    assert KeySpace(prefix).prefix == prefix


@pytest.mark.parametrize(
    "prefix",
    ["", "a{b", "{wb}", "a}b", "a:b", ":", "A" * 65, "a b", "wb\t", "ünï", "a/b", None, 5, b"wb"],
)
def test_keyspace_rejects_prefix(prefix: Any) -> None:
    with pytest.raises(ConfigurationError):
        KeySpace(prefix)


def test_keyspace_rejects_prefix_with_trailing_newline() -> None:
    with pytest.raises(ConfigurationError):
        KeySpace("wb\n")


@pytest.mark.parametrize("partitions", [1, 2, 16, MAX_PARTITIONS])
def test_keyspace_accepts_partitions(partitions: int) -> None:
    assert KeySpace(partitions=partitions).partitions == partitions


@pytest.mark.parametrize("partitions", [0, -1, MAX_PARTITIONS + 1, True, 16.0, "16", None])
def test_keyspace_rejects_partitions(partitions: Any) -> None:
    with pytest.raises(ConfigurationError):
        KeySpace(partitions=partitions)


def test_keyspace_defaults() -> None:
    keys = KeySpace()
    assert (keys.prefix, keys.partitions) == ("wb", 16)
    assert keys.meta == "{wb}:meta"
    assert keys.stream(3) == "{wb:p3}:stream"
    assert keys.dead_letters(3) == "{wb:p3}:dlq"
    assert keys.streams() == [f"{{wb:p{p}}}:stream" for p in range(16)]


# -- partition_of ----------------------------------------------------------------------

SAMPLE_IDS: list[tuple[str, Any]] = [
    ("users", "alice"),
    ("users", 42),
    ("users", "42"),
    ("users", OID),
    ("users", UID),
    ("orders", "alice"),
    ("a:s", "x"),
    ("a", "s:x"),
]

# partition_of must never change: a different answer would send existing documents'
# records to other streams. These were computed with blake2b as the module documents.
GOLDEN = [
    ("users", "alice", 16, 9),
    ("users", 42, 16, 5),
    ("users", "42", 16, 8),
    ("users", OID, 16, 15),
    ("users", UID, 16, 10),
    ("orders", "x", 4096, 829),
]


@pytest.mark.parametrize(("collection", "doc_id", "partitions", "expected"), GOLDEN)
def test_partition_of_golden_values(
    collection: str, doc_id: Any, partitions: int, expected: int
) -> None:
    assert KeySpace(partitions=partitions).partition_of(collection, doc_id) == expected


def test_partition_of_is_deterministic_across_instances() -> None:
    first = KeySpace(partitions=16)
    for collection, doc_id in SAMPLE_IDS:
        expected = KeySpace(prefix="other", partitions=16).partition_of(collection, doc_id)
        assert first.partition_of(collection, doc_id) == expected
        assert first.partition_of(collection, doc_id) == expected  # and on a repeat call


def test_partition_of_is_stable_across_processes() -> None:
    here = [KeySpace(partitions=64).partition_of(f"coll{i % 3}", f"id-{i}") for i in range(200)]
    here += [KeySpace(partitions=64).partition_of("users", i) for i in range(200)]
    code = (
        "import json\n"
        "from writebehind.core.keys import KeySpace\n"
        "k = KeySpace(partitions=64)\n"
        "out = [k.partition_of(f'coll{i % 3}', f'id-{i}') for i in range(200)]\n"
        "out += [k.partition_of('users', i) for i in range(200)]\n"
        "print(json.dumps(out))\n"
    )
    for seed in ("123", "0", "4242"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in (str(REPO_ROOT), env.get("PYTHONPATH", "")) if p
        )
        result = subprocess.run(
            [sys.executable, "-c", code],
            env=env,
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        assert json.loads(result.stdout) == here


@pytest.mark.parametrize("partitions", [1, 2, 3, 7, 16, MAX_PARTITIONS])
def test_partition_of_is_within_range(partitions: int) -> None:
    keys = KeySpace(partitions=partitions)
    seen = {keys.partition_of("c", i) for i in range(2000)}
    assert seen <= set(range(partitions))
    if partitions == 1:
        assert seen == {0}
    elif partitions <= 16:
        assert seen == set(range(partitions))


def test_partition_of_spreads_reasonably() -> None:
    keys = KeySpace(partitions=16)
    counts = Counter(keys.partition_of("users", f"user-{i}") for i in range(10_000))
    assert set(counts) == set(range(16))
    assert all(400 <= n <= 900 for n in counts.values()), counts
    int_counts = Counter(keys.partition_of("users", i) for i in range(10_000))
    assert all(400 <= int_counts[p] <= 900 for p in range(16)), int_counts


def test_partition_of_rejects_unsupported_id() -> None:
    with pytest.raises(UnsupportedIdType):
        KeySpace().partition_of("users", 1.5)


# -- key names -------------------------------------------------------------------------

AWKWARD_COLLECTIONS = ["users", "a{b", "a}b", "}{", "{x}", "a:b", "with space", "ünï €", "日本"]
AWKWARD_IDS: list[Any] = [
    "plain",
    "{",
    "}",
    "{}",
    "}{",
    "{tag}",
    "a:b:c",
    "with space",
    "ünï €",
    "日本語",
    "",
    42,
    -1,
    OID,
    UID,
]


@pytest.mark.parametrize("prefix", ["wb", "app-1.x_y"])
@pytest.mark.parametrize("collection", AWKWARD_COLLECTIONS)
def test_document_keys_share_one_hash_tag(prefix: str, collection: str) -> None:
    keys = KeySpace(prefix=prefix, partitions=16)
    for doc_id in AWKWARD_IDS:
        partition = keys.partition_of(collection, doc_id)
        cache = keys.cache(partition, collection, doc_id)
        stream = keys.stream(partition)
        dlq = keys.dead_letters(partition)
        expected = f"{prefix}:p{partition}"
        assert hash_tag(cache) == expected, cache
        assert hash_tag(stream) == expected
        assert hash_tag(dlq) == expected
        assert hash_tag(keys.invalidations(partition)) == expected
        assert hash_tag(keys.dead_letter_sources(partition)) == expected
        assert hash_tag(keys.lease(partition, collection, doc_id)) == expected
        assert hash_tag(keys.eviction_marker(partition, collection, doc_id)) == expected
        assert hash_tag(keys.flush_marker(partition, collection)) == expected  # FILL's KEYS[4]
        assert len({stream, dlq, cache}) == 3


def test_partitions_have_distinct_tags() -> None:
    keys = KeySpace(partitions=32)
    tags = {hash_tag(keys.stream(p)) for p in range(32)}
    assert len(tags) == 32
    assert hash_tag(keys.meta) not in tags


def test_cache_key_layout() -> None:
    keys = KeySpace()
    assert keys.cache(3, "users", "alice") == "{wb:p3}:doc:5:users:salice"
    assert keys.cache(3, "users", 42) == "{wb:p3}:doc:5:users:i42"


def test_flush_marker_layout() -> None:
    """Per partition and collection, length-prefixed, never a cache entry of the collection
    (the invalidator's flush SCANs ``{wb:pN}:doc:<len>:<collection>:*``)."""
    keys = KeySpace()
    assert keys.flush_marker(3, "users") == "{wb:p3}:flushed:5:users"
    assert keys.flush_marker(3, "a:1") != keys.flush_marker(3, "a")
    assert not keys.is_cache_key(3, keys.flush_marker(3, "users"))


@pytest.mark.parametrize(
    ("first", "second"),
    [
        (("a:s", "x"), ("a", "s:x")),
        (("a", "s:x"), ("a:s", "x")),
        (("users", 42), ("users", "42")),
        (("users", "i42"), ("users", 42)),
        (("a:1", "x"), ("a", "1:x")),
        (("1:a", "x"), ("1", "a:x")),
        (("users", OID), ("users", str(OID))),
    ],
)
def test_cache_keys_do_not_collide(first: tuple[str, Any], second: tuple[str, Any]) -> None:
    keys = KeySpace()
    assert keys.cache(0, *first) != keys.cache(0, *second)


def test_cache_keys_unique_over_many_pairs() -> None:
    keys = KeySpace()
    parts = ["", "a", "s", ":", "a:", ":s", "a:s", "1", "1:", "{", "}", "x"]
    pairs = [(c, i) for c in parts if c for i in parts]
    cache_keys = {keys.cache(0, c, i) for c, i in pairs}
    assert len(cache_keys) == len(pairs)


@pytest.mark.parametrize("collection", AWKWARD_COLLECTIONS)
def test_cache_names_inverts_cache(collection: str) -> None:
    # Dead-letter moves name the document for near caches from the cache key alone.
    keys = KeySpace(prefix="app-1.x_y", partitions=16)
    for doc_id in AWKWARD_IDS:
        partition = keys.partition_of(collection, doc_id)
        key = keys.cache(partition, collection, doc_id)
        assert keys.cache_names(partition, key) == (collection, encode_id(doc_id))


@pytest.mark.parametrize(
    "key",
    [
        "{wb:p1}:doc:5:users:salice",  # another partition
        "{wb:p0}:stream",
        "{wb:p0}:doc:",
        "{wb:p0}:doc:x:users:salice",
        "{wb:p0}:doc:5:users",
        "{wb:p0}:doc:5:users:",
        "{wb:p0}:doc:9:users:salice",
        "{wb:p0}:doc:-1:users:salice",
        "{other:p0}:doc:5:users:salice",
    ],
)
def test_cache_names_refuses_other_keys(key: str) -> None:
    assert KeySpace().cache_names(0, key) is None


@pytest.mark.parametrize("doc_id", ["a", 7, ObjectId(), uuid.uuid4()])
def test_entry_of_is_partition_and_cache_key(doc_id: Any) -> None:
    keys = KeySpace("wb", 64)
    p = keys.partition_of("users", doc_id)
    assert keys.entry_of("users", doc_id) == (p, keys.cache(p, "users", doc_id))
