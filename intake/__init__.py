"""The door for people and files: hosted forms (their versioned documents, submissions,
abuse controls) and CSV imports, each turned into the same validated events the API
takes and appended through the store."""
