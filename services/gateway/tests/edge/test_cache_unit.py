"""The principal cache and the JWKS cache on their own (no services)."""

from __future__ import annotations

from proliferate.gateway.edge.authentication.cache import PrincipalCache
from proliferate.gateway.edge.authentication.tokens import JwksCache
from proliferate.kit.principal import Principal, PrincipalKind


def principal(user: str = "u1", credential: str = "c1", impersonator: str = "") -> Principal:
    return Principal(
        kind=PrincipalKind.USER, user_id=user, credential_id=credential, impersonator_user_id=impersonator
    )


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class TestPrincipalCache:
    def test_entries_expire_after_the_ttl(self) -> None:
        clock = Clock()
        cache = PrincipalCache(30, clock=clock)
        cache.put(b"k", principal(), cache.generation)
        clock.now += 29.9
        assert cache.get(b"k") is not None
        clock.now += 0.2
        assert cache.get(b"k") is None and len(cache) == 0

    def test_drops_by_credential_user_and_impersonator(self) -> None:
        cache = PrincipalCache()
        cache.put(b"a", principal("u1", "c1"), cache.generation)
        cache.put(b"b", principal("u2", "c2", impersonator="admin"), cache.generation)
        cache.put(b"c", principal("u1", "c3"), cache.generation)
        assert cache.drop_credential("c1") == 1 and cache.get(b"a") is None and cache.get(b"c") is not None
        assert cache.drop_user("admin") == 1 and cache.get(b"b") is None
        assert cache.drop_user("u1") == 1 and len(cache) == 0

    def test_a_lookup_in_flight_during_a_drop_is_not_stored(self) -> None:
        cache = PrincipalCache()
        generation = cache.generation  # read before asking auth
        cache.drop_credential("c1")  # the revocation lands meanwhile
        cache.put(b"k", principal(), generation)
        assert cache.get(b"k") is None

    def test_the_oldest_entries_go_when_full(self) -> None:
        cache = PrincipalCache(max_entries=2)
        for key in (b"1", b"2", b"3"):
            cache.put(key, principal(credential=key.decode()), cache.generation)
        assert cache.get(b"1") is None and cache.get(b"3") is not None and len(cache) == 2


class TestJwksCache:
    async def test_refetches_for_an_unknown_kid_at_most_once_per_interval(self) -> None:
        clock = Clock()
        calls: list[float] = []
        keys = [
            {"kid": "k1", "kty": "OKP", "crv": "Ed25519", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}
        ]

        async def fetch() -> list[dict[str, str]]:
            calls.append(clock.now)
            return keys

        cache = JwksCache(fetch, ttl_seconds=300, refetch_interval=10, clock=clock)
        assert await cache.key("k1") is not None and len(calls) == 1
        assert await cache.key("nope") is None and len(calls) == 1  # fetched just now
        clock.now += 11
        assert await cache.key("nope") is None and len(calls) == 2
        keys.append({**keys[0], "kid": "k2"})
        clock.now += 11
        assert await cache.key("k2") is not None and len(calls) == 3
        clock.now += 301
        assert await cache.key("k1") is not None and len(calls) == 4  # stale after 5 min
