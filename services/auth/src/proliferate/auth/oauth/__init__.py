"""OAuth sign-in (GitHub; Google behind the same protocol): state, PKCE, account linking."""
