"""Sample contracts and incidents shared by the incident tests."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from models.incident_contract import ContractIn
from models.incident_input import IncidentIn
from models.site_access import SiteAccessIn

WEEKDAYS = ["monday", "tuesday", "wednesday", "thursday", "friday"]
ACCESS = SiteAccessIn(duty_staff_consent=True, duty_staff_name="Jonas Weber", badge=True)
"""COM-7: a complete site-access checklist, as an engineer records it with "on site"."""


def contract(
    code: str = "C-BERLIN-1",
    *,
    customer: str = "Nordnetz AG",
    zone: str = "Europe/Berlin",
    holidays: list[dict[str, Any]] | None = None,
    sla: bool = True,
    important: bool = False,
    elements: list[dict[str, Any]] | None = None,
) -> ContractIn:
    """Mon–Fri 08:00–18:00; critical 30/120/240 min, major 240/480/480, minor 480/—/2400."""
    return ContractIn.model_validate(
        {
            "code": code,
            "customer": customer,
            "important_customer": important,
            "timezone": zone,
            "business_hours": [{"day": d, "start": "08:00", "end": "18:00"} for d in WEEKDAYS],
            "holidays": holidays or [],
            "sla": (
                [
                    {
                        "version": 1,
                        "effective_from": "2026-01-01T00:00:00+00:00",
                        "targets": [
                            {
                                "severity": "critical",
                                "response_minutes": 30,
                                "travel_minutes": 120,
                                "restoration_minutes": 240,
                            },
                            {
                                "severity": "major",
                                "response_minutes": 240,
                                "travel_minutes": 480,
                                "restoration_minutes": 480,
                            },
                            {"severity": "minor", "response_minutes": 480, "restoration_minutes": 2400},
                        ],
                    }
                ]
                if sla
                else []
            ),
            "pause_reasons": ["customer-room-closed", "waiting-for-customer"],
            "escalation": [
                {"role": "pm", "name": "Li Wei", "email": "li.wei@contractor.example", "after_minutes": 30},
            ],
            "elements": elements or [],
        }
    )


def incident(
    key: str = "INC-2026-0001",
    *,
    received_at: datetime = datetime(2026, 11, 3, 9, 0, tzinfo=UTC),
    severity: str = "major",
    emergency: bool = False,
    code: str = "C-BERLIN-1",
    customer: str = "Nordnetz AG",
    elements: list[str] | None = None,
    affects_operation: bool = True,
) -> IncidentIn:
    return IncidentIn.model_validate(
        {
            "key": key,
            "received_at": received_at,
            "channel": "phone",
            "contract": code,
            "customer": customer,
            "caller_name": "Jana Vogel",
            "caller_contact": "+49 30 1234 5678",
            "elements": elements if elements is not None else ["NE40-BER-01"],
            "reported": "Subscribers in Mitte lost voice service.",
            "severity": severity,
            "emergency": emergency,
            "affects_operation": affects_operation,
            "owner": "Max Bauer",
        }
    )
