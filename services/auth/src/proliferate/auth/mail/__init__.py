"""Mail: the Mailer seam, its implementations, and the outbox-driven mailer consumer."""
