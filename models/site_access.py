"""COM-7: the site-access checklist recorded before any on-site work starts.

Entering a customer's equipment room needs the duty staff's consent (值班人员同意) and a badge
(佩戴工作证); using removable media (U 盘、移动硬盘) on the customer's computers needs the room
supervisor's consent. One checklist is recorded before each on-site visit — the survey, the
installation, the commissioning (engineering flow, a data-entry gate each) and an incident's
"on site" event — and work on site cannot start without it: the engineering flow opens the
visit's first on-site gate only after its checklist gate is decided, and an incident refuses
"on site" without one. Pure models, shared by both capabilities.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator

from models.form_schema import FORM_CONFIG
from models.text_kinds import Note, OptionalLabel, SiteCode


class SiteAccessIn(BaseModel):
    """The three COM-7 items for one equipment room; every refusal names COM-7 and what to do."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, **FORM_CONFIG)

    duty_staff_consent: bool = Field(
        title="Duty staff consented",
        description="值班人员同意进入机房 / The customer's duty staff agreed to entry",
    )
    duty_staff_name: OptionalLabel = Field(default="", title="Duty staff name", description="Who agreed")
    badge: bool = Field(title="Badge worn", description="佩戴工作证 / Every engineer wears a badge")
    removable_media: bool = Field(
        default=False,
        title="Removable media used",
        description="U 盘/移动硬盘 on the customer's computers (then the room supervisor must agree)",
    )
    room_supervisor_consent: bool = Field(
        default=False, title="Room supervisor consented", description="Needed when removable media is used"
    )
    room_supervisor_name: OptionalLabel = Field(default="", title="Room supervisor name")
    notes: Note = ""

    @model_validator(mode="after")
    def _complete(self) -> SiteAccessIn:
        if not self.duty_staff_consent or not self.duty_staff_name:
            raise ValueError(
                "COM-7: entering the equipment room needs the duty staff's consent — record who agreed "
                "(duty_staff_name) and tick duty_staff_consent before work on site starts"
            )
        if not self.badge:
            raise ValueError(
                "COM-7: every engineer on site wears a badge — tick badge before work on site starts"
            )
        if self.removable_media and not (self.room_supervisor_consent and self.room_supervisor_name):
            raise ValueError(
                "COM-7: removable media on the customer's computers needs the room supervisor's consent — "
                "record who agreed (room_supervisor_name, room_supervisor_consent), or do not use the media"
            )
        return self


class SiteVisitAccessIn(SiteAccessIn):
    """COM-7 for one site of an engineering project's visit."""

    site_id: SiteCode = Field(title="Site", description="One of the project's sites")
