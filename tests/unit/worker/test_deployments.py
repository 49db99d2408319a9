from orbyt.shared.catalog import default_catalog
from orbyt.shared.contract import Candidate
from orbyt.shared.routing import order_by_strategy
from orbyt.shared.settings import DeploymentConfig, ProviderConfig, Settings
from orbyt.worker.deployments import Deployments, expand, order_routes
from orbyt.worker.health import BreakerView
from orbyt.worker.policy import context_allows, pick_key, skip_route


def cand(model: str, key_source: str = "pool") -> Candidate:
    provider, _, upstream = model.partition("/")
    return Candidate(model=model, provider=provider, upstream=upstream, key_source=key_source)


PLAN = [
    cand("openai/gpt-5"),
    cand("mock/unknown-price"),
    cand("openai/gpt-5-nano"),
    cand("openai/gpt-4o-mini"),
]


def models(routes: list[object]) -> list[str]:
    return [r.cand["model"] for r in routes]  # type: ignore[attr-defined]


def test_cheap_sorts_by_blended_price_unknown_last() -> None:
    routes = expand(PLAN, Deployments(Settings()), default_catalog())
    assert models(order_routes(routes, "cheap", {})) == [
        "openai/gpt-5-nano",
        "openai/gpt-4o-mini",
        "openai/gpt-5",
        "mock/unknown-price",
    ]


def test_ordered_keeps_the_plan() -> None:
    routes = expand(PLAN, Deployments(Settings()), default_catalog())
    assert models(order_routes(routes, "ordered", {})) == [c["model"] for c in PLAN]


def test_fast_and_reliable_sort_observed_routes_only() -> None:
    routes = expand(PLAN, Deployments(Settings()), default_catalog())
    observed = {"openai/gpt-5@default": 900.0, "openai/gpt-4o-mini@default": 100.0}
    assert models(order_routes(routes, "fast", observed)) == [
        "openai/gpt-4o-mini",
        "mock/unknown-price",
        "openai/gpt-5-nano",
        "openai/gpt-5",
    ]


def test_provider_name_moves_that_provider_first() -> None:
    routes = expand(PLAN, Deployments(Settings()), default_catalog())
    assert models(order_routes(routes, "mock", {}))[0] == "mock/unknown-price"


def test_ties_keep_the_given_order() -> None:
    items = ["a", "b", "c"]
    assert (
        order_by_strategy(
            items, "cheap", price=lambda _: 1.0, provider=str, observed=lambda _: None
        )
        == items
    )


def test_deployments_expand_into_routes_each_with_its_own_pool() -> None:
    settings = Settings(
        providers={
            "openai": ProviderConfig(
                deployments=[
                    DeploymentConfig(name="east", base_url="http://e/v1", keys=["k1", "k2"]),
                    DeploymentConfig(name="west", base_url="http://w/v1", keys=["k3"]),
                ]
            )
        }
    )
    routes = expand([cand("openai/gpt-5")], Deployments(settings), default_catalog())
    assert [(r.id, r.base_url, len(r.keys)) for r in routes] == [
        ("openai/gpt-5@east", "http://e/v1", 2),
        ("openai/gpt-5@west", "http://w/v1", 1),
    ]
    assert routes[0].pool != routes[1].pool


def test_breaker_states_and_skipping() -> None:
    assert BreakerView(0, 0).state(1000) == "closed"
    assert BreakerView(2000, 0).state(1000) == "open"
    assert BreakerView(2000, 0).state(2000) == "half_open"
    assert skip_route("open", last=False) and skip_route("half_open", last=False)
    assert not skip_route("open", last=True) and not skip_route("closed", last=False)


def test_context_floor_only_admits_larger_windows() -> None:
    catalog = default_catalog()
    small, large = catalog.get("openai/gpt-4o-mini"), catalog.get("openai/gpt-4.1")
    assert context_allows(large, None)
    assert context_allows(large, 128000) and not context_allows(small, 128000)
    assert context_allows(None, 128000)


def test_pick_key_round_robins_over_healthy_keys() -> None:
    assert [pick_key(c, [True, True, True]) for c in range(4)] == [0, 1, 2, 0]
    assert pick_key(0, [False, True, False]) == 1
    assert pick_key(2, [True, False, False]) == 0
    assert pick_key(5, [False, False]) is None
