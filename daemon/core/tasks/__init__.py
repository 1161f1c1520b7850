"""Policy tasks: what a stream's policy learns (see :mod:`.protocol`), one file a task."""
