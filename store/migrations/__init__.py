"""alembic's migration environment for leadflow's own tables (`store.schema` runs it): `env.py`
and the revisions in `versions/`, written by hand and shipped in the package."""
