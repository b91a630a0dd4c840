"""Who may decide a subject's gates: a project's contacts or an upgrade window's.

Gates belong to a subject — a project code or an upgrade window id — and the decision path
asks the subject's own form who its contacts are and what role each holds.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from models.project import Project
from models.project_input import ProjectIn
from models.upgrade import UpgradeWindow
from models.upgrade_plan import UpgradePlanIn

Roster = ProjectIn | UpgradePlanIn


def roster_of(session: Session, subject: str) -> Roster | None:
    project = session.get(Project, subject)
    if project is not None:
        return ProjectIn.model_validate(project.params)
    window = session.get(UpgradeWindow, subject)
    if window is not None:
        return UpgradePlanIn.model_validate(window.params)
    return None
