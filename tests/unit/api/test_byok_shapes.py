"""Caller-key shape checks (api/auth.py, PROVIDERS.md §7): strict only where a
shape is unambiguous, and a problem is described without ever quoting the key."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from orbyt.api.auth import key_shape_problem

OPENAI = "sk-proj-" + "a1B2c3D4e5F6" * 6 + "T3BlbkFJ" + "g7H8i9J0k1L2" * 6
OPENAI_LEGACY = "sk-" + "Q" * 20 + "T3BlbkFJ" + "R" * 20
OPENAI_SERVICE = "sk-svcacct-" + "x_Y-z" * 30
ANTHROPIC = "sk-ant-api03-" + "Zx8Yw7Vu6Ts5" * 7 + "R4Qp3On2m" + "AA"
GOOGLE = "AIza" + "SyD-3x_Q9kLm2Np4Rs6Tu8Vw0Yz1Ab5Cd7E"
GOOGLE_AQ = "AQ.Ab8RN6Ix2_tPq-Wz9Lk4Mn.7Yv3Hs5Jd1"
DEEPSEEK = "sk-" + "0123456789abcdef" * 2
MISTRAL = "Zq4Wm8Rt2Xy6Kp0Lv3Nb7Hc1Fd5Gs9Jw"  # 32 alphanumerics, no prefix
SHAPELESS = "local-vllm-token-1234"

PROVIDERS = ["openai", "anthropic", "google", "mistral", "deepseek", "myvllm"]


@pytest.mark.parametrize(
    ("provider", "key"),
    [
        ("openai", OPENAI),
        ("openai", OPENAI_LEGACY),
        ("openai", OPENAI_SERVICE),
        ("anthropic", ANTHROPIC),
        ("google", GOOGLE),
        ("google", GOOGLE_AQ),
        ("deepseek", DEEPSEEK),
        ("mistral", MISTRAL),
        ("myvllm", SHAPELESS),
        ("myvllm", OPENAI),
        ("mistral", DEEPSEEK),
        ("google", MISTRAL),  # not distinctive
        ("openai", "AIza-too-short-to-be-google"),
    ],
)
def test_plausible_keys_pass(provider: str, key: str) -> None:
    assert key_shape_problem(provider, key) is None


@pytest.mark.parametrize(
    ("provider", "key", "says"),
    [
        # distinctively another provider's key
        ("openai", ANTHROPIC, "anthropic key"),
        ("deepseek", ANTHROPIC, "anthropic key"),
        ("myvllm", ANTHROPIC, "anthropic key"),
        ("openai", GOOGLE, "google key"),
        ("anthropic", GOOGLE, "google key"),
        ("mistral", GOOGLE_AQ, "google key"),
        # Anthropic keys always start with sk-ant-
        ("anthropic", OPENAI, "not an Anthropic API key"),
        ("anthropic", MISTRAL, "not an Anthropic API key"),
        # keys that cannot call inference
        ("anthropic", "sk-ant-admin01-" + "A" * 80, "admin or OAuth"),
        ("anthropic", "sk-ant-oat01-" + "B" * 80, "admin or OAuth"),
        ("openai", "sk-ant-admin01-" + "A" * 80, "admin or OAuth"),
        ("openai", "sk-admin-" + "C" * 60, "OpenAI admin key"),
        ("myvllm", "sk-admin-" + "C" * 60, "OpenAI admin key"),
        # not a key at all
        ("openai", "short", "8 to 512 printable"),
        ("openai", "sk-proj-" + "a" * 600, "8 to 512 printable"),
        ("openai", OPENAI + " ", "8 to 512 printable"),
        ("openai", "sk-proj with space inside", "8 to 512 printable"),
        ("openai", OPENAI + "\n", "8 to 512 printable"),
        ("openai", "sk-proj-\tTAB-inside-0000", "8 to 512 printable"),
        ("myvllm", "clé-avec-accents-0000", "8 to 512 printable"),
        ("openai", "", "8 to 512 printable"),
    ],
)
def test_mismatches_are_named_without_the_key(provider: str, key: str, says: str) -> None:
    problem = key_shape_problem(provider, key)
    assert problem is not None and says in problem
    assert not any(key[i : i + 8] in problem for i in range(len(key) - 7))


def test_boundaries_of_the_printable_rule() -> None:
    assert key_shape_problem("myvllm", "x" * 8) is None
    assert key_shape_problem("myvllm", "x" * 7) is not None
    assert key_shape_problem("myvllm", "x" * 512) is None
    assert key_shape_problem("myvllm", "x" * 513) is not None
    assert key_shape_problem("myvllm", "!\"#$%&'()*+,-./:;<=>?@[]^_`{|}~") is None


@settings(max_examples=300, deadline=None, database=None, derandomize=True)
@given(
    provider=st.sampled_from(PROVIDERS),
    prefix=st.sampled_from(
        ["", "sk-", "sk-ant-", "sk-ant-admin01-", "sk-admin-", "AIza", "AQ.", "sk-proj-"]
    ),
    rest=st.text(min_size=0, max_size=80),
)
def test_a_problem_never_quotes_the_key(provider: str, prefix: str, rest: str) -> None:
    key = prefix + rest
    problem = key_shape_problem(provider, key)
    if problem is not None and len(rest) >= 6:
        assert rest not in problem
