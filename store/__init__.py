"""The database: the event log (appends, decisions, reads), leadflow's own tables (keys,
follower positions, the quarantine), rulesets and the directory on the log, and how a
follower is woken when the log grows. Below every hop of the flow; imports only the pure
core (`domain`, `rules`)."""
