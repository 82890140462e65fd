"""The launcher: what ``manage.py up`` uses to start the platform on one machine.

- ``platform``   Platform: the embedded servers, migrations, the admin user,
                 every process under one supervisor, the URL to open.
- ``processes``  the platform's processes, one entry each (how to start and
                 when each is ready).
- ``preflight``  checks before starting (ports free, directories writable).
- ``supervisor/`` starts, watches and restarts child processes, prefixes
                 their log lines.
- ``embedded/``  the embedded NATS and MongoDB-wire servers, free ports.

Nothing of the platform's domain imports the launcher, except what reads the
embedded NATS server's account (``usp.broker_auth``) and tests/benchmarks
that start embedded servers.
"""
