"""siteflow's tables (SQLAlchemy 2) and typed inputs (pydantic 2). Never imports prefect."""

from models.approval_link import ApprovalLink, BadLinkCount
from models.audit import AuditEvent, AuditHead
from models.base import Base
from models.calendar_invite import CalendarInvite
from models.document import Document, DocumentStatus
from models.document_print import DocumentCode, DocumentScan
from models.gate import Gate, GateAttempt, GateDecision, GateStatus
from models.incident import Incident, IncidentEventRow, IncidentState, Outage, OutageCause, ProblemReport
from models.incident_contract import IncidentContract
from models.incident_handover import HandoverState, IncidentHandover
from models.incident_mail import InboundMail
from models.incident_run import IncidentNotice, IncidentRun
from models.memo import Memo
from models.outbox import OutboxMessage
from models.project import Project, ProjectState
from models.staff import PasswordLink, SigninFailureCount, StaffSession, StaffUser
from models.upgrade import JournalEntry, UpgradeElement, UpgradeWindow

__all__ = [
    "ApprovalLink",
    "BadLinkCount",
    "AuditEvent",
    "AuditHead",
    "Base",
    "CalendarInvite",
    "Document",
    "DocumentStatus",
    "DocumentCode",
    "DocumentScan",
    "Gate",
    "GateAttempt",
    "GateDecision",
    "GateStatus",
    "HandoverState",
    "Incident",
    "IncidentHandover",
    "InboundMail",
    "IncidentNotice",
    "IncidentRun",
    "IncidentContract",
    "IncidentEventRow",
    "IncidentState",
    "JournalEntry",
    "Memo",
    "Outage",
    "OutageCause",
    "OutboxMessage",
    "PasswordLink",
    "ProblemReport",
    "Project",
    "ProjectState",
    "SigninFailureCount",
    "StaffSession",
    "StaffUser",
    "UpgradeElement",
    "UpgradeWindow",
]
