"""unsamv2.jobs — use-case entry points that tie the engine to a backend.

- :mod:`unsamv2.jobs.mine`: :class:`~unsamv2.jobs.mine.MineJob` and
  :func:`~unsamv2.jobs.mine.run_mine` (plan the manifest, run the ``MinerStage`` on the local or
  Ray backend, write the mask table), what ``unsamv2 mine`` and the ``mine`` flow call.

The engine (:mod:`unsamv2.pipeline`) and the backends (:mod:`unsamv2.backends`) never import this
package, so ``jobs → backends → pipeline`` has no cycle.
"""
