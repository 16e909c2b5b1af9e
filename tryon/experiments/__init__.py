"""A/B tests on return rates: assignment, event storage, statistics and reports.

Modules, each with one job: :mod:`~tryon.experiments.tables` (the database tables),
:mod:`~tryon.experiments.hashing` (GrowthBook-compatible assignment),
:mod:`~tryon.experiments.events` (purchase and return events as plain objects),
:mod:`~tryon.experiments.store` (experiments, exposures and events in the database),
:mod:`~tryon.experiments.stats` (tests on sufficient statistics),
:mod:`~tryon.experiments.aggregates` (sufficient statistics computed in SQL),
:mod:`~tryon.experiments.report` and :mod:`~tryon.experiments.html` (the results),
:mod:`~tryon.experiments.simulation` (realistic traffic) and
:mod:`~tryon.experiments.importer` (events from a store's CSV export).
Nothing is imported here, so the tables load without the statistics stack.
"""
