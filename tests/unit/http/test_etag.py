"""Entity tags from versions: stable across processes, distinct across resources."""

from __future__ import annotations

import os
import string
import subprocess
import sys
import uuid

import pytest
from bson import ObjectId

from writebehind.core.errors import InvalidEntityTag, InvalidInput, UnsupportedIdType
from writebehind.core.version import ZERO, Version
from writebehind.http import EntityTag, document_etag, has_validator, validators_etag

V = Version(1718000000000, 3)


def test_a_document_tag_is_a_quoted_strong_base64url_digest() -> None:
    tag = document_etag("users", "42", V)
    text = str(tag)
    assert not tag.weak
    assert text.startswith('"') and text.endswith('"')
    assert len(tag.opaque) == 43  # 32 bytes of SHA-256, base64url without padding
    assert set(tag.opaque) <= set(string.ascii_letters + string.digits + "-_")


def test_the_same_inputs_give_the_same_tag() -> None:
    assert document_etag("users", "42", V) == document_etag("users", "42", Version(V.ms, V.seq))


@pytest.mark.parametrize(
    ("collection", "doc_id", "version"),
    [
        ("users", "43", V),  # another document
        ("users", 42, V),  # 42 and "42" are different documents
        ("orders", "42", V),  # another collection
        ("users", "42", Version(V.ms, V.seq + 1)),  # another version
        ("users", "42", Version(V.ms + 1, V.seq)),
        ("users:4", "2", V),  # no ambiguity where the fields meet
    ],
)
def test_any_other_input_gives_another_tag(
    collection: str, doc_id: object, version: Version
) -> None:
    assert document_etag(collection, doc_id, version) != document_etag("users", "42", V)


def test_every_id_type_has_a_tag() -> None:
    ids = [ObjectId("65f0a0a0a0a0a0a0a0a0a0a0"), uuid.UUID(int=7), -5, "é"]
    tags = {str(document_etag("users", doc_id, V)) for doc_id in ids}
    assert len(tags) == len(ids)


def test_the_tag_does_not_depend_on_the_hash_seed() -> None:
    code = (
        "from writebehind.http import document_etag, validators_etag\n"
        "from writebehind.core.version import Version\n"
        "v = Version(1718000000000, 3)\n"
        "print(document_etag('users', '42', v), validators_etag(['g1', v], resource='r'))"
    )
    outputs = set()
    for seed in ("0", "1", "12345"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        result = subprocess.run(
            [sys.executable, "-c", code], env=env, check=True, capture_output=True, text=True
        )
        outputs.add(result.stdout)
    assert len(outputs) == 1
    here = f"{document_etag('users', '42', V)} {validators_etag(['g1', V], resource='r')}\n"
    assert outputs == {here}


def test_refusals() -> None:
    with pytest.raises(UnsupportedIdType):
        document_etag("users", 1.5, V)
    with pytest.raises(InvalidInput):
        document_etag("", "42", V)
    with pytest.raises(InvalidInput):
        document_etag("users", "42", "1-2")  # type: ignore[arg-type]
    with pytest.raises(InvalidInput, match="0-0"):
        document_etag("users", "42", ZERO)


def test_only_real_versions_validate() -> None:
    assert has_validator(V)
    assert not has_validator(None)
    assert not has_validator(ZERO)


def test_validator_parts_order_type_and_resource_matter() -> None:
    base = validators_etag(["a", V], resource="card:1")
    assert base == validators_etag(["a", Version(V.ms, V.seq)], resource="card:1")
    assert base != validators_etag([V, "a"], resource="card:1")
    assert base != validators_etag(["a", str(V)], resource="card:1")  # Version vs its text
    assert base != validators_etag(["a", V], resource="card:2")
    assert base != validators_etag(["a", V])
    assert validators_etag(["ab", "c"]) != validators_etag(["a", "bc"])
    assert validators_etag([]) != validators_etag([""])
    assert validators_etag(iter(["x"])) == validators_etag(("x",))


@pytest.mark.parametrize("parts", ["ab", b"ab", 3, [1], [None], [b"x"]])
def test_bad_validator_parts_are_refused(parts: object) -> None:
    with pytest.raises(InvalidInput):
        validators_etag(parts)  # type: ignore[arg-type]


def test_a_version_part_never_meets_a_document_tag() -> None:
    assert validators_etag([V], resource="users") != document_etag("users", "42", V)


@pytest.mark.parametrize("opaque", ['a"b', "a b", "a\tb", "\x7f", "\x00", "ā"])
def test_an_entity_tag_refuses_characters_outside_etagc(opaque: str) -> None:
    with pytest.raises(InvalidEntityTag):
        EntityTag(opaque)


def test_entity_tag_text_and_comparison() -> None:
    strong, weak = EntityTag("x"), EntityTag("x", weak=True)
    assert str(strong) == '"x"' and str(weak) == 'W/"x"'
    assert str(EntityTag("")) == '""'
    assert strong.strong_match(EntityTag("x"))
    assert not strong.strong_match(weak) and not weak.strong_match(weak)
    assert strong.weak_match(weak) and weak.weak_match(weak)
    assert not strong.weak_match(EntityTag("y"))
