"""Virtual keys: issue, revoke, inspect; and the edge's cached view of a key."""
