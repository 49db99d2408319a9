"""worker.billing: every attempt's bill, summed; a cut without usage is estimated."""

from __future__ import annotations

from orbyt.worker.billing import Billed, cut_usage, estimate_tokens, prompt_chars, total_usage

BODY = {
    "messages": [
        {"role": "system", "content": "Be brief."},  # 9 characters
        {"role": "user", "content": [{"type": "text", "text": "Say hi"}]},  # 6
    ]
}


def test_estimates_count_about_four_characters_per_token_rounding_up() -> None:
    assert [estimate_tokens(n) for n in (0, 1, 4, 5, 160)] == [0, 1, 1, 2, 40]
    assert prompt_chars(BODY) == 15


def test_a_cut_without_usage_is_estimated_from_the_text() -> None:
    usage, estimated = cut_usage(None, BODY, sent_chars=160)
    assert estimated
    assert usage == {"prompt_tokens": 4, "completion_tokens": 40, "total_tokens": 44}


def test_a_cut_with_reported_usage_keeps_it() -> None:
    reported = {"prompt_tokens": 90, "completion_tokens": 12, "total_tokens": 102}
    assert cut_usage(reported, BODY, sent_chars=160) == (reported, False)
    partial = {"prompt_tokens": 90}  # the prompt known, the completion not (yet)
    usage, estimated = cut_usage(partial, BODY, sent_chars=8)
    assert estimated and usage["completion_tokens"] == 2


def test_the_total_sums_every_attempt_with_details() -> None:
    cut = Billed("openai/gpt-5-mini", "pool", {"prompt_tokens": 4, "completion_tokens": 40}, True)
    rest = Billed(
        "anthropic/claude-3-haiku",
        "byok",
        {
            "prompt_tokens": 90,
            "completion_tokens": 20,
            "total_tokens": 110,
            "prompt_tokens_details": {"cached_tokens": 30},
        },
    )
    assert total_usage([cut, rest]) == {
        "prompt_tokens": 94,
        "completion_tokens": 60,
        "total_tokens": 154,
        "prompt_tokens_details": {"cached_tokens": 30},
    }
    assert cut.entry() == {
        "model": "openai/gpt-5-mini",
        "key_source": "pool",
        "prompt_tokens": 4,
        "completion_tokens": 40,
        "estimated": True,
    }
    assert rest.entry()["cached_tokens"] == 30 and "estimated" not in rest.entry()
