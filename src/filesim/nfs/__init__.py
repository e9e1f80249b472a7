"""The NFS server: NFSv3 and v4, with MOUNT, rpcbind, NLM and NSM on the same port(s).

const        NFS-only types and flags (file types, stable_how, ACCESS and FSINFO bits)
types        NFSv3 wire structures, encode and decode side by side (the client uses them)
registry     @procedure: each NFS procedure declared once (mutating, blocking, failure body)
procedures/  the 22 procedures by kind: attributes, names, io, listing, fsinfo
mount        MOUNT v1/v3: its structures and procedures
services     Program: how rpcbind, NLM and NSM register their procedures
rpcbind      rpcbind v2-v4 (RFC 1833); nlm/: NLM v4 and NSM v1 (locking for NFSv3)
callback     calls the server makes to clients (NLM GRANTED, NSM NOTIFY after a restart)
dispatch     RPC record -> reply buffers: program, version and procedure routing
vfs          the storage protocol (Vfs) and NfsError; attrs: Attrs, what Vfs.stat returns
localfs      LocalVfs, confined to a root by directory fds (Linux, macOS)
pathfs       PathVfs, by plain lstat-checked paths (pathcheck) for hosts without them (Windows)
storage      the backend choice (auto/fd/path), made at start by what the platform can do
notify       NotifyingVfs: change notification; faults: FaultyVfs and ServerFaults
handles      file handles and the inode -> path index; access: callers and permissions
export       one export's run-time state; server: the asyncio server (the only I/O)
"""
