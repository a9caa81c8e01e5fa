"""Who is calling: every request of the product API is authenticated here (gateway.md §7,
auth.md §4.4), once, and the resulting `Principal` is what route groups forward.

- sign-in token: cookie `proliferate_signin` or `Authorization: Bearer` → auth `Authenticate`
  (2 s deadline), cached ≤ 30 s by SHA-256 of the credential;
- API key `plf_…` (Bearer) → `Authenticate`, cached the same way;
- access token (Bearer JWT) → verified locally with auth's JWKS (cached 5 min);
- sandbox token → `TokenVerifier.sandbox_principal` on the session routes that accept it.

The cache is dropped per credential or per user by the auth events of gateway.md §4.3, which
every replica receives (`kit.bus.EphemeralSubscription`). Auth not answering means 503
`auth_unavailable`: a request is never let through unauthenticated.
"""
