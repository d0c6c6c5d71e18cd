"""Batch scoring: stream rows from files or SQL through the model, in chunks, in parallel.

The pieces, each small and swappable: :mod:`~atoll.batch.plan` (with
:mod:`~atoll.batch.read`) turns the input into an ordered list of tasks;
:mod:`~atoll.batch.score` is the one chunk function (validate, quarantine with
:mod:`~atoll.batch.quarantine`, predict through
:class:`~atoll.model.predictor.Predictor`, loaded per worker by
:mod:`~atoll.batch.model`); :mod:`~atoll.batch.engines` runs it in this
process, :mod:`~atoll.batch.local_engine` in worker processes and
:mod:`~atoll.batch.dask_engine` on Dask; :mod:`~atoll.batch.sink` writes
resumable parts and the atomic output; :mod:`~atoll.batch.job` drives them and
keeps the job's record (:mod:`~atoll.batch.record`). ``atoll.api.predict_batch``
is the entry point; nothing here is imported by ``import atoll``.
"""
