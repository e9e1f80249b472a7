"""filesim: a multi-NAS simulator with real NFSv3 servers kept in step with ordinary folders."""

__version__ = "0.1.0"
