"""What alembic runs for each command: the revisions on the connection `store.schema` hands
it, inside the transaction `store.schema` commits. It runs only inside alembic (it reads
alembic's context), never on import."""

from alembic import context

context.configure(connection=context.config.attributes["connection"])
with context.begin_transaction():
    context.run_migrations()
