"""rustlab audit: photos whose label is probably wrong, found out of fold, and a page to review them.

Owns: the k-fold out-of-fold scores (folds), confident learning over them (rank, through
cleanlab), masks against the model's rust cells (masks), what an audit writes (report, page) and
the orchestration (run) behind `rustlab audit` (cli). It may import the core (registry, data,
training.model for building a model, errors); nothing imports it but the CLI. Corrections files
themselves are data, in rustlab.data.corrections, read by every command alike.
"""
