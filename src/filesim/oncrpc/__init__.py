"""ONC RPC (RFC 5531) and XDR (RFC 4506) without I/O, both directions: the lowest layer.

`xdr` packs and unpacks, `record` does record marking on a byte stream, `message` parses and
builds calls and replies, `const` holds the RPC-level enums and `programs` the numbers, procedures
and statuses of every RPC program filesim speaks (PORTMAP/rpcbind, MOUNT, NFSv3, NLM, NSM).
"""
