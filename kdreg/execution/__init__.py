"""Executing a grid: its task graph, the plan against the store, the worker side, executors' contract.

The run path, one way::

    CLI / grid file → request (kdreg.request) → grid: typed jobs and hashes (kdreg.grid)
      → plan: the task graph against the store and the model cache (plan, graph)
      → executor plugin: gets every task done, each after its dependencies (coordinator)
      → task, in whichever process runs it: plugins → stages → evaluate → store (worker)

A task is a small picklable value (:class:`~kdreg.execution.graph.Task`): a process that
has kdreg, the plugins, the database URL and the cache folder can execute it anywhere.
"""
