"""unsamv2.jobs — use-case entry points that tie the engine to a backend.

- :mod:`unsamv2.jobs.mine`: :class:`~unsamv2.jobs.mine.MineJob` and
  :func:`~unsamv2.jobs.mine.run_mine` (plan the manifest, run the ``MinerStage`` on the local or
  Ray backend, write the mask table), what ``unsamv2 mine`` and the ``mine`` flow call.
- :mod:`unsamv2.jobs.train`: :func:`~unsamv2.jobs.train.run_train`, a
  :class:`~unsamv2.train.config.TrainConfig` here or on Ray Train, what ``unsamv2 train`` /
  ``pretrain`` and the ``mine-and-train`` flow call.
- :mod:`unsamv2.jobs.mine_and_train`: :func:`~unsamv2.jobs.mine_and_train.plan_mine_and_train`,
  the ``mine-and-train`` flow's jobs built and validated from its parameters.
- :mod:`unsamv2.jobs.fields`: command-line flags derived from a job's fields.

(Evaluation's job and entry point are :class:`unsamv2.eval.checkpoint.EvalJob` and
:func:`unsamv2.eval.checkpoint.run_eval`.) The engine (:mod:`unsamv2.pipeline`) and the backends
(:mod:`unsamv2.backends`) never import this package, so ``jobs → backends → pipeline`` has no cycle.
"""
