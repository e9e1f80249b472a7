"""Host directories behind a pod's volumes, laid out the way a kubelet keeps them.

STATE/pods/POD/empty-dir/NAME     an emptyDir: made with the pod, deleted with it
STATE/pods/POD/config-map/NAME    a ConfigMap's keys as files
STATE/claims/NAMESPACE/CLAIM      a PersistentVolumeClaim: outlives the pod (a local-path
                                  provisioner's volume)
hostPath                          the node's path, or the host folder it is mapped to
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Mapping
from pathlib import Path, PurePosixPath

from podrun.manifest import Pod, Volume
from podrun.podman import PodsError


def pod_dir(state: Path, pod_name: str) -> Path:
    return state / "pods" / pod_name


def map_host_path(node_path: str, host_paths: Mapping[str, Path]) -> Path:
    """The host directory standing for the node's `node_path`: the longest mapped prefix
    (`--host-path NODE=HOST`) replaced, else the node path itself."""
    node = PurePosixPath(node_path)
    for prefix in sorted(host_paths, key=len, reverse=True):
        try:
            rest = node.relative_to(prefix)
        except ValueError:
            continue
        return host_paths[prefix] / rest
    return Path(node_path)


def _writable_by_all(path: Path, fs_group: int | None) -> None:
    """What a kubelet does to an emptyDir or a fresh claim: mode 0777, and with an fsGroup that
    group as owner plus setgid, so files made in it belong to the group."""
    if fs_group is None:
        path.chmod(0o777)
        return
    try:
        os.chown(path, -1, fs_group)
    except PermissionError:  # not root: 0777 still lets the pod's user write
        path.chmod(0o777)
        return
    path.chmod(0o2777)


def _host_path(volume: Volume, host_paths: Mapping[str, Path]) -> Path:
    path = map_host_path(volume.source, host_paths)
    kind = volume.host_path_type
    if kind == "DirectoryOrCreate":
        if not path.exists():
            path.mkdir(mode=0o755, parents=True)
    elif kind == "Directory" and not path.is_dir():
        raise PodsError(
            f"hostPath {volume.source} ({path}) is not a directory and the volume requires one "
            "(type Directory): create it, or map it with --host-path NODE_PATH=HOST_DIR"
        )
    elif kind not in ("", "DirectoryOrCreate", "Directory"):
        raise PodsError(f"hostPath type {kind!r} not supported")
    return path


def prepare(pod: Pod, state: Path, host_paths: Mapping[str, Path]) -> dict[str, Path]:
    """Make every volume of `pod` and return volume name -> host directory."""
    base = pod_dir(state, pod.name)
    result: dict[str, Path] = {}
    for volume in pod.volumes:
        if volume.kind == "emptyDir":
            path = base / "empty-dir" / volume.name
            if path.exists():
                shutil.rmtree(path)
            path.mkdir(parents=True)
            _writable_by_all(path, pod.fs_group)
        elif volume.kind == "configMap":
            data = pod.config_maps.get(volume.source)
            if data is None:
                raise PodsError(f"volume {volume.name}: ConfigMap {volume.source} not in manifest")
            path = base / "config-map" / volume.name
            path.mkdir(parents=True, exist_ok=True)
            path.chmod(0o755)
            for key, value in data.items():
                (path / key).write_text(value)
                (path / key).chmod(volume.default_mode)
        elif volume.kind == "persistentVolumeClaim":
            path = state / "claims" / pod.namespace / volume.source
            if not path.exists():
                path.mkdir(parents=True)
                _writable_by_all(path, pod.fs_group)
        else:
            path = _host_path(volume, host_paths)
        result[volume.name] = path
    return result


def remove(state: Path, pod_name: str) -> None:
    """Delete a pod's own volumes (emptyDirs, ConfigMap copies); claims stay."""
    path = pod_dir(state, pod_name)
    if path.exists():
        shutil.rmtree(path)
