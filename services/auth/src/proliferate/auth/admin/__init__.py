"""Super-admins: listing, and impersonation through an audited overlay (auth.md §5.11)."""
