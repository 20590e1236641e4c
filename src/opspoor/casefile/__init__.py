"""casefile box of opspoor: a scan's case outputs (files.jsonl, summary.json, export-vics.json,
report.html), written from the case database above triage, which only scans and adds up.

``scan.scan_case`` runs a scan and writes them (``opspoor scan``); ``outputs`` writes them;
``export`` is the VICS export of the case.
"""
