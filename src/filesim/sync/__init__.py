"""The synchroniser: keeps each mirror-mode export store in step with its folder.

state.py     what is known about a path (Entry, Record)      scan.py      snapshots of a tree
archive.py   the agreed state per path (SQLite, WAL)         actions.py   what a plan is made of
plan.py      reconcile(): pure                               outcome.py   what a step came to
execute.py   performing a plan (settle, checks, batches)     publish.py   writing a temp file
cycle.py     one cycle's blocking part: scan, plan, execute  schedule.py  when a path is due (pure)
loop.py      cycles over time, halts, counters               recover.py   crash recovery, store id
lock.py      one agent per archive                           watch.py     folder watchers
status.py    SyncStatus, latency window, echo check          agent.py     SyncAgent, `agent_for()`
tree.py      a side walked by descriptors, never by path

Import `filesim.sync.agent` for the agent; this package itself imports nothing heavy.
"""
