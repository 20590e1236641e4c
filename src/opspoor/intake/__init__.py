"""Hotline intake: report documents in the CyberTipline shape (``documents``), sealing of uploaded
files (``sealing``), referral by country (``referral``) and queue order (``priority``). The store
keeps reports, files and bundles (``opspoor.store.intake``); the service's ``routes_intake`` is the
API and ``opspoor referral export`` writes a referral package."""
