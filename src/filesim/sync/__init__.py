"""The synchroniser: keeps each mirror-mode export store in step with its folder.

state.py    what is known about a path (Entry, Record)      scan.py     snapshots of a tree
archive.py  the agreed state per path (SQLite, WAL)         plan.py     reconcile(): pure
execute.py  performing a plan safely (settle, temp+rename)  watch.py    folder watchers
agent.py    SyncAgent: one server's loop, `agent_for()`

Import `filesim.sync.agent` for the agent; this package itself imports nothing heavy.
"""
