"""Staff identities: who may sign in to siteflow's web, and how (issue: "every signature is
made by the person it names", item 1).

- `roles`: the staff roles (a plain enum, cheap to import: the CLI names them in its options).
- `passwords`: argon2id hashing and the password rule.
- `users`: create, list, disable and reset staff accounts (host-admin commands, `siteflow users`).
- `password_links`: single-use mailed links that set or reset a password.
- `sessions`: server-side sign-in sessions behind a random cookie, stored hashed.
- `signin_throttle`: failed sign-ins counted in the database, per (email, address) and per address.
- `signin`: the sign-in itself (throttle, password check, session), used by `siteflow.web.signin`.
- `audit`: what is recorded in the hash-chained audit log, stream ``staff``.

Nothing here imports Prefect, and this package's ``__init__`` imports nothing, so that
`siteflow.cli` can import `roles` at start without loading every table.
"""
