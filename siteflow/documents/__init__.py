"""Documents people print, stamp, sign and verify (issue #12; docs/architecture.md "Documents").

Every document version (``models.document``) is also a PDF laid out as the form a customer
signs (:mod:`siteflow.documents.pdf`, ``render_pdf(document_id) -> bytes``), rendered with
WeasyPrint from the version's typed body; it carries a verification code and its QR code
(:mod:`siteflow.documents.codes`, :mod:`siteflow.documents.qr`) that open the public page
``/verify/{code}`` (:mod:`siteflow.documents.verification`), and the scan of the signed,
stamped paper can be uploaded back (:mod:`siteflow.documents.scans`).
"""
