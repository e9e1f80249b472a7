"""Commands: k8s_cmds (placeholder until its module lands)."""
