"""The sweeper (auth.md §6): expire invitations, purge old sign-ins, states, links, buckets."""
