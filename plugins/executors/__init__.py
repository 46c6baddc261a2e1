"""Built-in executors: where a grid's tasks run: ``inline`` and ``local``."""
