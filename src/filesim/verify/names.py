"""The checks of `filesim verify`, by name, in the order they run. The command line lists them
from here without loading the checks themselves (`runner` binds each name to its function).

Order matters: no-loops reads the sync counters before any other probe adds work for the
agents, and persistence (which restarts everything) comes last."""

PERSISTENCE = "persistence"
CHECK_NAMES = [
    "reachable",  # NULL on NFS, MOUNT, PORTMAP; MNT
    "sync-agents",  # agents run exactly per the policy
    "no-loops",  # write cycles on both sides cause no echoes
    "folder-to-nfs",  # a folder file readable over NFS
    "nfs-to-folder",  # an NFS file complete in the folder
    "consumed-input",  # deleted over NFS: gone from folder
    "readonly-backup",  # NFS writes refused (ROFS)
    "isolation",  # visible on no other server
    "subdirectories",  # subdirectory mountable, synced
    "nfsv4",  # NFSv4.1: pseudo-root, write, read (ROFS on a backup)
    PERSISTENCE,
]
