"""report box of opspoor (see DESIGN.md)."""
