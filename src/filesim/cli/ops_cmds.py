"""Commands: ops_cmds (placeholder until its module lands)."""
