"""media box of opspoor (see DESIGN.md)."""
