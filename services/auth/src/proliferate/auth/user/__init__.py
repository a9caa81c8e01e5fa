"""Users and their sign-in accounts; email verification and password reset."""
