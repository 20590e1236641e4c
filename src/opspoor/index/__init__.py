"""index box of opspoor (see DESIGN.md)."""
