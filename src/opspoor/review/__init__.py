"""review box of opspoor: the review workspace, where people categorise new material once, blurred,
by keyboard, and their decisions flow back into hash sets (docs/review.md).

``decisions`` (who decided what, reveals, the audit trail, in ``review.sqlite`` beside the case),
``caseview`` (a scanned case's groups and counts, read from ``case.sqlite``), ``evidence`` (the
pictures a reviewer sees, made on demand from the evidence, read-only), ``tohashset`` (decisions
into a hash set), ``web`` (the FastAPI app with its Jinja2 templates and one plain script).
"""
