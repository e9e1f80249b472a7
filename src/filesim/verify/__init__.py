"""`filesim verify`: the acceptance checks of the original system, run against a live topology.

`target` describes what is under test (servers, their policies, how to restart and read sync
status), `local` and `kube` build a target from a local runtime or a Kubernetes namespace,
`checks_*` hold the checks, `runner` runs them and `report` prints the results.
"""
