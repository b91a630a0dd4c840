"""The handover package (竣工资料, ENG-29): what the customer receives after preliminary
acceptance, as one zip that can be checked without siteflow's database.

- :mod:`.manifest` — the manifest's typed shape and what its signature covers;
- :mod:`.package` — gathers a finished project's final documents (as PDF and as the stored,
  hashed HTML), the audit report (JSON and PDF), the memos (ENG-28) and the public keyring,
  signs the chain's head and the manifest, and records the package in the project's trail;
- :mod:`.verify` — checks a package: every listed file present with its size and SHA-256, none
  unlisted, the manifest well-formed and signed, the audit report's head the manifest's;
- :mod:`.audit_pdf` — the audit report's HTML as a PDF (WeasyPrint);
- :mod:`.cli` — ``siteflow handover CODE --output FILE.zip`` and ``siteflow handover verify FILE.zip``.

Details in docs/architecture.md, "The handover package".
"""
