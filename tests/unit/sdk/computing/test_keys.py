"""Key and tag templates, the stable default key, and the Redis key names (no servers)."""

from __future__ import annotations

import inspect
import os
import subprocess
import sys
import uuid

import pytest

from tests.support.processes import REPO_ROOT
from writebehind.core.errors import ConfigurationError, InvalidInput
from writebehind.sdk.computing.keys import (
    bind,
    check_template,
    default_key,
    entry_key,
    lease_of,
    make_plan,
    render,
)


def profile(user_id: str, lang: str = "en", *rest: int, **extra: str) -> None: ...


SIGNATURE = inspect.signature(profile)
PARAMS = list(SIGNATURE.parameters)


def test_templates_name_parameters() -> None:
    check_template("profile:{user_id}:{lang}", PARAMS, "key")
    check_template("user:{user_id.upper}", PARAMS, "tag")  # attribute access is format's
    for bad in ("p:{nobody}", "p:{0}", "p:{}", "p:{user_id", ""):
        with pytest.raises(ConfigurationError):
            check_template(bad, PARAMS, "key")


def test_render_fills_from_bound_arguments_with_defaults() -> None:
    arguments = bind(SIGNATURE, ["42"], {})
    assert render("profile:{user_id}:{lang}", arguments, "key") == "profile:42:en"
    with pytest.raises(InvalidInput):
        render("{user_id.nope}", arguments, "key")
    with pytest.raises(InvalidInput):
        render("{x}", {"x": ""}, "tag")  # renders empty
    with pytest.raises(InvalidInput):
        bind(SIGNATURE, [], {"nobody": 1})


def test_default_key_is_canonical() -> None:
    a = default_key("m.f", {"x": {"b": 1, "a": [1, (2, 3)]}})
    b = default_key("m.f", {"x": {"a": [1, [2, 3]], "b": 1}})
    assert a == b  # field order and tuple-vs-list do not matter
    assert a.startswith("m.f:") and len(a) == len("m.f:") + 64
    assert default_key("m.f", {"x": 42}) != default_key("m.f", {"x": "42"})
    assert default_key("m.f", {"x": 1}) != default_key("m.g", {"x": 1})
    assert default_key("m.f", {"x": 1, "y": 2}) != default_key("m.f", {"y": 1, "x": 2})
    u = uuid.UUID(int=7)
    assert default_key("m.f", {"u": u}) == default_key("m.f", {"u": u})
    with pytest.raises(InvalidInput, match="key="):
        default_key("m.f", {"x": object()})
    with pytest.raises(InvalidInput):
        default_key("m.f", {"x": 2**70})


def test_default_key_is_the_same_in_other_processes() -> None:
    code = (
        "from writebehind.sdk.computing.keys import default_key;"
        "print(default_key('m.f', {'s': 'x', 'd': {'k': 1, 'j': [1.5, None]}}))"
    )
    keys = set()
    for seed in ("1", "2", "random"):
        env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "PYTHONHASHSEED": seed}
        out = subprocess.run(
            [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
        )
        keys.add(out.stdout.strip())
    assert keys == {default_key("m.f", {"s": "x", "d": {"j": [1.5, None], "k": 1}})}


def test_key_names_cannot_collide() -> None:
    assert entry_key("wb", "a:b", "c") != entry_key("wb", "a", "b:c")
    assert entry_key("wb", "ns", "k") == "{wb}:cv:2:ns:k"
    assert lease_of(entry_key("wb", "ns", "x:cv:y")) == "{wb}:cvlease:2:ns:x:cv:y"


def test_plan() -> None:
    plan = make_plan("wb", "ns", "k", ["t1", "t2", "t1"], [("users", "1")], ["{wb:p0}:doc:x"])
    assert plan.tags == ("t1", "t2")
    assert plan.generations == (
        "{wb}:gen:t:t1",
        "{wb}:gen:t:t2",
        "{wb}:gen:ns:ns",
        "{wb}:gen:all",
    )
    assert plan.stamp_keys == (*plan.generations, "{wb:p0}:doc:x")
    other = make_plan("wb", "ns", "k", ["t1"], [("users", "1")], ["{wb:p0}:doc:x"])
    assert plan.fingerprint != other.fingerprint
    same_keys = make_plan("wb", "ns", "k", ["t1", "t2"], [], ["{wb:p0}:doc:x"])
    assert plan.fingerprint == same_keys.fingerprint
