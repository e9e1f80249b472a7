"""Errors of the Kubernetes layer."""

from filesim.errors import FilesimError


class K8sError(FilesimError):
    """Kubernetes objects that cannot be rendered as asked; the message says what to change."""
