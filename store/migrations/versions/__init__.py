"""The revisions, oldest first: `0001` is the schema `create_all` made before leadflow had
migrations. alembic reads every file here except this one."""
