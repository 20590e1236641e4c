"""sources box of opspoor (see DESIGN.md)."""
