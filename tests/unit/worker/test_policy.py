from orbyt.shared.errors import Disposition, UpstreamError
from orbyt.worker.policy import (
    RetryPolicy,
    Step,
    backoff,
    caller_may_retry,
    final_error,
    next_action,
)


def err(
    disposition: Disposition, status: int = 503, retry_after: float | None = None
) -> UpstreamError:
    return UpstreamError("x", status=status, disposition=disposition, retry_after=retry_after)


POLICY = RetryPolicy(retries=2, base=0.5, cap=8.0, retry_after_cap=10.0)


def test_backoff_is_full_jitter_capped() -> None:
    assert backoff(0, POLICY, lambda: 1.0) == 0.5
    assert backoff(3, POLICY, lambda: 1.0) == 4.0
    assert backoff(10, POLICY, lambda: 1.0) == 8.0
    assert backoff(10, POLICY, lambda: 0.0) == 0.0


def test_retryable_errors_retry_within_budget_then_move_on() -> None:
    e = err(Disposition.RETRY)
    assert next_action(e, 0, 60, POLICY, lambda: 0.5).step is Step.RETRY
    assert next_action(e, 1, 60, POLICY, lambda: 0.5).step is Step.RETRY
    assert next_action(e, 2, 60, POLICY, lambda: 0.5).step is Step.NEXT


def test_retry_after_is_honoured_up_to_the_cap_and_deadline() -> None:
    assert next_action(err(Disposition.RETRY, 429, 2.0), 0, 60, POLICY, lambda: 0.0) == next_action(
        err(Disposition.RETRY, 429, 2.0), 0, 60, POLICY, lambda: 1.0
    )
    action = next_action(err(Disposition.RETRY, 429, 2.0), 0, 60, POLICY, lambda: 0.0)
    assert action.step is Step.RETRY and action.delay == 2.0
    assert (
        next_action(err(Disposition.RETRY, 429, 11.0), 0, 60, POLICY, lambda: 0.0).step is Step.NEXT
    )
    assert (
        next_action(err(Disposition.RETRY, 429, 5.0), 0, 4.0, POLICY, lambda: 0.0).step is Step.NEXT
    )


def test_failover_dispositions_never_retry_the_same_candidate() -> None:
    for d in (Disposition.FAILOVER, Disposition.CONTEXT, Disposition.AUTH, Disposition.QUOTA):
        assert next_action(err(d), 0, 60, POLICY, lambda: 0.0).step is Step.NEXT


def test_final_errors_stop() -> None:
    assert next_action(err(Disposition.FINAL, 400), 0, 60, POLICY, lambda: 0.0).step is Step.STOP


def test_final_error_is_the_primarys_own_failure() -> None:
    primary = err(Disposition.RETRY, 503)
    later = err(Disposition.FAILOVER, 504)
    assert final_error([(0, primary), (1, later)]) is primary
    # a fallback refusing the request is a side effect, not the real failure
    assert final_error([(0, primary), (1, err(Disposition.FINAL, 400))]) is primary
    # the primary's own refusal is what the caller gets
    refusal = err(Disposition.FINAL, 400)
    assert final_error([(0, refusal)]) is refusal
    # the first route attempted is the primary, whatever its index (breaker skips)
    retried = err(Disposition.RETRY, 429)
    assert final_error([(2, primary), (2, retried), (3, later)]) is retried


def test_a_final_refusal_stops_only_when_the_primary_gives_it() -> None:
    from orbyt.worker.policy import stops_walk

    assert stops_walk(err(Disposition.FINAL, 400), primary=True)
    assert not stops_walk(err(Disposition.FINAL, 400), primary=False)
    assert not stops_walk(err(Disposition.RETRY, 503), primary=True)


def test_the_caller_is_told_not_to_retry_once_the_gateway_has_retried() -> None:
    """Every route failed: the SDKs retry a `true` on top of the gateway's own retries."""
    overloaded = err(Disposition.RETRY, 503)
    assert caller_may_retry(overloaded, attempts=3) is False
    assert caller_may_retry(overloaded, attempts=2) is False
    # one attempt (extra.retry 0, one route): the SDK's retry is the only one
    assert caller_may_retry(overloaded, attempts=1) is True
    assert caller_may_retry(err(Disposition.FAILOVER, 504), attempts=0) is True
    # a Retry-After says when to come back
    assert caller_may_retry(err(Disposition.RETRY, 429, retry_after=30.0), attempts=3) is True
    # never for what a retry cannot fix
    assert caller_may_retry(err(Disposition.FINAL, 400), attempts=1) is False
    assert caller_may_retry(err(Disposition.QUOTA, 429, retry_after=5.0), attempts=1) is False
