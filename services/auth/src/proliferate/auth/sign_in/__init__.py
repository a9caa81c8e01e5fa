"""Sign-ins: sign-up, password sign-in, sign-out, and authenticating a request (auth.md §5.1-5.5)."""
