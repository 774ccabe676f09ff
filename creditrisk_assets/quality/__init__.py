"""Bronze → silver: contracts enforced in SQL, quarantine with reasons, PII pseudonymised."""
