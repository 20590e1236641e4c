"""triage box of opspoor (see DESIGN.md)."""
