"""Commands: sync_cmds (placeholder until its module lands)."""
