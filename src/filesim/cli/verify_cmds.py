"""Commands: verify_cmds (placeholder until its module lands)."""
