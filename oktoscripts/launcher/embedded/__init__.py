"""Starting the embedded NATS and MongoDB-compatible servers of a fresh machine.

Each module gives the command line of its server (the supervisor of ``up``
runs it as a child and restarts it) and a way to wait until it answers.
``EmbeddedServices`` starts both as plain subprocesses, for tests and tools.
"""
