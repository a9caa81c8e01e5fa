"""Members and roles: who belongs to which organization, and the last-owner guard."""
