"""The roles a staff account can hold.

Kept apart from `models/` on purpose: `siteflow.cli` names these roles in the options of
`siteflow users add`, and importing anything under `models` loads every table (about 0.4 s),
which the CLI must not pay at start (`siteflow gates decide` races deadlines).
"""

from __future__ import annotations

import enum


class StaffRole(enum.StrEnum):
    PM = "pm"
    SUPERVISOR = "supervisor"
    ENGINEER = "engineer"
    UPGRADE_GUIDE = "upgrade-guide"
    OPERATOR = "operator"
    OFFICE = "office"
    AUDITOR = "auditor"
    ADMIN = "admin"
