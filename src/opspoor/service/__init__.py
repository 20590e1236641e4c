"""service box of opspoor (see DESIGN.md)."""
