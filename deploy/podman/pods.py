#!/usr/bin/env python3
"""Try the Helm chart without a cluster: every server of `helm template` output as a podman
pod, run the way a kubelet runs it. See deploy/podman/README.md; `pods.py --help`."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from podrun.cli import main

if __name__ == "__main__":
    sys.exit(main())
