"""The dashboard served at the HTTP API's root: servers at a glance, files on both sides, live
events, charts and faults (see docs/dashboard.md). `routes` holds its endpoints, `files` the
confined filesystem access, `listing` what the Files view computes, `connect` the mount
snippets, `page` the page and its assets (all shipped in this package)."""
